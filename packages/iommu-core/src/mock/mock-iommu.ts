/**
 * A mock IOMMU driver + hardware for tests of the layers above core, with the odd shape of the
 * kernel's iommufd selftest mock (reference §7): 2 KiB pages (optionally + 1 MiB), aperture
 * [16 MiB, 2 GiB - 1], a SW_MSI region at 0x80000000 of 1 MiB, and injectable reserved regions
 * (like IOMMU_TEST_OP_ADD_RESERVED) and map failures (like its memory-limit knob).
 */
import type { Device } from "../device.js";
import { ErrnoError } from "../errno.js";
import type {
  DmaAccess,
  DomainAllocContext,
  DomainGeometry,
  DomainType,
  DriverDomain,
  IommuHardware,
  IommuOps,
  IotlbGather,
  MapPagesResult,
  TranslateRequest,
  Translation,
} from "../iommu-ops.js";
import { isPagingDomain } from "../iommu-ops.js";
import { gatherAddPage } from "../iotlb-gather.js";
import type { IommuCap } from "../prot.js";
import { IOMMU_FAULT_READ, IOMMU_FAULT_WRITE, IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE } from "../prot.js";
import { type ResvRegion, type ResvType, resvRegion } from "../resv-region.js";
import { MOCK_HUGE_PAGE_SIZE, MOCK_IO_PAGE_SIZE, MockPageTable, type MockPte } from "./pgtable.js";

export const MOCK_APERTURE_START = 1n << 24n;
export const MOCK_APERTURE_LAST = (1n << 31n) - 1n;
export const MOCK_MSI_IOVA_BASE = 0x8000_0000n;
export const MOCK_MSI_IOVA_LENGTH = 0x10_0000n;

export interface MockIommuOptions {
  /** Driver name (default "mock-iommu"). */
  readonly name?: string;
  /** Also support 1 MiB pages (the selftest's MOCK_HUGE_PAGE_SIZE). */
  readonly hugePages?: boolean;
  /** Group key per device (default: one group per device, keyed by name). */
  readonly deviceGroup?: (dev: Device) => string;
  /** Which devices the mock claims at probe (default all); others get ENODEV. */
  readonly claims?: (dev: Device) => boolean;
  /** Capabilities answered true (default CACHE_COHERENCY only, as the selftest mock). */
  readonly caps?: readonly IommuCap[];
  /** Domain types domainAlloc accepts (default all five). */
  readonly domainTypes?: readonly DomainType[];
  /** The driver's `def_domain_type` answer per device. */
  readonly defDomainType?: (dev: Device) => DomainType | undefined;
  /** Report the SW_MSI window (default true). */
  readonly swMsi?: boolean;
  /** Make attach_dev fail with EINVAL for these device/domain pairs (to test unwinding). */
  readonly attachFails?: (dev: Device, domain: MockDomain) => boolean;
}

/** A fault the mock hardware recorded (its "event queue"). */
export interface MockFault {
  readonly device: Device;
  readonly requesterId: number;
  readonly iova: bigint;
  readonly access: DmaAccess;
  readonly reason: "no-domain" | "blocked" | "translation" | "permission";
  /** What report_iommu_fault returned (-38 = no handler). */
  readonly handled: number;
}

/** A mock domain: a page table plus what the tests want to look at. */
export interface MockDomain extends DriverDomain {
  readonly type: DomainType;
  readonly pgtable: MockPageTable;
  /** Calls of iotlb_sync / flush_iotlb_all / iotlb_sync_map seen (invalidation accounting). */
  readonly syncs: { iotlbSync: number; flushAll: number; syncMap: number };
  readonly ctx: DomainAllocContext;
}

export interface MockIommu {
  readonly ops: IommuOps;
  readonly hw: IommuHardware;
  /** Every fault the hardware saw, oldest first. */
  readonly faults: MockFault[];
  /** Domains allocated and not yet freed. */
  readonly domains: ReadonlySet<MockDomain>;
  /** The domain a device is attached to in the mock "stream table". */
  attachedDomain(dev: Device): MockDomain | undefined;
  /** Inject a reserved region reported for every device (or one device). Returns a remover. */
  addReserved(start: bigint, length: bigint, type?: ResvType, dev?: Device, prot?: number): () => void;
  /** After `pages` more successful page maps, map_pages fails with ENOMEM (null disables). */
  failMapsAfter(pages: number | null): void;
}

const PAGING_TYPES: readonly DomainType[] = ["blocked", "identity", "unmanaged", "DMA", "DMA-FQ"];

/** Build the mock driver and its hardware. Probing a device with these ops also plugs it in (`upstream`). */
export function createMockIommu(opts: MockIommuOptions = {}): MockIommu {
  const name = opts.name ?? "mock-iommu";
  const pgsizeBitmap = MOCK_IO_PAGE_SIZE | (opts.hugePages ? MOCK_HUGE_PAGE_SIZE : 0n);
  const caps = new Set<IommuCap>(opts.caps ?? ["CACHE_COHERENCY"]);
  const types = new Set(opts.domainTypes ?? PAGING_TYPES);
  const streams = new Map<Device, MockDomain>();
  const domains = new Set<MockDomain>();
  const faults: MockFault[] = [];
  const injected: { region: ResvRegion; dev: Device | undefined }[] = [];
  let mapBudget: number | null = null;

  const hw: IommuHardware = {
    name,
    translate(req: TranslateRequest): Translation {
      const dom = streams.get(req.device);
      const fault = (reason: MockFault["reason"]): Translation => {
        const flags = req.access === "write" ? IOMMU_FAULT_WRITE : IOMMU_FAULT_READ;
        const handled = dom ? dom.ctx.reportFault(req.device, req.iova, flags) : -38;
        faults.push({
          device: req.device,
          requesterId: req.requesterId,
          iova: req.iova,
          access: req.access,
          reason,
          handled,
        });
        return { kind: "fault", reason };
      };
      if (!dom) return fault("no-domain");
      if (dom.type === "blocked") return fault("blocked");
      const pageEnd = (req.iova / MOCK_IO_PAGE_SIZE + 1n) * MOCK_IO_PAGE_SIZE;
      if (dom.type === "identity") return { kind: "ok", phys: req.iova, span: pageEnd - req.iova };
      const pte = dom.pgtable.lookup(req.iova);
      if (!pte) return fault("translation");
      const need = req.access === "write" ? IOMMU_WRITE : IOMMU_READ;
      if ((pte.prot & need) === 0) return fault("permission");
      const off = req.iova - pte.iova;
      return { kind: "ok", phys: pte.phys + off, span: pte.size - off };
    },
  };

  function makeDomain(type: DomainType, ctx: DomainAllocContext): MockDomain {
    const pgtable = new MockPageTable();
    const paging = isPagingDomain(type);
    const geometry: DomainGeometry = paging
      ? { apertureStart: MOCK_APERTURE_START, apertureEnd: MOCK_APERTURE_LAST, forceAperture: true }
      : { apertureStart: 0n, apertureEnd: 0n, forceAperture: false };
    const syncs = { iotlbSync: 0, flushAll: 0, syncMap: 0 };
    const dom: MockDomain = {
      type,
      pgtable,
      syncs,
      ctx,
      pgsizeBitmap: paging ? pgsizeBitmap : 0n,
      geometry,
      attachDev(dev: Device): void {
        if (!dev.iommu || dev.iommu.ops !== ops) {
          throw new ErrnoError("ENODEV", "mock_domain_attach_dev", `${dev.name} is not behind ${name}`, {
            device: dev.name,
          });
        }
        if (opts.attachFails?.(dev, dom)) {
          throw new ErrnoError("EINVAL", "mock_domain_attach_dev", `injected attach failure for ${dev.name}`, {
            device: dev.name,
          });
        }
        streams.set(dev, dom);
      },
      free(): void {
        domains.delete(dom);
        for (const [dev, d] of streams) if (d === dom) streams.delete(dev);
      },
    };
    if (paging) {
      dom.mapPages = (iova, paddr, pgsize, pgcount, prot): MapPagesResult => {
        let mapped = 0n;
        for (let i = 0; i < pgcount; i++) {
          const a = iova + mapped;
          if (mapBudget !== null && mapBudget <= 0) {
            const error = new ErrnoError("ENOMEM", "mock_domain_map_pages", "injected allocation failure", { iova: a });
            return { mapped, error };
          }
          if (pgtable.overlaps(a, pgsize)) {
            const error = new ErrnoError("EEXIST", "mock_domain_map_pages", "IOVA already mapped", { iova: a });
            return { mapped, error };
          }
          pgtable.insert({ iova: a, phys: paddr + mapped, size: pgsize, prot });
          if (mapBudget !== null) mapBudget--;
          mapped += pgsize;
        }
        return { mapped, error: null };
      };
      dom.unmapPages = (iova, pgsize, pgcount, gather: IotlbGather): bigint => {
        const end = iova + pgsize * BigInt(pgcount);
        let cur = iova;
        let unmapped = 0n;
        while (cur < end) {
          const pte: MockPte | undefined = pgtable.lookup(cur);
          if (!pte) break;
          // A huge entry covering cur goes as a whole: unmap may return more than asked.
          pgtable.remove(pte);
          gatherAddPage(gather, pte.iova, pte.size);
          unmapped += pte.iova + pte.size - cur;
          cur = pte.iova + pte.size;
        }
        return unmapped;
      };
      dom.iovaToPhys = (iova) => {
        const pte = pgtable.lookup(iova);
        return pte ? pte.phys + (iova - pte.iova) : 0n;
      };
      dom.iotlbSync = () => {
        syncs.iotlbSync++;
      };
      dom.iotlbSyncMap = () => {
        syncs.syncMap++;
      };
      dom.flushIotlbAll = () => {
        syncs.flushAll++;
      };
      dom.enforceCacheCoherency = () => true;
    }
    domains.add(dom);
    return dom;
  }

  const ops: IommuOps = {
    name,
    pgsizeBitmap,
    probeDevice(dev: Device): void {
      if (opts.claims && !opts.claims(dev)) {
        throw new ErrnoError("ENODEV", "mock_probe_device", `${dev.name} is not behind ${name}`, { device: dev.name });
      }
      // The mock is its own board: plug the device in behind its hardware.
      if (!dev.upstream) dev.upstream = hw;
    },
    releaseDevice(dev: Device): void {
      streams.delete(dev);
      if (dev.upstream === hw) dev.upstream = null;
    },
    deviceGroup: opts.deviceGroup ?? ((dev: Device) => dev.name),
    ...(opts.defDomainType ? { defDomainType: opts.defDomainType } : {}),
    domainAlloc(type: DomainType, ctx: DomainAllocContext): DriverDomain | null {
      return types.has(type) ? makeDomain(type, ctx) : null;
    },
    getResvRegions(dev: Device): ResvRegion[] {
      const out: ResvRegion[] = [];
      if (opts.swMsi ?? true) {
        out.push(
          resvRegion(MOCK_MSI_IOVA_BASE, MOCK_MSI_IOVA_LENGTH, IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO, "sw-msi"),
        );
      }
      for (const { region, dev: only } of injected) if (!only || only === dev) out.push(region);
      return out;
    },
    capable(_dev: Device, cap: IommuCap): boolean {
      return caps.has(cap);
    },
  };

  return {
    ops: Object.freeze(ops),
    hw,
    faults,
    domains,
    attachedDomain: (dev) => streams.get(dev),
    addReserved(start, length, type = "reserved", dev, prot = 0) {
      const entry = { region: resvRegion(start, length, prot, type), dev };
      injected.push(entry);
      return () => {
        const i = injected.indexOf(entry);
        if (i >= 0) injected.splice(i, 1);
      };
    },
    failMapsAfter(pages) {
      mapBudget = pages;
    },
  };
}
