import { IOVA_DEPOT_DELAY_MS, IOVA_MAG_SIZE, IOVA_RANGE_CACHE_MAX_SIZE, MAX_GLOBAL_MAGS } from "./constants.js";

/** "No magazine". */
export const NO_MAG = -1;
const IDLE = -1;

/**
 * How a bin keeps its full magazines (`struct iova_rcache` depot), in the kernel's terms:
 * - `"array"` (up to 6.6): `depot[MAX_GLOBAL_MAGS]`; a full `loaded` magazine that finds the array full has its
 *   ranges freed to the tree on the spot; a flush empties the array from slot 0 up.
 * - `"list"` (6.7+, "iommu/iova: Make the rcache depot scale better"): an unbounded list (the magazine's `size`
 *   word doubles as `next`); every push arms the bin's delayed work (`IOVA_DEPOT_DELAY`, 100 ms, a no-op when
 *   already armed); the work frees the newest depot magazine to the tree while the depot holds more than
 *   `num_online_cpus()` magazines, re-arming itself after each one; a flush pops the list from its head.
 */
export type RcacheDepot = "array" | "list";

/**
 * The range caches of one domain (`iovad->rcaches`): six bins, per CPU a `loaded` and a `prev` magazine, and a
 * depot of full magazines per bin. Magazines live in one pool of typed arrays (127 pfns and, beside each, the tree
 * node it came from, so popping and flushing need no lookup; the pfn is what Linux stores and returns).
 *
 * Which ranges leave for the tree is the domain's business: `insert` returns a magazine to free (array depot
 * full), and the delayed trim hands magazines to a callback.
 */
export class RangeCaches {
  readonly cpus: number;
  readonly depotKind: RcacheDepot;
  /** pfns and nodes of magazine m at [m * IOVA_MAG_SIZE, (m + 1) * IOVA_MAG_SIZE). */
  private pfns: Float64Array;
  private nodes: Int32Array;
  private size: Int32Array;
  /** Depot list link of a full magazine, or free-pool link of an unused one. */
  private next: Int32Array;
  private freeMags = NO_MAG;
  private used = 0;
  /** Per (bin, cpu) at bin * cpus + cpu. */
  private readonly loaded: Int32Array;
  private readonly prev: Int32Array;
  /** Per bin: depot head (newest), magazine count, due time of the armed trim work (IDLE: not armed). */
  private readonly depotHead = new Int32Array(IOVA_RANGE_CACHE_MAX_SIZE).fill(NO_MAG);
  private readonly depotSize = new Int32Array(IOVA_RANGE_CACHE_MAX_SIZE);
  private readonly workDue = new Float64Array(IOVA_RANGE_CACHE_MAX_SIZE).fill(IDLE);
  /** Node of the entry the last `pop` returned. */
  popped = -1;

  constructor(cpus: number, depotKind: RcacheDepot) {
    this.cpus = cpus;
    this.depotKind = depotKind;
    const n = IOVA_RANGE_CACHE_MAX_SIZE * cpus;
    const cap = 2 * n + 8;
    this.pfns = new Float64Array(cap * IOVA_MAG_SIZE);
    this.nodes = new Int32Array(cap * IOVA_MAG_SIZE);
    this.size = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.loaded = new Int32Array(n);
    this.prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.loaded[i] = this.allocMag();
      this.prev[i] = this.allocMag();
    }
  }

  /** Ranges held in magazines and depots. */
  get cachedCount(): number {
    let c = 0;
    for (let i = 0; i < this.loaded.length; i++) c += this.size[this.loaded[i]!]! + this.size[this.prev[i]!]!;
    for (let b = 0; b < IOVA_RANGE_CACHE_MAX_SIZE; b++) c += this.depotSize[b]! * IOVA_MAG_SIZE;
    return c;
  }

  /** Full magazines in bin `bin`'s depot. */
  depotCount(bin: number): number {
    return this.depotSize[bin]!;
  }

  magSize(m: number): number {
    return this.size[m]!;
  }

  /** Tree node of entry i of magazine m. */
  magNode(m: number, i: number): number {
    return this.nodes[m * IOVA_MAG_SIZE + i]!;
  }

  /**
   * `__iova_rcache_get`: makes `loaded` a non-empty magazine (swapping with `prev`, or trading the empty `loaded`
   * for the depot's newest), then `iova_magazine_pop`: the top-most pfn <= `bound`, the hole filled with the
   * last entry. Returns the pfn (its node in `popped`), or -1 on a miss. The swaps persist even when the pop then
   * finds nothing under the bound, as in Linux.
   */
  pop(bin: number, cpu: number, bound: number): number {
    const c = bin * this.cpus + cpu;
    let m = this.loaded[c]!;
    let s = this.size[m]!;
    if (s === 0) {
      const p = this.prev[c]!;
      if (this.size[p]! > 0) {
        this.prev[c] = m;
        this.loaded[c] = p;
      } else {
        const d = this.depotHead[bin]!;
        if (d === NO_MAG) return -1;
        this.depotHead[bin] = this.next[d]!;
        this.depotSize[bin]!--;
        this.releaseMag(m);
        this.loaded[c] = d;
      }
      m = this.loaded[c]!;
      s = this.size[m]!;
    }
    const { pfns } = this;
    const base = m * IOVA_MAG_SIZE;
    let i = base + s - 1;
    while (pfns[i]! > bound) {
      if (i === base) return -1;
      i--;
    }
    const pfn = pfns[i]!;
    const last = base + s - 1;
    this.popped = this.nodes[i]!;
    pfns[i] = pfns[last]!;
    this.nodes[i] = this.nodes[last]!;
    this.size[m] = s - 1;
    return pfn;
  }

  /**
   * `__iova_rcache_insert`: pushes onto `loaded`, swapping in `prev` when `loaded` is full; when both are full a
   * fresh magazine is loaded and the full one goes to the depot. Returns a magazine whose ranges the caller must
   * free to the tree and then `release` (array depot already full), or NO_MAG. `now`: model time, in ms.
   */
  insert(bin: number, cpu: number, pfn: number, node: number, now: number): number {
    const c = bin * this.cpus + cpu;
    let m = this.loaded[c]!;
    let overflow = NO_MAG;
    if (this.size[m] === IOVA_MAG_SIZE) {
      const p = this.prev[c]!;
      if (this.size[p]! < IOVA_MAG_SIZE) {
        this.prev[c] = m;
        this.loaded[c] = p;
      } else {
        if (this.depotKind === "list" || this.depotSize[bin]! < MAX_GLOBAL_MAGS) this.depotPush(bin, m, now);
        else overflow = m;
        this.loaded[c] = this.allocMag();
      }
      m = this.loaded[c]!;
    }
    const s = this.size[m]!;
    this.pfns[m * IOVA_MAG_SIZE + s] = pfn;
    this.nodes[m * IOVA_MAG_SIZE + s] = node;
    this.size[m] = s + 1;
    return overflow;
  }

  /** CPU `cpu`'s `loaded` and `prev` magazines of bin `bin` (`free_cpu_cached_iovas` empties them in place). */
  cpuMagazines(bin: number, cpu: number): [number, number] {
    const c = bin * this.cpus + cpu;
    return [this.loaded[c]!, this.prev[c]!];
  }

  /** Takes bin `bin`'s whole depot, in the order `free_global_cached_iovas` frees it; release each when done. */
  takeDepot(bin: number): number[] {
    const out: number[] = [];
    for (let m = this.depotHead[bin]!; m !== NO_MAG; m = this.next[m]!) out.push(m);
    this.depotHead[bin] = NO_MAG;
    this.depotSize[bin] = 0;
    if (this.depotKind === "array") out.reverse(); // depot[0] (oldest) first
    return out;
  }

  /** Empties magazine m (its ranges are the caller's to free first). */
  clear(m: number): void {
    this.size[m] = 0;
  }

  /** Returns an emptied magazine that is no longer loaded, prev or in a depot to the pool (`iova_magazine_free`). */
  release(m: number): void {
    this.releaseMag(m);
  }

  /** The earliest due trim work at or before `until`: its bin, or -1. Ties go to the lower bin. */
  dueWork(until: number): number {
    let best = -1;
    for (let b = 0; b < IOVA_RANGE_CACHE_MAX_SIZE; b++) {
      const t = this.workDue[b]!;
      if (t !== IDLE && t <= until && (best < 0 || t < this.workDue[best]!)) best = b;
    }
    return best;
  }

  dueAt(bin: number): number {
    return this.workDue[bin]!;
  }

  /**
   * `iova_depot_work_func` for bin `bin`, running at its due time: with more than `num_online_cpus()` magazines in
   * the depot it pops the newest and re-arms for IOVA_DEPOT_DELAY later; returns that magazine (the caller frees
   * its ranges to the tree and releases it) or NO_MAG.
   */
  runWork(bin: number): number {
    const at = this.workDue[bin]!;
    this.workDue[bin] = IDLE;
    if (this.depotSize[bin]! <= this.cpus) return NO_MAG;
    const m = this.depotHead[bin]!;
    this.depotHead[bin] = this.next[m]!;
    this.depotSize[bin]!--;
    this.workDue[bin] = at + IOVA_DEPOT_DELAY_MS;
    return m;
  }

  private depotPush(bin: number, m: number, now: number): void {
    this.next[m] = this.depotHead[bin]!;
    this.depotHead[bin] = m;
    this.depotSize[bin]!++;
    // schedule_delayed_work: a no-op while the work is already pending.
    if (this.depotKind === "list" && this.workDue[bin] === IDLE) this.workDue[bin] = now + IOVA_DEPOT_DELAY_MS;
  }

  private allocMag(): number {
    let m = this.freeMags;
    if (m !== NO_MAG) this.freeMags = this.next[m]!;
    else {
      if (this.used === this.size.length) this.grow();
      m = this.used++;
    }
    this.size[m] = 0;
    return m;
  }

  private releaseMag(m: number): void {
    this.size[m] = 0;
    this.next[m] = this.freeMags;
    this.freeMags = m;
  }

  private grow(): void {
    const cap = this.size.length * 2;
    const pfns = new Float64Array(cap * IOVA_MAG_SIZE);
    pfns.set(this.pfns);
    this.pfns = pfns;
    const nodes = new Int32Array(cap * IOVA_MAG_SIZE);
    nodes.set(this.nodes);
    this.nodes = nodes;
    const size = new Int32Array(cap);
    size.set(this.size);
    this.size = size;
    const next = new Int32Array(cap);
    next.set(this.next);
    this.next = next;
  }
}
