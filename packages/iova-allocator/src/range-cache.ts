import { IOVA_MAG_SIZE, IOVA_RANGE_CACHE_MAX_SIZE, MAX_GLOBAL_MAGS } from "./constants.js";

/**
 * One magazine (`struct iova_magazine`): a stack of cached start pfns. We also keep the tree node each pfn came
 * from so popping and flushing need no lookup; the pfn itself is what Linux stores and returns.
 */
export class Magazine {
  size = 0;
  readonly pfns = new Float64Array(IOVA_MAG_SIZE);
  readonly nodes = new Int32Array(IOVA_MAG_SIZE);

  get full(): boolean {
    return this.size === IOVA_MAG_SIZE;
  }

  push(pfn: number, node: number): void {
    this.pfns[this.size] = pfn;
    this.nodes[this.size++] = node;
  }

  /**
   * `iova_magazine_pop`: the top-most entry whose pfn is <= `bound`, searching downward; the hole is filled with
   * the last entry. Returns the entry's index before removal, or -1 when no pfn qualifies.
   */
  popIndex(bound: number): number {
    let i = this.size - 1;
    while (this.pfns[i]! > bound) {
      if (i === 0) return -1;
      i--;
    }
    return i;
  }

  removeAt(i: number): void {
    const last = --this.size;
    this.pfns[i] = this.pfns[last]!;
    this.nodes[i] = this.nodes[last]!;
  }
}

/** `struct iova_cpu_rcache`. */
interface CpuRangeCache {
  loaded: Magazine;
  prev: Magazine;
}

/** `struct iova_rcache`: one size bin, its per-CPU magazines and its depot of full magazines. */
export class RangeCacheBin {
  readonly cpu: CpuRangeCache[];
  readonly depot: Magazine[] = [];

  constructor(cpus: number) {
    this.cpu = Array.from({ length: cpus }, () => ({ loaded: new Magazine(), prev: new Magazine() }));
  }

  /**
   * `__iova_rcache_get` minus the pop: makes `loaded` the magazine to pop from (swapping with `prev`, or trading
   * the empty `loaded` for a depot magazine) and returns it, or null on a miss. The swaps persist even when the
   * pop then finds nothing under the caller's limit, as in Linux.
   */
  magazineForGet(cpu: number): Magazine | null {
    const c = this.cpu[cpu]!;
    if (c.loaded.size > 0) return c.loaded;
    if (c.prev.size > 0) {
      const t = c.loaded;
      c.loaded = c.prev;
      c.prev = t;
      return c.loaded;
    }
    const mag = this.depot.pop();
    if (mag === undefined) return null;
    c.loaded = mag; // the empty loaded magazine is freed
    return mag;
  }

  /**
   * `__iova_rcache_insert`: pushes onto `loaded` (swapping in `prev` when `loaded` is full); when both are full a
   * fresh magazine is loaded and the full one goes to the depot — or, with 32 already there, is returned so the
   * caller frees its ranges back to the tree.
   */
  insert(pfn: number, node: number, cpu: number): Magazine | null {
    const c = this.cpu[cpu]!;
    let overflow: Magazine | null = null;
    if (c.loaded.full) {
      if (!c.prev.full) {
        const t = c.loaded;
        c.loaded = c.prev;
        c.prev = t;
      } else {
        if (this.depot.length < MAX_GLOBAL_MAGS) this.depot.push(c.loaded);
        else overflow = c.loaded;
        c.loaded = new Magazine();
      }
    }
    c.loaded.push(pfn, node);
    return overflow;
  }
}

/** All six bins (`iovad->rcaches`). */
export function createRangeCaches(cpus: number): RangeCacheBin[] {
  return Array.from({ length: IOVA_RANGE_CACHE_MAX_SIZE }, () => new RangeCacheBin(cpus));
}
