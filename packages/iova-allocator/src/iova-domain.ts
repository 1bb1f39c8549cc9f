import { IOVA_RANGE_CACHE_MAX_SIZE, MAX_GRANULE, MIN_GRANULE } from "./constants.js";
import type { IovaDomainOptions, IovaHints, IovaRange } from "./iova-range.js";
import type { Pfn, PfnCount } from "./pfn.js";
import { ABSENT, PfnIndex } from "./pfn-index.js";
import { alignDown, nextPowerOfTwo, orderBase2 } from "./pfn-math.js";
import { NO_MAG, RangeCaches, type RcacheDepot } from "./range-cache.js";
import { GAP_SAT, NIL, RangeTree } from "./range-tree.js";

/** Linux's anchor node: the sentinel above every range (`IOVA_ANCHOR`, pfn ~0UL). */
const ANCHOR = -2;
/** "Not looked up yet" for a lazily found node (distinct from NIL and ANCHOR). */
const UNKNOWN = -3;
/** alloc_iova_fast rounds cacheable sizes below 2^(6-1) up to a power of two. */
const FAST_ROUNDUP_BELOW = 1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1);
const MAX_CPUS = 4096;

/**
 * One IOVA space (`struct iova_domain`, Linux 6.1 `drivers/iommu/iova.c`): the allocated ranges, the two cached
 * search hints, `max32_alloc_size` and the per-CPU range caches. Every call gives the answer Linux gives for the
 * same call sequence (reference §1), each in O(log n) (DESIGN.md explains how the walk is reproduced).
 *
 * Pfns and sizes are numbers in granules. Where Linux returns NULL we return `null` (or 0 from `allocFast`);
 * arguments Linux would BUG or WARN on throw a `RangeError` naming the rule and change nothing.
 */
export class IovaDomain implements Iterable<IovaRange> {
  /** Bytes per pfn. */
  readonly granule: number;
  /** Lowest pfn `alloc` hands out. */
  readonly startPfn: Pfn;
  /** First pfn at or above 4 GiB (`dma_32bit_pfn` = 2^32 >> shift). */
  readonly dma32bitPfn: number;
  /** Highest pfn a u64 address can hold at this granule (`ULLONG_MAX >> shift`). */
  readonly maxPfn: number;
  /** CPUs with their own magazines (`num_online_cpus()` for the depot trim). */
  readonly cpus: number;
  /** The depot's shape: `"array"` (Linux up to 6.6, the default) or `"list"` (6.7+, trimmed on model time). */
  readonly rcacheDepot: RcacheDepot;

  private readonly tree = new RangeTree();
  /** Start pfn -> node of the ranges that went through the fast calls: freeFast validates without a descent. */
  private readonly fastIndex = new PfnIndex();
  private readonly rcaches: RangeCaches;
  /** Model time in ms: advanced only by `tick`, it schedules the list depot's trim work. */
  private clock = 0;
  private cachedNode = ANCHOR;
  private cached32Node = ANCHOR;
  private max32AllocSize: number;
  /** The node whose own gap the last successful walk placed its range in (NIL: above every node's gap test). */
  private walkAbove = NIL;

  constructor(options: IovaDomainOptions) {
    const { granule, startPfn } = options;
    const cpus = options.cpus ?? 1;
    if (!Number.isInteger(granule) || granule < MIN_GRANULE || granule > MAX_GRANULE || (granule & (granule - 1)) !== 0)
      throw new RangeError(
        `init_iova_domain: granule must be a power of two from ${MIN_GRANULE} to ${MAX_GRANULE} bytes (got ${granule})`,
      );
    const shift = Math.log2(granule);
    this.granule = granule;
    this.maxPfn = 2 ** (64 - shift) - 1;
    if (!Number.isInteger(startPfn) || startPfn < 0 || startPfn > this.maxPfn)
      throw new RangeError(
        `init_iova_domain: startPfn must be an integer pfn in [0, ${this.maxPfn}] (got ${startPfn})`,
      );
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_CPUS)
      throw new RangeError(`iova_domain_init_rcaches: cpus must be an integer in [1, ${MAX_CPUS}] (got ${cpus})`);
    this.startPfn = startPfn;
    this.cpus = cpus;
    this.dma32bitPfn = 2 ** (32 - shift);
    this.max32AllocSize = this.dma32bitPfn;
    const depot = options.rcacheDepot ?? "array";
    if (depot !== "array" && depot !== "list")
      throw new RangeError(`iova_domain_init_rcaches: rcacheDepot must be "array" or "list" (got ${String(depot)})`);
    this.rcacheDepot = depot;
    this.rcaches = new RangeCaches(cpus, depot);
  }

  /** Allocated ranges, including those sitting in the range caches (they stay allocated in Linux's tree). */
  get count(): number {
    return this.tree.count;
  }

  /** Ranges currently held by the range caches (magazines and depots of every CPU). */
  get cachedCount(): number {
    return this.rcaches.cachedCount;
  }

  /** Full magazines in the depot of the bin for `size` granules (`rcache->depot_size`); 0 above 32 granules. */
  depotSize(size: PfnCount): number {
    const bin = orderBase2(size);
    return bin < IOVA_RANGE_CACHE_MAX_SIZE ? this.rcaches.depotCount(bin) : 0;
  }

  /** Model time in milliseconds (starts at 0; only `tick` moves it). */
  get now(): number {
    return this.clock;
  }

  /**
   * Advances model time by `ms` and runs the delayed work that falls due meanwhile, in time order (ties: smaller
   * bin first): with `rcacheDepot: "list"`, each bin's `iova_depot_work_func` frees its newest depot magazine to
   * the tree while the depot holds more than `cpus` magazines, every IOVA_DEPOT_DELAY (100 ms). No-op otherwise.
   */
  tick(ms: number): void {
    if (!(ms >= 0 && Number.isFinite(ms))) throw new RangeError(`tick: ms must be a finite number >= 0 (got ${ms})`);
    const until = this.clock + ms;
    const rc = this.rcaches;
    for (let bin = rc.dueWork(until); bin >= 0; bin = rc.dueWork(until)) {
      this.clock = rc.dueAt(bin);
      const mag = rc.runWork(bin);
      if (mag !== NO_MAG) {
        this.freeMagazine(mag);
        rc.release(mag);
      }
    }
    this.clock = until;
  }

  /** Bytes held by the range tree's node arrays (for the scale figures). */
  get treeBytes(): number {
    return this.tree.byteLength;
  }

  /**
   * `alloc_iova`: a range of `size` granules placed as high as possible at or below `limitPfn` (inclusive), walking
   * down from the cached hint and retrying once above it; `sizeAligned` aligns the start to the next power of two
   * of `size`. Returns null when nothing fits (and records `size` as `max32_alloc_size`, as Linux does).
   */
  alloc(size: PfnCount, limitPfn: Pfn, sizeAligned: boolean): IovaRange | null {
    this.checkSize(size, "alloc_iova");
    this.checkPfn(limitPfn, "limitPfn", "alloc_iova");
    const x = this.allocAndInsert(size, limitPfn + 1, sizeAligned);
    return x === NIL ? null : this.range(x);
  }

  /** `free_iova`: frees the range containing `pfn`; an unknown pfn is a no-op. */
  free(pfn: Pfn): void {
    this.checkPfn(pfn, "pfn", "free_iova");
    const x = this.tree.find(pfn);
    if (x === NIL) return;
    if (this.tree.isCached(x))
      throw new RangeError(
        `free_iova: range [${this.tree.lo(x)}, ${this.tree.hi(x)}] is held by a range cache; freeing it would let allocFast hand out an unallocated range`,
      );
    this.removeNode(x, true);
  }

  /** `find_iova`: the allocated range containing `pfn`, or null. */
  find(pfn: Pfn): IovaRange | null {
    this.checkPfn(pfn, "pfn", "find_iova");
    const x = this.tree.find(pfn);
    return x === NIL ? null : this.range(x);
  }

  /**
   * `reserve_iova`: marks [pfnLo, pfnHi] allocated. Overlapped ranges grow downward to absorb the request instead
   * of failing; returns the range that finally covers `pfnHi` (reference §1.6).
   */
  reserve(pfnLo: Pfn, pfnHi: Pfn): IovaRange {
    this.checkPfn(pfnLo, "pfnLo", "reserve_iova");
    this.checkPfn(pfnHi, "pfnHi", "reserve_iova");
    if (pfnLo > pfnHi) throw new RangeError(`reserve_iova: pfnLo ${pfnLo} is above pfnHi ${pfnHi}`);
    const t = this.tree;
    let lo = pfnLo;
    for (let n = t.firstEndingAtOrAbove(lo); n !== NIL; n = t.next(n)) {
      if (pfnHi < t.lo(n)) break; // first node past the request: nothing further can overlap
      if (lo < t.lo(n)) {
        this.unindex(n); // the index is keyed by the start pfn
        t.extendDown(n, lo);
      }
      if (pfnHi <= t.hi(n)) return this.range(n);
      lo = t.hi(n) + 1;
    }
    return this.range(t.insert(lo, pfnHi));
  }

  /**
   * `alloc_iova_fast`: a size-aligned range of `size` granules at or below `limitPfn`, from this CPU's range cache
   * when one fits, else from the tree; on failure with `flushRcache`, every cache is flushed back to the tree and
   * the tree is tried once more. Returns the start pfn, or 0 when nothing fits.
   */
  allocFast(size: PfnCount, limitPfn: Pfn, flushRcache: boolean, cpu = 0): Pfn {
    this.checkSize(size, "alloc_iova_fast");
    this.checkPfn(limitPfn, "limitPfn", "alloc_iova_fast");
    this.checkCpu(cpu, "alloc_iova_fast");
    // Freed ranges go back into the cache by order, so a cacheable size must be a power of two to be reusable.
    if (size < FAST_ROUNDUP_BELOW) size = nextPowerOfTwo(size);
    const bin = orderBase2(size);
    if (bin < IOVA_RANGE_CACHE_MAX_SIZE) {
      // Linux computes (limit + 1) - size in u64: a negative bound wraps and lets every cached pfn through.
      let bound = limitPfn + 1 - size;
      if (bound < 0) bound = Number.POSITIVE_INFINITY;
      const pfn = this.rcaches.pop(bin, cpu, bound);
      if (pfn >= 0) {
        this.tree.setCached(this.rcaches.popped, false);
        if (pfn !== 0) return pfn; // a cached pfn 0 reads as a miss in Linux too
      }
    }
    for (;;) {
      const x = this.allocAndInsert(size, limitPfn + 1, true);
      if (x !== NIL) {
        const pfn = this.tree.lo(x);
        this.fastIndex.set(pfn, x);
        this.tree.setIndexed(x, true);
        return pfn;
      }
      if (!flushRcache) return 0;
      flushRcache = false;
      this.flushRangeCaches();
    }
  }

  /**
   * `free_iova_fast`: puts the range starting at `pfn` into this CPU's cache for `size` (it stays allocated), or
   * frees it to the tree when `size` is above 32 granules. `pfn` must lie in an allocated range that is not
   * already cached (Linux would hand such a pfn out twice, then WARN when flushing).
   */
  freeFast(pfn: Pfn, size: PfnCount, cpu = 0): void {
    this.checkPfn(pfn, "pfn", "free_iova_fast");
    this.checkSize(size, "free_iova_fast");
    this.checkCpu(cpu, "free_iova_fast");
    const t = this.tree;
    let x = this.fastIndex.get(pfn);
    let located = false;
    if (x === ABSENT) {
      x = t.find(pfn);
      if (x === NIL) throw new RangeError(`free_iova_fast: pfn ${pfn} is not in an allocated range`);
      located = true;
    }
    if (t.isCached(x)) throw new RangeError(`free_iova_fast: the range holding pfn ${pfn} is already in a range cache`);
    const bin = orderBase2(size);
    if (bin >= IOVA_RANGE_CACHE_MAX_SIZE) {
      this.removeNode(x, located);
      return;
    }
    if (located && !t.isIndexed(x) && t.lo(x) === pfn) {
      this.fastIndex.set(pfn, x); // found by the tree: next time by the index
      t.setIndexed(x, true);
    }
    t.setCached(x, true);
    const overflow = this.rcaches.insert(bin, cpu, pfn, x, this.clock);
    if (overflow !== NO_MAG) {
      this.freeMagazine(overflow);
      this.rcaches.release(overflow);
    }
  }

  /** `free_cpu_cached_iovas` for every CPU then `free_global_cached_iovas`: every cached range back to the tree. */
  flushRangeCaches(): void {
    const rc = this.rcaches;
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      for (let bin = 0; bin < IOVA_RANGE_CACHE_MAX_SIZE; bin++) {
        const [loaded, prev] = rc.cpuMagazines(bin, cpu);
        this.freeMagazine(loaded);
        this.freeMagazine(prev);
      }
    }
    for (let bin = 0; bin < IOVA_RANGE_CACHE_MAX_SIZE; bin++) {
      for (const mag of rc.takeDepot(bin)) {
        this.freeMagazine(mag);
        rc.release(mag);
      }
    }
  }

  /** Allocated ranges in address order (cached ones included). */
  *ranges(): Generator<IovaRange> {
    for (const x of this.tree.nodes()) yield this.range(x);
  }

  [Symbol.iterator](): Iterator<IovaRange> {
    return this.ranges();
  }

  /** Structural self-check of the range tree (order, balance, gap augmentation), for tests: null when sound. */
  validateTree(): string | null {
    return this.tree.validate();
  }

  /** The search hints and `max32_alloc_size`, for inspection. */
  hints(): IovaHints {
    return {
      cached: this.cachedNode === ANCHOR ? null : this.range(this.cachedNode),
      cached32: this.cached32Node === ANCHOR ? null : this.range(this.cached32Node),
      max32AllocSize: this.max32AllocSize,
    };
  }

  // ---- Linux's allocation, reproduced in O(log n) ----------------------------------------------------------

  /** `__alloc_and_insert_iova_range` with an exclusive `limit` (alloc_iova passes limit_pfn + 1). */
  private allocAndInsert(size: number, limit: number, aligned: boolean): number {
    const align = aligned ? nextPowerOfTwo(size) : 1;
    const in32 = limit <= this.dma32bitPfn;
    if (in32 && size >= this.max32AllocSize) return NIL;
    const start = in32 ? this.cached32Node : this.cachedNode;
    const retryPfn = this.hiOf(start);
    let pfn = this.walk(start, limit, this.startPfn, size, align, aligned);
    // Linux retries once from the top, above the hint (a hint always ends at or above startPfn: DESIGN.md §5).
    if (pfn < 0 && retryPfn < limit) pfn = this.walk(ANCHOR, limit, retryPfn + 1, size, align, aligned);
    if (pfn < 0) {
      this.max32AllocSize = size;
      return NIL;
    }
    const x = this.tree.insert(pfn, pfn + size - 1, this.walkAbove);
    if (pfn + size - 1 < this.dma32bitPfn) this.cached32Node = x;
    else this.cachedNode = x;
    return x;
  }

  /**
   * The result of Linux's backwards walk from node `from` (`high` = exclusive limit, `low` = lowest acceptable
   * start): the start pfn it would place the range at, or -1 when the walk fails. See DESIGN.md for why this
   * equals the linear walk.
   */
  private walk(from: number, high: number, low: number, size: number, align: number, aligned: boolean): number {
    if (high < size) return -1;
    const t = this.tree;
    let upper: number;
    if (this.loOf(from) >= high) {
      // Every node at or above the limit offers the same candidate; only the lowest of them can take it.
      const candidate = alignDown(high - size, align);
      const below = t.floorBelow(high);
      if (below === NIL || t.hi(below) < candidate) {
        this.walkAbove = NIL;
        return candidate >= low ? candidate : -1;
      }
      upper = below;
    } else upper = from;
    // Linux's first step: the gap just below the start node (most walks end there).
    let x: number;
    if (size >= GAP_SAT) x = this.lastFitExact(upper, size, align);
    else x = t.ownFits(upper, size, aligned) ? upper : t.lastFit(t.lo(upper), size, aligned);
    this.walkAbove = x;
    const top = t.lo(x);
    if (top < size) return -1;
    const candidate = alignDown(top - size, align);
    return candidate >= low ? candidate : -1;
  }

  /**
   * `lastFit` for sizes of GAP_SAT granules or more, where the tree's saturated gap words cannot decide: Linux's
   * walk node by node from `upper`, each own gap measured exactly. Linear, as in Linux; never on a hot path.
   */
  private lastFitExact(upper: number, size: number, align: number): number {
    const t = this.tree;
    for (let x = upper; ; ) {
      const p = t.prev(x);
      if (p === NIL) return x;
      const lo = t.lo(x);
      if (lo >= size && alignDown(lo - size, align) > t.hi(p)) return x;
      x = p;
    }
  }

  /**
   * `remove_iova`: hint updates (`__cached_rbnode_delete_update`) then `rb_erase`. `located`: the tree's last
   * descent reached x (free, freeFast), so the path and the successor come without another one.
   */
  private removeNode(x: number, located = false): void {
    const t = this.tree;
    if (!located) t.locate(x);
    const lo = t.lo(x);
    const hi = t.hi(x);
    let next = UNKNOWN; // rb_next(x), found from the path on first use
    if (x === this.cached32Node || (hi < this.dma32bitPfn && lo >= this.loOf(this.cached32Node))) {
      next = this.successorOnPath();
      this.cached32Node = next;
    }
    if (lo < this.dma32bitPfn) this.max32AllocSize = this.dma32bitPfn;
    if (lo >= this.loOf(this.cachedNode)) this.cachedNode = next === UNKNOWN ? this.successorOnPath() : next;
    this.unindex(x);
    t.removeOnPath();
  }

  /** Drops x from the fast index (before its start pfn changes or it leaves the tree). */
  private unindex(x: number): void {
    if (!this.tree.isIndexed(x)) return;
    this.fastIndex.delete(this.tree.lo(x));
    this.tree.setIndexed(x, false);
  }

  /** `iova_magazine_free_pfns`: every range of the magazine back to the tree, in slot order. */
  private freeMagazine(mag: number): void {
    const rc = this.rcaches;
    for (let i = 0, n = rc.magSize(mag); i < n; i++) {
      const x = rc.magNode(mag, i);
      this.tree.setCached(x, false);
      this.removeNode(x);
    }
    rc.clear(mag);
  }

  private successorOnPath(): number {
    const n = this.tree.successorOnPath();
    return n === NIL ? ANCHOR : n;
  }

  private loOf(x: number): number {
    return x === ANCHOR ? Number.POSITIVE_INFINITY : this.tree.lo(x);
  }

  private hiOf(x: number): number {
    return x === ANCHOR ? Number.POSITIVE_INFINITY : this.tree.hi(x);
  }

  private range(x: number): IovaRange {
    return { pfnLo: this.tree.lo(x), pfnHi: this.tree.hi(x) };
  }

  private checkSize(size: number, op: string): void {
    if (!(size >= 1 && size <= this.maxPfn + 1 && Number.isInteger(size)))
      throw new RangeError(
        `${op}: size must be an integer number of granules in [1, ${this.maxPfn + 1}] (got ${size})`,
      );
  }

  private checkPfn(pfn: number, what: string, op: string): void {
    if (!(pfn >= 0 && pfn <= this.maxPfn && Number.isInteger(pfn)))
      throw new RangeError(
        `${op}: ${what} must be an integer pfn a u64 address can hold, in [0, ${this.maxPfn}] (got ${pfn})`,
      );
  }

  private checkCpu(cpu: number, op: string): void {
    if (!(cpu >= 0 && cpu < this.cpus && Number.isInteger(cpu)))
      throw new RangeError(`${op}: cpu must be an integer in [0, ${this.cpus - 1}] (got ${cpu})`);
  }
}
