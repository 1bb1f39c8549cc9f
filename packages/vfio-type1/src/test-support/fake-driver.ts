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
  /** Mapped records in iova order (a fresh array). */
  readonly recs: Rec[];
  mapCalls: number;
}

export interface FakeDriver {
  readonly ops: IommuOps;
  readonly domains: Set<FakeDomain>;
  /** Extra reserved regions reported for every device. */
  readonly extraResv: ResvRegion[];
}

export interface FakeOptions {
  /** Unmap takes out the whole record an iova falls in (AMD-style fine-grained superpages). */
  readonly unmapWhole?: boolean;
}

export function createFakeDriver(
  shape: FakeShape,
  groupKey: (name: string) => string = (n) => n,
  opts: FakeOptions = {},
): FakeDriver {
  const domains = new Set<FakeDomain>();
  const extraResv: ResvRegion[] = [];
  const ops: IommuOps = {
    name: shape.name,
    pgsizeBitmap: shape.pgsizeBitmap,
    probeDevice() {},
    deviceGroup: (dev) => groupKey(dev.name),
    domainAlloc(type) {
      const d = fakeDomain(type, shape, () => domains.delete(d), opts);
      domains.add(d);
      return d;
    },
    getResvRegions: () => [...shape.resv, ...extraResv],
    capable: (_dev, cap) => shape.caps.includes(cap),
  };
  return { ops, domains, extraResv };
}

/**
 * Records keyed by their first iova, plus a sorted array of starts in which removed keys linger until a
 * compaction (so UNMAP of 65,535 mappings in iova order is O(n), not O(n²)).
 */
function fakeDomain(type: DomainType, shape: FakeShape, onFree: () => void, opts: FakeOptions): FakeDomain {
  // Keyed by page number: number keys hash far faster than bigint keys (iova >> 12 < 2^52 is exact).
  const recs = new Map<number, Rec>();
  const key = (iova: bigint): number => Number(iova >> 12n);
  const byStart = {
    get: (iova: bigint) => recs.get(key(iova)),
    has: (iova: bigint) => recs.has(key(iova)),
    set: (iova: bigint, r: Rec) => recs.set(key(iova), r),
    delete: (iova: bigint) => recs.delete(key(iova)),
    get size() {
      return recs.size;
    },
    values: () => recs.values(),
  };
  let starts: bigint[] = [];
  let dead = 0;
  const lowerBound = (x: bigint): number => {
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const containing = (iova: bigint): Rec | null => {
    const hit = byStart.get(iova);
    if (hit) return hit;
    let i = lowerBound(iova + 1n) - 1;
    for (; i >= 0; i--) {
      const r = byStart.get(starts[i]!);
      if (r) return iova < r.iova + r.size ? r : null;
    }
    return null;
  };
  const nextStartFrom = (iova: bigint): bigint | null => {
    for (let i = lowerBound(iova); i < starts.length; i++) if (byStart.has(starts[i]!)) return starts[i]!;
    return null;
  };
  const insert = (r: Rec): void => {
    byStart.set(r.iova, r);
    if (starts.length === 0 || starts[starts.length - 1]! < r.iova) starts.push(r.iova);
    else {
      const i = lowerBound(r.iova);
      if (starts[i] === r.iova) dead--;
      else starts.splice(i, 0, r.iova);
    }
  };
  const remove = (r: Rec): void => {
    byStart.delete(r.iova);
    dead++;
    if (byStart.size === 0) {
      starts = [];
      dead = 0;
    } else if (dead > 64 && dead * 2 > starts.length) {
      starts = starts.filter((x) => byStart.has(x));
      dead = 0;
    }
  };
  const d: FakeDomain = {
    type,
    get recs() {
      return [...byStart.values()].sort((a, b) => (a.iova < b.iova ? -1 : 1));
    },
    mapCalls: 0,
    pgsizeBitmap: shape.pgsizeBitmap,
    geometry: { apertureStart: shape.apertureStart, apertureEnd: shape.apertureEnd, forceAperture: true },
    attachDev() {},
    enforceCacheCoherency: () => shape.enforceCoherency,
    mapPages(iova, paddr, pgsize, pgcount, prot) {
      d.mapCalls++;
      const size = pgsize * BigInt(pgcount);
      const lastStart = starts.length > 0 ? starts[starts.length - 1]! : -1n;
      const last = byStart.get(lastStart);
      const above = lastStart < iova && (!last || last.iova + last.size <= iova) && dead === 0;
      const next = above ? null : nextStartFrom(iova);
      if (!above && (containing(iova) || (next !== null && next < iova + size))) {
        return { mapped: 0n, error: new ErrnoError("EEXIST", "fake_map_pages", "already mapped", { iova }) };
      }
      if (iova + size - 1n > shape.apertureEnd || iova < shape.apertureStart) {
        return { mapped: 0n, error: new ErrnoError("ERANGE", "fake_map_pages", "outside aperture", { iova }) };
      }
      insert({ iova, paddr, size, prot });
      return { mapped: size, error: null };
    },
    unmapPages(iova, pgsize, pgcount, gather: IotlbGather) {
      const r = containing(iova);
      if (!r) return 0n;
      const want = pgsize * BigInt(pgcount);
      if (opts.unmapWhole) iova = r.iova;
      const end = opts.unmapWhole ? r.iova + r.size : iova + want < r.iova + r.size ? iova + want : r.iova + r.size;
      remove(r);
      if (r.iova < iova) insert({ ...r, size: iova - r.iova });
      if (end < r.iova + r.size)
        insert({ iova: end, paddr: r.paddr + (end - r.iova), size: r.iova + r.size - end, prot: r.prot });
      if (iova < gather.start) gather.start = iova;
      if (end - 1n > gather.end) gather.end = end - 1n;
      return end - iova;
    },
    iovaToPhys(iova) {
      const r = containing(iova);
      return r ? r.paddr + (iova - r.iova) : 0n;
    },
    free() {
      onFree();
    },
  };
  return d;
}
