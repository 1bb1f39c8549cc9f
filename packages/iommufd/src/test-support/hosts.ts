/**
 * Test hosts for iommufd: a fake IOMMU driver with the conformance machines' shapes (x86 q35 + VT-d:
 * 39-bit aperture, hardware MSI window, VT-d hw_info; arm64 virt + SMMUv3: 48-bit, SW_MSI window, no
 * hw_info), a page table of 4 KiB records, and a user process with lazily faulted pages. Not a model of
 * any hardware: the real drivers live in @iommu/vt-d and @iommu/arm-smmu, which this layer may not import.
 */
import {
  type Device,
  type DomainType,
  type DriverDomain,
  ErrnoError,
  type HwInfo,
  Iommu,
  type IommuCap,
  type IommuOps,
  type IotlbGather,
  PAGE_SIZE,
  PciDevice,
  PhysicalMemory,
  type ResvRegion,
  resvRegion,
} from "@iommu/core";
import type { UserMemory, UserSegment } from "../user-memory.js";

export interface Shape {
  readonly name: string;
  readonly pgsizeBitmap: bigint;
  readonly apertureEnd: bigint;
  readonly resv: readonly ResvRegion[];
  readonly caps: readonly IommuCap[];
  readonly hwInfo?: HwInfo;
  readonly msiRemap: boolean;
}

/** `struct iommu_hw_info_vtd` as QEMU 7.2's intel-iommu answers (flags ERRATA_772415_SPR17, cap, ecap). */
const VTD_INFO = new Uint8Array([
  0x01, 0, 0, 0, 0, 0, 0, 0, 0x06, 0x02, 0x26, 0x22, 0x8c, 0x00, 0xd2, 0x00, 0x4a, 0x0f, 0xf0, 0, 0, 0, 0, 0,
]);

export const X86: Shape = {
  name: "fake-vtd",
  pgsizeBitmap: 0x4020_1000n,
  apertureEnd: (1n << 39n) - 1n,
  resv: [resvRegion(0xfee0_0000n, 0x10_0000n, 0x11, "msi")],
  caps: ["CACHE_COHERENCY", "INTR_REMAP"],
  hwInfo: { type: 1, data: VTD_INFO },
  msiRemap: false,
};

export const ARM64: Shape = {
  name: "fake-smmuv3",
  pgsizeBitmap: 0x4020_1000n,
  apertureEnd: (1n << 48n) - 1n,
  resv: [resvRegion(0x0800_0000n, 0x10_0000n, 0x19, "sw-msi")],
  caps: ["CACHE_COHERENCY"],
  msiRemap: true,
};

/** A fake domain: 4 KiB records of what is mapped, and every map_pages call. */
export interface FakeDomain extends DriverDomain {
  readonly type: DomainType;
  readonly ptes: Map<bigint, { phys: bigint; prot: number }>;
  readonly mapCalls: { iova: bigint; pgsize: bigint; pgcount: number }[];
}

export interface FakeDriver {
  readonly ops: IommuOps;
  readonly domains: Set<FakeDomain>;
  /** Extra reserved regions for every device (tests push to it). */
  readonly extraResv: ResvRegion[];
}

export function createFakeDriver(shape: Shape, groupKey: (name: string) => string = (n) => n): FakeDriver {
  const domains = new Set<FakeDomain>();
  const extraResv: ResvRegion[] = [];
  const ops: IommuOps = {
    name: shape.name,
    pgsizeBitmap: shape.pgsizeBitmap,
    probeDevice() {},
    deviceGroup: (dev) => groupKey(dev.name),
    domainAlloc(type) {
      const ptes = new Map<bigint, { phys: bigint; prot: number }>();
      const d: FakeDomain = {
        type,
        ptes,
        mapCalls: [],
        pgsizeBitmap: type === "blocked" ? 0n : shape.pgsizeBitmap,
        geometry: { apertureStart: 0n, apertureEnd: shape.apertureEnd, forceAperture: true },
        attachDev() {},
        mapPages(iova, paddr, pgsize, pgcount, prot) {
          const size = pgsize * BigInt(pgcount);
          for (let o = 0n; o < size; o += PAGE_SIZE) {
            if (ptes.has(iova + o)) {
              for (let u = 0n; u < o; u += PAGE_SIZE) ptes.delete(iova + u);
              return { mapped: 0n, error: new ErrnoError("EEXIST", "fake_map_pages", "mapped", { iova: iova + o }) };
            }
            ptes.set(iova + o, { phys: paddr + o, prot });
          }
          d.mapCalls.push({ iova, pgsize, pgcount });
          return { mapped: size, error: null };
        },
        unmapPages(iova, pgsize, pgcount, gather: IotlbGather) {
          if (!ptes.has(iova)) return 0n;
          const size = pgsize * BigInt(pgcount);
          for (let o = 0n; o < size; o += PAGE_SIZE) ptes.delete(iova + o);
          if (iova < gather.start) gather.start = iova;
          if (iova + size - 1n > gather.end) gather.end = iova + size - 1n;
          return size;
        },
        iovaToPhys: (iova) => {
          const p = ptes.get(iova & ~(PAGE_SIZE - 1n));
          return p ? p.phys + (iova & (PAGE_SIZE - 1n)) : 0n;
        },
        free() {
          domains.delete(d);
        },
      };
      domains.add(d);
      return d;
    },
    getResvRegions: () => [...shape.resv, ...extraResv],
    capable: (_dev, cap) => shape.caps.includes(cap),
    ...(shape.hwInfo ? { hwInfo: () => shape.hwInfo as HwInfo } : {}),
  };
  return { ops, domains, extraResv };
}

/** A process: vmas of anonymous memory faulted in lazily from a bump allocator, VmLck/VmPin counters. */
export class TestProcess implements UserMemory {
  rlimitMemlock = 8n << 20n;
  capIpcLock = true;
  lockedVm = 0;
  pinnedVm = 0;
  /** Every GUP call (to show what pins and what does not). */
  faults = 0;
  private readonly vmas: { start: bigint; end: bigint; writable: boolean }[] = [];
  private readonly pages = new Map<bigint, bigint>();
  private nextFrame = 0x1_0000_0000n;

  mmap(start: bigint, size: bigint, writable = true): void {
    this.vmas.push({ start, end: start + size, writable });
  }

  /** The `unshare` flag of every GUP call. */
  readonly unshares: boolean[] = [];

  faultIn(vaddr: bigint, write: boolean, maxPages: number, unshare = false): UserSegment {
    this.faults++;
    this.unshares.push(unshare);
    const vma = this.vmas.find((v) => vaddr >= v.start && vaddr < v.end);
    if (!vma) throw new ErrnoError("EFAULT", "pin_user_pages", "no mapping", { vaddr });
    if (write && !vma.writable) throw new ErrnoError("EFAULT", "pin_user_pages", "read-only", { vaddr });
    const page = vaddr & ~(PAGE_SIZE - 1n);
    let phys = this.pages.get(page);
    if (phys === undefined) {
      phys = this.nextFrame;
      this.nextFrame += PAGE_SIZE;
      this.pages.set(page, phys);
    }
    return { phys, pages: Math.min(1, maxPages) };
  }

  private readonly bytes = new Map<bigint, number>();

  private check(vaddr: bigint, len: number, write: boolean): void {
    for (let a = vaddr; a < vaddr + BigInt(len); a += 1n) {
      const vma = this.vmas.find((v) => a >= v.start && a < v.end);
      if (!vma || (write && !vma.writable)) throw new ErrnoError("EFAULT", "copy_user", "bad address", { vaddr: a });
    }
  }

  readUser(vaddr: bigint, len: number): Uint8Array {
    this.check(vaddr, len, false);
    return Uint8Array.from({ length: len }, (_, i) => this.bytes.get(vaddr + BigInt(i)) ?? 0);
  }

  writeUser(vaddr: bigint, data: Uint8Array): void {
    this.check(vaddr, data.length, true);
    for (let i = 0; i < data.length; i++) this.bytes.set(vaddr + BigInt(i), data[i]!);
  }

  /** VmLck / VmPin in KiB, as the probe's `locked` line. */
  get locked(): { vmlckKb: number; vmpinKb: number } {
    return { vmlckKb: this.lockedVm * 4, vmpinKb: this.pinnedVm * 4 };
  }
}

/** The probe's buffer: a 1 GiB anonymous mapping at 0x100000000000. */
export const BASE = 0x1000_0000_0000n;

export interface TestHost {
  readonly iommu: Iommu;
  readonly driver: FakeDriver;
  readonly proc: TestProcess;
  /** Edu-like PCI devices 00:01.0, 00:02.0, … probed into their own groups. */
  device(slot: number): Device;
}

/** A host of `shape`; `groupKey` puts devices with equal keys in one IOMMU group (default: one each). */
export function testHost(shape: Shape, groupKey?: (name: string) => string): TestHost {
  const memory = new PhysicalMemory();
  const driver = createFakeDriver(shape, groupKey);
  const iommu = new Iommu({ msiRemap: shape.msiRemap });
  const proc = new TestProcess();
  proc.mmap(BASE, 1n << 30n);
  const devs = new Map<number, Device>();
  return {
    iommu,
    driver,
    proc,
    device(slot) {
      let d = devs.get(slot);
      if (!d) {
        d = new PciDevice(memory, { bus: 0, slot, classCode: 0x00ff00 });
        iommu.probeDevice(d, driver.ops);
        devs.set(slot, d);
      }
      return d;
    },
  };
}
