/**
 * A deliberately simple model of Linux 6.1 `drivers/iommu/iova.c`, for tests and benchmarks only: the ranges are
 * a sorted array, the walk is Linux's linear backwards walk step by step, range caches hold bare pfns and find
 * their range again by a linear search. Written from the behaviour described in reference §1, not from kernel code.
 * It shares nothing with the real engine, so agreement between the two means something.
 */

import { IOVA_DEPOT_DELAY_MS, IOVA_MAG_SIZE, IOVA_RANGE_CACHE_MAX_SIZE, MAX_GLOBAL_MAGS } from "../constants.js";

interface RefNode {
  lo: number;
  hi: number;
  cached: boolean;
}

export interface RefRange {
  pfnLo: number;
  pfnHi: number;
}

// Sizing facts come from the engine's constants (one home per fact); range-cache.test.ts pins them to Linux's answers.
const BINS = IOVA_RANGE_CACHE_MAX_SIZE;
const MAG = IOVA_MAG_SIZE;
const DEPOT = MAX_GLOBAL_MAGS;

export class ReferenceIovaDomain {
  readonly granule: number;
  readonly startPfn: number;
  readonly dma32bitPfn: number;
  readonly maxPfn: number;
  readonly cpus: number;
  /** Allocated ranges sorted by lo; the anchor is not in here. */
  readonly nodes: RefNode[] = [];
  private readonly anchor: RefNode = { lo: Number.POSITIVE_INFINITY, hi: Number.POSITIVE_INFINITY, cached: false };
  private cached: RefNode;
  private cached32: RefNode;
  private max32: number;
  private readonly loaded: number[][][]; // [bin][cpu] -> pfns
  private readonly prevMag: number[][][];
  private readonly depot: number[][][]; // [bin] -> magazines, oldest first
  /** "array": 6.1's bounded depot; "list": 6.7+, unbounded, trimmed by delayed work on model time. */
  private readonly depotKind: "array" | "list";
  private now = 0;
  private readonly workDue: (number | null)[] = Array.from({ length: BINS }, () => null);

  constructor(opts: { granule: number; startPfn: number; cpus?: number; rcacheDepot?: "array" | "list" }) {
    const cpus = opts.cpus ?? 1;
    this.depotKind = opts.rcacheDepot ?? "array";
    const g = opts.granule;
    if (!Number.isInteger(g) || g < 2048 || g > 65536 || (g & (g - 1)) !== 0) throw new RangeError("granule");
    const shift = Math.log2(g);
    this.granule = g;
    this.maxPfn = 2 ** (64 - shift) - 1;
    if (!Number.isInteger(opts.startPfn) || opts.startPfn < 0 || opts.startPfn > this.maxPfn)
      throw new RangeError("startPfn");
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 4096) throw new RangeError("cpus");
    this.startPfn = opts.startPfn;
    this.cpus = cpus;
    this.dma32bitPfn = 2 ** (32 - shift);
    this.max32 = this.dma32bitPfn;
    this.cached = this.anchor;
    this.cached32 = this.anchor;
    const perCpu = () => Array.from({ length: BINS }, () => Array.from({ length: cpus }, () => [] as number[]));
    this.loaded = perCpu();
    this.prevMag = perCpu();
    this.depot = Array.from({ length: BINS }, () => [] as number[][]);
  }

  /**
   * A domain already holding `ranges` (sorted, disjoint) with both hints on the anchor and max32_alloc_size
   * reset: a fast way for benchmarks to reach a big state whose hints are known.
   */
  static withRanges(
    opts: { granule: number; startPfn: number; cpus?: number },
    ranges: readonly RefRange[],
  ): ReferenceIovaDomain {
    const d = new ReferenceIovaDomain(opts);
    for (const r of ranges) d.nodes.push({ lo: r.pfnLo, hi: r.pfnHi, cached: false });
    return d;
  }

  get count(): number {
    return this.nodes.length;
  }

  get cachedCount(): number {
    let n = 0;
    for (let b = 0; b < BINS; b++) {
      for (let c = 0; c < this.cpus; c++) n += this.loaded[b]![c]!.length + this.prevMag[b]![c]!.length;
      for (const m of this.depot[b]!) n += m.length;
    }
    return n;
  }

  ranges(): RefRange[] {
    return this.nodes.map((n) => ({ pfnLo: n.lo, pfnHi: n.hi }));
  }

  hints(): { cached: RefRange | null; cached32: RefRange | null; max32AllocSize: number } {
    const r = (n: RefNode) => (n === this.anchor ? null : { pfnLo: n.lo, pfnHi: n.hi });
    return { cached: r(this.cached), cached32: r(this.cached32), max32AllocSize: this.max32 };
  }

  // ---- the tree, linearly ---------------------------------------------------------------------------------

  private nextOf(n: RefNode): RefNode {
    const i = this.nodes.indexOf(n);
    return this.nodes[i + 1] ?? this.anchor;
  }

  private insertNode(n: RefNode): void {
    let i = 0;
    while (i < this.nodes.length && this.nodes[i]!.lo < n.lo) i++;
    this.nodes.splice(i, 0, n);
  }

  private findNode(pfn: number): RefNode | null {
    for (const n of this.nodes) if (n.lo <= pfn && pfn <= n.hi) return n;
    return null;
  }

  private removeNode(n: RefNode): void {
    // Hint updates happen while the node is still linked, as in remove_iova.
    if (n === this.cached32 || (n.hi < this.dma32bitPfn && n.lo >= this.cached32.lo)) this.cached32 = this.nextOf(n);
    if (n.lo < this.dma32bitPfn) this.max32 = this.dma32bitPfn;
    if (n.lo >= this.cached.lo) this.cached = this.nextOf(n);
    this.nodes.splice(this.nodes.indexOf(n), 1);
  }

  // ---- Linux's walk, step by step -------------------------------------------------------------------------

  private allocInsert(size: number, limit: number, aligned: boolean): RefNode | null {
    let align = 1;
    if (aligned) while (align < size) align *= 2;
    const alignDown = (x: number) => x - (x % align);
    if (limit <= this.dma32bitPfn && size >= this.max32) return null;
    const nodes = this.nodes;
    // A walk position is an index into `nodes`; nodes.length stands for the anchor.
    const at = (i: number) => (i === nodes.length ? this.anchor : nodes[i]!);
    const start = limit <= this.dma32bitPfn ? this.cached32 : this.cached;
    let i = start === this.anchor ? nodes.length : nodes.indexOf(start);
    const retryPfn = start.hi;
    let high = limit;
    let low = this.startPfn;
    let retried = false;
    let newPfn: number;
    for (;;) {
      // rb_prev step by step; newPfn is "huge" (u64 wrap) when high < size, which stops the walk.
      for (;;) {
        high = Math.min(high, at(i).lo);
        newPfn = high < size ? Number.POSITIVE_INFINITY : alignDown(high - size);
        i--;
        if (!(i >= 0 && newPfn <= nodes[i]!.hi && newPfn >= low)) break;
      }
      if (high < size || newPfn < low) {
        if (low === this.startPfn && retryPfn < limit && !retried) {
          retried = true;
          high = limit;
          low = retryPfn + 1;
          const from = this.findLimit(limit);
          i = from === this.anchor ? nodes.length : nodes.indexOf(from);
          continue;
        }
        this.max32 = size;
        return null;
      }
      break;
    }
    const node: RefNode = { lo: newPfn, hi: newPfn + size - 1, cached: false };
    this.insertNode(node);
    if (node.hi < this.dma32bitPfn) this.cached32 = node;
    else this.cached = node;
    return node;
  }

  /** iova_find_limit's intent: the anchor above 4 GiB, else the lowest range ending at or above the limit. */
  private findLimit(limit: number): RefNode {
    if (limit > this.dma32bitPfn) return this.anchor;
    for (const n of this.nodes) if (n.hi >= limit) return n;
    return this.anchor;
  }

  // ---- public API, same contract as IovaDomain ---------------------------------------------------------------

  private checkPfn(p: number): void {
    if (!(Number.isInteger(p) && p >= 0 && p <= this.maxPfn)) throw new RangeError("pfn");
  }

  private checkSize(s: number): void {
    if (!(Number.isInteger(s) && s >= 1 && s <= this.maxPfn + 1)) throw new RangeError("size");
  }

  private checkCpu(c: number): void {
    if (!(Number.isInteger(c) && c >= 0 && c < this.cpus)) throw new RangeError("cpu");
  }

  alloc(size: number, limitPfn: number, sizeAligned: boolean): RefRange | null {
    this.checkSize(size);
    this.checkPfn(limitPfn);
    const n = this.allocInsert(size, limitPfn + 1, sizeAligned);
    return n === null ? null : { pfnLo: n.lo, pfnHi: n.hi };
  }

  free(pfn: number): void {
    this.checkPfn(pfn);
    const n = this.findNode(pfn);
    if (n === null) return;
    if (n.cached) throw new RangeError("cached");
    this.removeNode(n);
  }

  find(pfn: number): RefRange | null {
    this.checkPfn(pfn);
    const n = this.findNode(pfn);
    return n === null ? null : { pfnLo: n.lo, pfnHi: n.hi };
  }

  reserve(pfnLo: number, pfnHi: number): RefRange {
    this.checkPfn(pfnLo);
    this.checkPfn(pfnHi);
    if (pfnLo > pfnHi) throw new RangeError("order");
    let overlap = false;
    for (const n of [...this.nodes]) {
      if (pfnLo <= n.hi && pfnHi >= n.lo) {
        if (pfnLo < n.lo) n.lo = pfnLo;
        if (pfnHi > n.hi) pfnLo = n.hi + 1;
        if (pfnLo >= n.lo && pfnHi <= n.hi) return { pfnLo: n.lo, pfnHi: n.hi };
        overlap = true;
      } else if (overlap) break;
    }
    const node: RefNode = { lo: pfnLo, hi: pfnHi, cached: false };
    this.insertNode(node);
    return { pfnLo: node.lo, pfnHi: node.hi };
  }

  allocFast(size: number, limitPfn: number, flushRcache: boolean, cpu = 0): number {
    this.checkSize(size);
    this.checkPfn(limitPfn);
    this.checkCpu(cpu);
    if (size < 32) {
      let p = 1;
      while (p < size) p *= 2;
      size = p;
    }
    const bin = Math.ceil(Math.log2(size));
    if (bin < BINS) {
      const pfn = this.rcacheGet(bin, cpu, limitPfn + 1 - size);
      if (pfn !== 0) return pfn;
    }
    for (;;) {
      const n = this.allocInsert(size, limitPfn + 1, true);
      if (n !== null) return n.lo;
      if (!flushRcache) return 0;
      flushRcache = false;
      this.flushRangeCaches();
    }
  }

  private rcacheGet(bin: number, cpu: number, bound: number): number {
    if (bound < 0) bound = Number.POSITIVE_INFINITY; // u64 wrap of (limit + 1) - size
    const L = this.loaded[bin]!;
    const P = this.prevMag[bin]!;
    if (L[cpu]!.length === 0) {
      if (P[cpu]!.length > 0) [L[cpu], P[cpu]] = [P[cpu]!, L[cpu]!];
      else if (this.depot[bin]!.length > 0) L[cpu] = this.depot[bin]!.pop()!;
      else return 0;
    }
    const mag = L[cpu]!;
    for (let i = mag.length - 1; i >= 0; i--) {
      if (mag[i]! <= bound) {
        const pfn = mag[i]!;
        mag[i] = mag[mag.length - 1]!;
        mag.pop();
        this.findNode(pfn)!.cached = false;
        return pfn;
      }
    }
    return 0;
  }

  freeFast(pfn: number, size: number, cpu = 0): void {
    this.checkPfn(pfn);
    this.checkSize(size);
    this.checkCpu(cpu);
    const n = this.findNode(pfn);
    if (n === null || n.cached) throw new RangeError("freeFast");
    const bin = Math.ceil(Math.log2(size));
    if (bin >= BINS) {
      this.removeNode(n);
      return;
    }
    n.cached = true;
    const L = this.loaded[bin]!;
    const P = this.prevMag[bin]!;
    let toFree: number[] | null = null;
    if (L[cpu]!.length === MAG) {
      if (P[cpu]!.length < MAG) [L[cpu], P[cpu]] = [P[cpu]!, L[cpu]!];
      else {
        if (this.depotKind === "list") {
          this.depot[bin]!.push(L[cpu]!);
          // schedule_delayed_work does nothing while the work is pending.
          if (this.workDue[bin] === null) this.workDue[bin] = this.now + IOVA_DEPOT_DELAY_MS;
        } else if (this.depot[bin]!.length < DEPOT) this.depot[bin]!.push(L[cpu]!);
        else toFree = L[cpu]!;
        L[cpu] = [];
      }
    }
    L[cpu]!.push(pfn);
    if (toFree) this.freePfns(toFree);
  }

  private freePfns(mag: number[]): void {
    for (const pfn of mag) {
      const n = this.findNode(pfn)!;
      n.cached = false;
      this.removeNode(n);
    }
    mag.length = 0;
  }

  flushRangeCaches(): void {
    for (let c = 0; c < this.cpus; c++) {
      for (let b = 0; b < BINS; b++) {
        this.freePfns(this.loaded[b]![c]!);
        this.freePfns(this.prevMag[b]![c]!);
      }
    }
    for (let b = 0; b < BINS; b++) {
      // 6.1 walks depot[0..size-1]; 6.7+ pops its list from the head, the newest magazine first.
      const mags = this.depotKind === "list" ? [...this.depot[b]!].reverse() : this.depot[b]!;
      for (const m of mags) this.freePfns(m);
      this.depot[b]!.length = 0;
    }
  }

  /** Model time moves by `ms`; each due depot work (earliest first, ties: lower bin) trims one magazine. */
  tick(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      let bin = -1;
      for (let b = 0; b < BINS; b++) {
        const t = this.workDue[b]!;
        if (t !== null && t <= until && (bin < 0 || t < this.workDue[bin]!)) bin = b;
      }
      if (bin < 0) break;
      this.now = this.workDue[bin]!;
      this.workDue[bin] = null;
      if (this.depot[bin]!.length > this.cpus) {
        this.freePfns(this.depot[bin]!.pop()!);
        this.workDue[bin] = this.now + IOVA_DEPOT_DELAY_MS;
      }
    }
    this.now = until;
  }
}
