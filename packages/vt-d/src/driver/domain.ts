/**
 * A VT-d paging domain (`struct dmar_domain`, legacy mode): one second-level table shared by every unit the
 * domain is attached to, a domain id per unit, and the map/unmap/flush rules of Linux 6.1 intel/iommu.c.
 */
import {
  type Device,
  type DomainGeometry,
  type DomainType,
  type DriverDomain,
  ErrnoError,
  IOMMU_READ,
  IOMMU_WRITE,
  type IotlbGather,
  type MapPagesResult,
  type PageAllocator,
  type PhysicalMemory,
  SZ_1G,
  SZ_2M,
  SZ_4K,
  U64_MAX,
} from "@iommu/core";
import { PTE } from "../arch/regs.js";
import type { DmarUnit } from "./dmar-unit.js";
import { SecondLevelTable, type SuperpageUnmap } from "./pgtable.js";

/**
 * The second-level leaf format the driver writes, as far as rights go (`__domain_mapping`'s `attr`).
 * A device read through a write-only mapping succeeds with the first and faults (reason 0x06) with the
 * second, on QEMU as on real hardware.
 */
export type SecondLevelPteFormat =
  /**
   * intel/iommu.c's `struct dma_pte` writer of 5.13 to 6.15 (so 6.1 and 6.12): `attr |= DMA_FL_PTE_PRESENT`
   * on every leaf, first or second level, and DMA_FL_PTE_PRESENT is bit 0, DMA_PTE_READ ("iommu/vt-d:
   * Remove WO permissions on second-level paging entries", eea53c581688): no write-only leaf exists.
   */
  | "dma_pte"
  /**
   * 6.16's "Restore WO permissions on second-level paging entries", kept by 7.x's generic page table
   * (`vtdss`, VT-d second stage): R only when IOMMU_READ is asked for.
   */
  | "vtdss";

/** Leaf rights by IOMMU_READ|IOMMU_WRITE for each format (SNP is added once snooping is forced). */
const ATTR: Readonly<Record<SecondLevelPteFormat, readonly bigint[]>> = {
  dma_pte: [PTE.R, PTE.R, PTE.R | PTE.W, PTE.R | PTE.W],
  vtdss: [0n, PTE.R, PTE.W, PTE.R | PTE.W],
};
const ATTR_SNP: Readonly<Record<SecondLevelPteFormat, readonly bigint[]>> = {
  dma_pte: ATTR.dma_pte.map((a) => a | PTE.SNP),
  vtdss: ATTR.vtdss.map((a) => a | PTE.SNP),
};
const LEVEL_BYTES = [0n, SZ_4K, SZ_2M, SZ_1G, 1n << 39n, 1n << 48n];
/**
 * The 4 KiB fast paths check and account in numbers for addresses below 2^52 (exact, and so are sums with a
 * page count below 2^52): one Number() per address instead of a chain of BigInt operations and conversions.
 */
const FAST = 1n << 52n;
const FAST_N = 2 ** 52;
/** `iommu_iotlb_gather_init`: start ULONG_MAX, end 0. */
const GATHER_EMPTY_START = U64_MAX;

/** Page-size bitmaps VT-d has advertised (reference §5.2). */
export type PgsizeBitmapMode =
  /** ≥ 5.15 (and 6.1): 4 KiB | the superpages the hardware has (`domain_super_pgsize_bitmap`). */
  | "linux-6.1"
  /** Older kernels: INTEL_IOMMU_PGSIZES = ~0xfff, every power of two from 4 KiB. */
  | "all-sizes";

export const ALL_SIZES_PGSIZE_BITMAP = 0xfffffffffffff000n;

export interface DomainEnv {
  readonly memory: PhysicalMemory;
  readonly alloc: PageAllocator;
  /** Resolve the unit and source id serving a device (null = not ours). */
  readonly unitOf: (dev: Device) => { unit: DmarUnit; sid: number } | null;
  readonly rmrrLocked: (dev: Device) => boolean;
  readonly superpageUnmap: SuperpageUnmap;
  readonly pgsizeMode: PgsizeBitmapMode;
  readonly slPteFormat: SecondLevelPteFormat;
}

/** Per-device driver state (`struct device_domain_info`), kept in `dev.iommuPriv`. */
export interface DeviceDomainInfo {
  readonly unit: DmarUnit;
  readonly sid: number;
  domain: VtdDomain | null;
}

export function pgsizeBitmapFor(mode: PgsizeBitmapMode, superpage: number): bigint {
  if (mode === "all-sizes") return ALL_SIZES_PGSIZE_BITMAP;
  return SZ_4K | (superpage >= 1 ? SZ_2M : 0n) | (superpage >= 2 ? SZ_1G : 0n);
}

export class VtdDomain implements DriverDomain {
  readonly pgsizeBitmap: bigint;
  readonly geometry: DomainGeometry;
  /** Guest address width (bits): the aperture is [0, 2^gaw - 1]. */
  readonly gaw: number;
  readonly agaw: number;
  readonly table: SecondLevelTable | null;
  /** Highest iova + size mapped so far (`max_addr`). */
  maxAddr = 0n;
  /** 2^gaw. */
  private readonly limit: bigint;
  /** 2^gaw as a number (exact: a power of two). */
  private readonly limitN: number;
  private readonly onSuperpageClear = (pfn: number, n: number) => this.flushPages(pfn, n, false);
  /** Set by enforce_cache_coherency: new PTEs carry SNP. */
  private setPteSnp = false;
  private forceSnooping = false;
  readonly devices = new Set<Device>();
  /** unit → [domain id, attached device count] (`iommu_array`). */
  readonly dids = new Map<DmarUnit, { did: number; refs: number }>();

  constructor(
    private readonly env: DomainEnv,
    readonly type: DomainType,
    units: readonly DmarUnit[],
  ) {
    // One table for all units: the smallest agaw and superpage support among them (domain_update_iommu_cap).
    this.agaw = Math.min(...units.map((u) => u.agaw));
    this.gaw = Math.min(...units.map((u) => u.width));
    const superpage = Math.min(...units.map((u) => u.superpage));
    this.pgsizeBitmap = pgsizeBitmapFor(env.pgsizeMode, superpage);
    this.limit = 1n << BigInt(this.gaw);
    this.limitN = 2 ** this.gaw;
    this.geometry = { apertureStart: 0n, apertureEnd: this.limit - 1n, forceAperture: true };
    this.table = type !== "identity" ? new SecondLevelTable(env.memory, env.alloc, this.agaw + 2, superpage) : null;
  }

  // ---- attach ----------------------------------------------------------------------------------

  /** `intel_iommu_attach_device`. */
  attachDev(dev: Device): void {
    const info = dev.iommuPriv as DeviceDomainInfo | undefined;
    if (!info)
      throw new ErrnoError("ENODEV", "intel_iommu_attach_device", "device not probed by intel-iommu", {
        dev: dev.name,
      });
    if (info.domain === this) return;
    if (this.type === "unmanaged" && this.env.rmrrLocked(dev)) {
      throw new ErrnoError(
        "EPERM",
        "intel_iommu_attach_device",
        "Device is ineligible for IOMMU domain attach due to platform RMRR requirement.",
        { dev: dev.name },
      );
    }
    const { unit, sid } = info;
    if (this.forceSnooping && !unit.hasSnoopControl) {
      throw new ErrnoError("EOPNOTSUPP", "prepare_domain_attach_device", "domain forces snooping, unit has no SC", {
        dev: dev.name,
      });
    }
    if (this.maxAddr > 1n << BigInt(unit.width)) {
      throw new ErrnoError(
        "EFAULT",
        "prepare_domain_attach_device",
        "iommu width is not sufficient for the mapped address",
        {
          width: unit.width,
          maxAddr: this.maxAddr,
        },
      );
    }
    let d = this.dids.get(unit);
    const fresh = !d;
    if (!d) d = { did: unit.allocDomainId(), refs: 0 };
    // Everything that can fail comes before the device leaves its previous domain: a failed attach
    // leaves the domain id free and the device where it was.
    try {
      unit.prepareContext(sid);
    } catch (e) {
      if (fresh) unit.freeDomainId(d.did);
      throw e;
    }
    // Leave the previous domain first (device_block_translation).
    if (info.domain) info.domain.detachDev(dev);
    else if (unit.contextPresent(sid)) unit.clearContext(sid);
    if (fresh) this.dids.set(unit, d);
    d.refs++;
    unit.mapContext(sid, d.did, this.table ? this.table.root : null, this.agaw);
    info.domain = this;
    this.devices.add(dev);
  }

  /** `dmar_remove_one_dev_info`: clear the context entry and drop the unit's domain id with the last device. */
  detachDev(dev: Device): void {
    const info = dev.iommuPriv as DeviceDomainInfo | undefined;
    if (!info || info.domain !== this) return;
    info.unit.clearContext(info.sid);
    this.devices.delete(dev);
    info.domain = null;
    const d = this.dids.get(info.unit);
    if (d && --d.refs === 0) {
      info.unit.freeDomainId(d.did);
      this.dids.delete(info.unit);
    }
  }

  // ---- map / unmap ------------------------------------------------------------------------------

  /** `intel_iommu_map_pages`. */
  mapPages(iova: bigint, paddr: bigint, pgsize: bigint, pgcount: number, prot: number): MapPagesResult {
    const t = this.table;
    if (t && pgsize === SZ_4K && (prot & (IOMMU_READ | IOMMU_WRITE)) !== 0) {
      // 4 KiB pages at addresses below 2^52: the checks below in number arithmetic. (Number() of a larger
      // BigInt rounds, but never below 2^52, so the range test is exact.)
      const iv = Number(iova);
      const pa = Number(paddr);
      const ivPfn = Math.floor(iv / 4096);
      const paPfn = Math.floor(pa / 4096);
      const end = iv + pgcount * 4096;
      if (
        iv < FAST_N &&
        pa < FAST_N &&
        ivPfn * 4096 === iv &&
        paPfn * 4096 === pa &&
        end < FAST_N &&
        end <= this.limitN
      ) {
        const attr = (this.setPteSnp ? ATTR_SNP : ATTR)[this.env.slPteFormat][prot & 3] as bigint;
        const r = t.map(ivPfn, paPfn, pgcount, attr, this.onSuperpageClear);
        if (r.nomem) {
          const mapped = BigInt(r.done) << 12n;
          return { mapped, error: new ErrnoError("ENOMEM", "__domain_mapping", "out of page-table memory", { iova }) };
        }
        const maxAddr = pgcount === 1 ? iova + SZ_4K : BigInt(end);
        if (maxAddr > this.maxAddr) this.maxAddr = maxAddr;
        return { mapped: pgcount === 1 ? SZ_4K : BigInt(pgcount * 4096), error: null };
      }
    }
    return this.mapPagesChecked(iova, paddr, pgsize, pgcount, prot);
  }

  private mapPagesChecked(iova: bigint, paddr: bigint, pgsize: bigint, pgcount: number, prot: number): MapPagesResult {
    const op = "intel_iommu_map_pages";
    const t = this.table;
    if (!t) return { mapped: 0n, error: new ErrnoError("EINVAL", op, "not a paging domain", {}) };
    const known = pgsize === SZ_4K || pgsize === SZ_2M || pgsize === SZ_1G;
    if (!known && (this.env.pgsizeMode === "linux-6.1" || pgsize < SZ_4K || (pgsize & (pgsize - 1n)) !== 0n)) {
      return { mapped: 0n, error: new ErrnoError("EINVAL", op, "page size is not 4K, 2M or 1G", { pgsize }) };
    }
    if (((iova | paddr) & (pgsize - 1n)) !== 0n) {
      return {
        mapped: 0n,
        error: new ErrnoError("EINVAL", op, "iova or paddr not aligned to the page size", { iova, paddr, pgsize }),
      };
    }
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) {
      return { mapped: 0n, error: new ErrnoError("EINVAL", "__domain_mapping", "neither read nor write", { prot }) };
    }
    const size = pgsize === SZ_4K ? BigInt(pgcount) << 12n : pgsize * BigInt(pgcount);
    const maxAddr = iova + size;
    if (maxAddr > this.limit) {
      return {
        mapped: 0n,
        error: new ErrnoError("EFAULT", "intel_iommu_map", "iommu width is not sufficient for the mapped address", {
          gaw: this.gaw,
          maxAddr,
        }),
      };
    }
    const attr = (this.setPteSnp ? ATTR_SNP : ATTR)[this.env.slPteFormat][prot & 3] as bigint;
    const pages = pgsize === SZ_4K ? pgcount : Number(size >> 12n);
    const r = t.map(Number(iova >> 12n), Number(paddr >> 12n), pages, attr, this.onSuperpageClear);
    if (r.nomem) {
      // Linux raises max_addr before mapping; we leave it untouched so a failure leaves no trace.
      const mapped = BigInt(r.done) << 12n;
      return { mapped, error: new ErrnoError("ENOMEM", "__domain_mapping", "out of page-table memory", { iova }) };
    }
    if (maxAddr > this.maxAddr) this.maxAddr = maxAddr;
    return { mapped: size, error: null };
  }

  /**
   * `intel_iommu_unmap`: the size grows to the level of the entry found at `iova` (a superpage, or a
   * non-present entry of a higher level), so VT-d never reports 0 for a hole inside its width.
   */
  unmapPages(iova: bigint, pgsize: bigint, pgcount: number, gather: IotlbGather): bigint {
    const t = this.table;
    if (!t) return 0n;
    const iv = Number(iova);
    const fast = pgsize === SZ_4K && pgcount === 1 && iv < FAST_N;
    if (fast ? iv >= this.limitN : iova >= this.limit) return 0n;
    const pfn = fast ? Math.floor(iv / 4096) : Number(iova >> 12n);
    const found = t.lookup(pfn);
    if (fast && found.level === 1) {
      // One 4 KiB leaf (the common case): what dma_pte_clear_level would do, without walking again.
      if ((found.value & 3n) !== 0n) t.clearEntry(found.at);
      const end = iova + SZ_4K;
      if (this.maxAddr === end) this.maxAddr = iova;
      this.gatherAddPage(gather, iova, SZ_4K);
      return SZ_4K;
    }
    let size = pgsize * BigInt(pgcount);
    const levelSize = LEVEL_BYTES[found.level] as bigint;
    const isSuperpage = (found.value & 3n) !== 0n && found.level > 1;
    if (size < levelSize && !(isSuperpage && this.env.superpageUnmap === "split")) size = levelSize;
    if (found.level === 1 && size === SZ_4K) {
      // One 4 KiB leaf: what dma_pte_clear_level would do, without walking again.
      if ((found.value & 3n) !== 0n) t.clearEntry(found.at);
    } else {
      const last = Number((iova + size - 1n) >> 12n);
      t.clearRange(pfn, Math.min(last, t.pfnLimit - 1), this.env.superpageUnmap);
    }
    if (this.maxAddr === iova + size) this.maxAddr = iova;
    this.gatherAddPage(gather, iova, size);
    return size;
  }

  /**
   * `iommu_iotlb_gather_add_page` (6.1): a range of another size, or one disjoint from what is gathered,
   * first syncs what was gathered (and the gather starts again); then the range joins it.
   */
  private gatherAddPage(gather: IotlbGather, iova: bigint, size: bigint): void {
    const end = iova + size - 1n;
    if (
      (gather.pgsize !== 0n && gather.pgsize !== size) ||
      (gather.end !== 0n && (end + 1n < gather.start || iova > gather.end + 1n))
    ) {
      this.iotlbSync(gather);
      gather.start = GATHER_EMPTY_START;
      gather.end = 0n;
    }
    gather.pgsize = size;
    if (iova < gather.start) gather.start = iova;
    if (end > gather.end) gather.end = end;
  }

  iovaToPhys(iova: bigint): bigint {
    const t = this.table;
    if (!t) return iova;
    const pfn = Number(iova >> 12n);
    if (iova >= this.limit) return 0n;
    const e = t.lookup(pfn);
    if ((e.value & 3n) === 0n) return 0n;
    const mask = (LEVEL_BYTES[e.level] as bigint) - 1n;
    return (e.value & PTE.ADDR_MASK) + (iova & mask);
  }

  /** `intel_iommu_iotlb_sync_map` → `__mapping_notify_one`: only caching-mode hardware needs a flush. */
  iotlbSyncMap(iova: bigint, size: bigint): void {
    for (const [unit, d] of this.dids) {
      if (unit.cachingMode) unit.flushIotlbPages(d.did, Number(iova >> 12n), Number((size + 0xfffn) >> 12n), false);
    }
  }

  /** `intel_iommu_tlb_sync`: page-selective flush of what was unmapped, then free the table pages. */
  iotlbSync(gather: IotlbGather): void {
    if (gather.start <= gather.end) {
      const fast = gather.end < FAST;
      const s = Number(gather.start);
      const pfn = fast ? Math.floor(s / 4096) : Number(gather.start >> 12n);
      const pages = fast
        ? Math.floor((Number(gather.end) - s + 1 + 0xfff) / 4096) || 1
        : Number((gather.end - gather.start + 1n + 0xfffn) >> 12n || 1n);
      this.flushPages(pfn, pages, this.table !== null && this.table.freelist.length === 0);
    }
    this.table?.drainFreelist();
  }

  /** `intel_flush_iotlb_all`: domain-selective flush on every unit. */
  flushIotlbAll(): void {
    for (const [unit, d] of this.dids) unit.flushIotlbDomain(d.did);
    this.table?.drainFreelist();
  }

  private flushPages(pfn: number, pages: number, ih: boolean): void {
    for (const [unit, d] of this.dids) unit.flushIotlbPages(d.did, pfn, pages, ih);
  }

  /** `intel_iommu_enforce_cache_coherency`: only when every attached unit has snoop control. */
  enforceCacheCoherency(): boolean {
    if (this.forceSnooping) return true;
    for (const unit of this.dids.keys()) if (!unit.hasSnoopControl) return false;
    this.setPteSnp = true;
    this.forceSnooping = true;
    return true;
  }

  /** `domain_exit`: every table back to the allocator. */
  free(): void {
    for (const dev of [...this.devices]) this.detachDev(dev);
    this.table?.destroy();
  }
}
