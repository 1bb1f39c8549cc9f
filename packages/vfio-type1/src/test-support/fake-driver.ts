/**
 * A fast fake IOMMU driver for type1's tests and benchmarks: the x86 (VT-d, 39-bit, HW MSI window) and
 * arm64 (SMMUv3, 48-bit, SW_MSI window) shapes of the conformance hosts, with a page table that stores one
 * record per map_pages call (so mapping 1 TiB of 1 GiB pages costs one record, not 2^18 PTEs). Unmap splits
 * records exactly (no fine-grained superpages). Not a model of any hardware.
 */
import {
  type DomainType,
  type DriverDomain,
  ErrnoError,
  type IommuCap,
  type IommuOps,
  type IotlbGather,
  type ResvRegion,
  resvRegion,
} from "@iommu/core";

export interface FakeShape {
  readonly name: string;
  readonly pgsizeBitmap: bigint;
  readonly apertureStart: bigint;
  readonly apertureEnd: bigint;
  readonly resv: readonly ResvRegion[];
  readonly caps: readonly IommuCap[];
  readonly enforceCoherency: boolean;
}

export const X86_SHAPE: FakeShape = {
  name: "fake-vtd",
  pgsizeBitmap: 0x4020_1000n,
  apertureStart: 0n,
  apertureEnd: (1n << 39n) - 1n,
  resv: [resvRegion(0xfee0_0000n, 0x10_0000n, 0x11, "msi")],
  caps: ["INTR_REMAP"],
  enforceCoherency: false,
};

export const ARM64_SHAPE: FakeShape = {
  name: "fake-smmuv3",
  pgsizeBitmap: 0x4020_1000n,
  apertureStart: 0n,
  apertureEnd: (1n << 48n) - 1n,
  resv: [resvRegion(0x0800_0000n, 0x10_0000n, 0x19, "sw-msi")],
  caps: ["CACHE_COHERENCY"],
  // 6.1's arm-smmu-v3 has no enforce_cache_coherency op: DMA_CC_IOMMU answers 0 (arm64 basic.jsonl).
  enforceCoherency: false,
};

interface Rec {
  iova: bigint;
  paddr: bigint;
  size: bigint;
  prot: number;
}

export interface FakeDomain extends DriverDomain {
  readonly type: DomainType;
  /** Mapped records in iova order. */
  readonly recs: Rec[];
  mapCalls: number;
}

export interface FakeDriver {
  readonly ops: IommuOps;
  readonly domains: Set<FakeDomain>;
  /** Extra reserved regions reported for every device. */
  readonly extraResv: ResvRegion[];
}

export function createFakeDriver(shape: FakeShape, groupKey: (name: string) => string = (n) => n): FakeDriver {
  const domains = new Set<FakeDomain>();
  const extraResv: ResvRegion[] = [];
  const ops: IommuOps = {
    name: shape.name,
    pgsizeBitmap: shape.pgsizeBitmap,
    probeDevice() {},
    deviceGroup: (dev) => groupKey(dev.name),
    domainAlloc(type) {
      const d = fakeDomain(type, shape, () => domains.delete(d));
      domains.add(d);
      return d;
    },
    getResvRegions: () => [...shape.resv, ...extraResv],
    capable: (_dev, cap) => shape.caps.includes(cap),
  };
  return { ops, domains, extraResv };
}

function fakeDomain(type: DomainType, shape: FakeShape, onFree: () => void): FakeDomain {
  const recs: Rec[] = [];
  const findIdx = (iova: bigint): number => {
    let lo = 0;
    let hi = recs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = recs[mid]!;
      if (iova < r.iova) hi = mid - 1;
      else if (iova >= r.iova + r.size) lo = mid + 1;
      else return mid;
    }
    return -(lo + 1);
  };
  const d: FakeDomain = {
    type,
    recs,
    mapCalls: 0,
    pgsizeBitmap: shape.pgsizeBitmap,
    geometry: { apertureStart: shape.apertureStart, apertureEnd: shape.apertureEnd, forceAperture: true },
    attachDev() {},
    enforceCacheCoherency: () => shape.enforceCoherency,
    mapPages(iova, paddr, pgsize, pgcount, prot) {
      d.mapCalls++;
      const size = pgsize * BigInt(pgcount);
      const i = findIdx(iova);
      const end = findIdx(iova + size - 1n);
      if (i >= 0 || end >= 0 || i !== end) {
        return { mapped: 0n, error: new ErrnoError("EEXIST", "fake_map_pages", "already mapped", { iova }) };
      }
      if (iova + size - 1n > shape.apertureEnd || iova < shape.apertureStart) {
        return { mapped: 0n, error: new ErrnoError("ERANGE", "fake_map_pages", "outside aperture", { iova }) };
      }
      recs.splice(-(i + 1), 0, { iova, paddr, size, prot });
      return { mapped: size, error: null };
    },
    unmapPages(iova, pgsize, pgcount, gather: IotlbGather) {
      const i = findIdx(iova);
      if (i < 0) return 0n;
      const r = recs[i]!;
      const want = pgsize * BigInt(pgcount);
      const end = iova + want < r.iova + r.size ? iova + want : r.iova + r.size;
      const parts: Rec[] = [];
      if (r.iova < iova) parts.push({ ...r, size: iova - r.iova });
      if (end < r.iova + r.size)
        parts.push({ iova: end, paddr: r.paddr + (end - r.iova), size: r.iova + r.size - end, prot: r.prot });
      recs.splice(i, 1, ...parts);
      if (iova < gather.start) gather.start = iova;
      if (end - 1n > gather.end) gather.end = end - 1n;
      return end - iova;
    },
    iovaToPhys(iova) {
      const i = findIdx(iova);
      return i < 0 ? 0n : recs[i]!.paddr + (iova - recs[i]!.iova);
    },
    free() {
      onFree();
    },
  };
  return d;
}
