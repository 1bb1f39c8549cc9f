import type { Pfn, PfnCount } from "./pfn.js";
import type { RcacheDepot } from "./range-cache.js";

/** An allocated IOVA range (`struct iova`): inclusive pfns in units of the domain granule. */
export interface IovaRange {
  readonly pfnLo: Pfn;
  readonly pfnHi: Pfn;
}

/** Options of `new IovaDomain` (`init_iova_domain` + `iova_domain_init_rcaches`). */
export interface IovaDomainOptions {
  /** Bytes per pfn; a power of two from 2 KiB to 64 KiB (Linux: power of two, at most PAGE_SIZE). */
  granule: number;
  /** Lowest pfn `alloc` may hand out (dma-iommu uses max(1, aperture_start >> shift)). */
  startPfn: Pfn;
  /** CPUs with their own range-cache magazines (default 1); also `num_online_cpus()` for the list depot's trim. */
  cpus?: number;
  /**
   * The range caches' depot (`struct iova_rcache`): `"array"` = Linux up to 6.6, at most 32 full magazines per bin,
   * the next one freed to the tree at once (default); `"list"` = Linux 6.7+, unbounded, trimmed back to `cpus`
   * magazines by delayed work every 100 ms of model time (`IovaDomain.tick`).
   */
  rcacheDepot?: RcacheDepot;
}

/** The search hints, for inspection and tests: `null` is Linux's anchor node (above every range). */
export interface IovaHints {
  readonly cached: IovaRange | null;
  readonly cached32: IovaRange | null;
  readonly max32AllocSize: PfnCount;
}
