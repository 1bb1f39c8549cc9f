/** "Not in the index" (node numbers are >= 0). */
export const ABSENT = -1;

const EMPTY = -1;
const INITIAL_BITS = 6;

/**
 * pfn -> tree node for the ranges that went through `allocFast`/`freeFast`, so `freeFast` can check its pfn
 * (allocated, not already cached) without a tree descent. Linux's `free_iova_fast` trusts its caller; we refuse a
 * pfn never handed out, cheaply. Open addressing with linear probing over typed arrays, deletion by backward shift
 * (no tombstones), at most half full.
 */
export class PfnIndex {
  private keys: Float64Array;
  private vals: Int32Array;
  private bits: number;
  private mask: number;
  private size = 0;

  constructor() {
    this.bits = INITIAL_BITS;
    this.mask = (1 << INITIAL_BITS) - 1;
    this.keys = new Float64Array(1 << INITIAL_BITS).fill(EMPTY);
    this.vals = new Int32Array(1 << INITIAL_BITS);
  }

  get count(): number {
    return this.size;
  }

  /** The node stored for `pfn`, or ABSENT. */
  get(pfn: number): number {
    const { keys, mask } = this;
    for (let s = this.slot(pfn); ; s = (s + 1) & mask) {
      const k = keys[s]!;
      if (k === pfn) return this.vals[s]!;
      if (k === EMPTY) return ABSENT;
    }
  }

  /** Stores `node` for `pfn` (which must not be present). */
  set(pfn: number, node: number): void {
    if (2 * (this.size + 1) > this.mask + 1) this.resize(this.bits + 1);
    const { keys, mask } = this;
    let s = this.slot(pfn);
    while (keys[s] !== EMPTY) s = (s + 1) & mask;
    keys[s] = pfn;
    this.vals[s] = node;
    this.size++;
  }

  /** Removes `pfn` (which must be present). */
  delete(pfn: number): void {
    const { keys, vals, mask } = this;
    let s = this.slot(pfn);
    while (keys[s] !== pfn) s = (s + 1) & mask;
    // Backward shift: pull every later entry of the probe run that may move into the hole.
    for (let j = (s + 1) & mask; keys[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.slot(keys[j]!);
      if (((j - home) & mask) >= ((j - s) & mask)) {
        keys[s] = keys[j]!;
        vals[s] = vals[j]!;
        s = j;
      }
    }
    keys[s] = EMPTY;
    this.size--;
  }

  private slot(pfn: number): number {
    // Low 32 bits of the pfn, Fibonacci-hashed; pfns differing only above 2^32 just share a probe run.
    return Math.imul(pfn >>> 0, 0x9e3779b1) >>> (32 - this.bits);
  }

  private resize(bits: number): void {
    const { keys, vals } = this;
    this.bits = bits;
    this.mask = (1 << bits) - 1;
    this.keys = new Float64Array(1 << bits).fill(EMPTY);
    this.vals = new Int32Array(1 << bits);
    this.size = 0;
    for (let s = 0; s < keys.length; s++) if (keys[s] !== EMPTY) this.set(keys[s]!, vals[s]!);
  }
}
