import { alignedFit } from "./pfn-math.js";

/** "No node" for child links and search results. */
export const NIL = -1;

const INITIAL_CAPACITY = 64;
const MAX_DEPTH = 96; // an AVL tree of 2^53 nodes is < 80 deep
const FLAG_CACHED = 1;

/**
 * The allocated ranges of one IOVA domain: an AVL tree keyed by `pfnLo` (ranges never overlap, so `pfnHi` is
 * sorted too), stored as parallel typed arrays indexed by node number (≈58 bytes per range, no per-node object).
 *
 * Augmentation (DESIGN.md): each node owns the free gap just below it, between its predecessor's `pfnHi` and its
 * own `pfnLo`. `gapLen` is that gap's length and `gapAligned` the largest size whose size-aligned placement fits
 * in it; the lowest node owns an infinite gap (Linux's walk always stops there). `maxLen`/`maxAligned` are the
 * subtree maxima, so "the highest node at or below K whose gap can take `size`" is one O(log n) descent.
 *
 * Node numbers are stable for a node's lifetime (the domain's cached hints and the range caches hold them) and
 * recycled after removal.
 */
export class RangeTree {
  lo: Float64Array;
  hi: Float64Array;
  private gapLen: Float64Array;
  private gapAligned: Float64Array;
  private maxLen: Float64Array;
  private maxAligned: Float64Array;
  private left: Int32Array;
  private right: Int32Array;
  private height: Int8Array;
  private flags: Uint8Array;
  private root = NIL;
  private freeHead = NIL;
  private used = 0;
  private live = 0;
  private readonly path = new Int32Array(MAX_DEPTH);
  private readonly dirs = new Int8Array(MAX_DEPTH);

  constructor(capacity = INITIAL_CAPACITY) {
    this.lo = new Float64Array(capacity);
    this.hi = new Float64Array(capacity);
    this.gapLen = new Float64Array(capacity);
    this.gapAligned = new Float64Array(capacity);
    this.maxLen = new Float64Array(capacity);
    this.maxAligned = new Float64Array(capacity);
    this.left = new Int32Array(capacity);
    this.right = new Int32Array(capacity);
    this.height = new Int8Array(capacity);
    this.flags = new Uint8Array(capacity);
  }

  /** Number of ranges in the tree. */
  get count(): number {
    return this.live;
  }

  /** Bytes held by the node arrays (capacity, not just live nodes). */
  get byteLength(): number {
    return this.lo.length * (8 * 6 + 4 * 2 + 1 + 1);
  }

  isCached(n: number): boolean {
    return (this.flags[n]! & FLAG_CACHED) !== 0;
  }

  setCached(n: number, cached: boolean): void {
    this.flags[n] = cached ? FLAG_CACHED : 0;
  }

  // ---- searches -------------------------------------------------------------------------------------------

  /** `private_find_iova`: the node whose [lo, hi] contains `pfn`. */
  find(pfn: number): number {
    const { lo, hi, left, right } = this;
    let n = this.root;
    while (n !== NIL) {
      if (pfn < lo[n]!) n = left[n]!;
      else if (pfn > hi[n]!) n = right[n]!;
      else return n;
    }
    return NIL;
  }

  /** Lowest node with `lo >= key`. */
  lowerBound(key: number): number {
    const { lo, left, right } = this;
    let n = this.root;
    let best = NIL;
    while (n !== NIL) {
      if (lo[n]! >= key) {
        best = n;
        n = left[n]!;
      } else n = right[n]!;
    }
    return best;
  }

  /** Highest node with `lo < key`. */
  floorBelow(key: number): number {
    const { lo, left, right } = this;
    let n = this.root;
    let best = NIL;
    while (n !== NIL) {
      if (lo[n]! < key) {
        best = n;
        n = right[n]!;
      } else n = left[n]!;
    }
    return best;
  }

  /** Lowest node with `hi >= pfn` (the first one `reserve_iova` can overlap). */
  firstEndingAtOrAbove(pfn: number): number {
    const { hi, left, right } = this;
    let n = this.root;
    let best = NIL;
    while (n !== NIL) {
      if (hi[n]! >= pfn) {
        best = n;
        n = left[n]!;
      } else n = right[n]!;
    }
    return best;
  }

  /** `rb_next`: the node after `n` in address order. */
  next(n: number): number {
    return this.lowerBound(this.lo[n]! + 1);
  }

  /** `rb_prev`: the node before `n` in address order. */
  prev(n: number): number {
    return this.floorBelow(this.lo[n]!);
  }

  /**
   * Highest node with `lo <= key` whose own gap takes `size` (aligned or not). The lowest node always qualifies
   * (its gap is infinite), so the result is NIL only when no node has `lo <= key`.
   */
  lastFit(key: number, size: number, aligned: boolean): number {
    const { lo, left, right } = this;
    const own = aligned ? this.gapAligned : this.gapLen;
    const max = aligned ? this.maxAligned : this.maxLen;
    let n = this.root;
    let hitNode = NIL;
    let hitTree = NIL;
    // Walk the search path for `key`; every node or left subtree that qualifies lies right of the previous hit.
    while (n !== NIL) {
      if (lo[n]! > key) {
        n = left[n]!;
        continue;
      }
      if (own[n]! >= size) {
        hitNode = n;
        hitTree = NIL;
      } else {
        const l = left[n]!;
        if (l !== NIL && max[l]! >= size) {
          hitTree = l;
          hitNode = NIL;
        }
      }
      n = right[n]!;
    }
    if (hitNode !== NIL) return hitNode;
    n = hitTree;
    while (n !== NIL) {
      const r = right[n]!;
      if (r !== NIL && max[r]! >= size) n = r;
      else if (own[n]! >= size) return n;
      else n = left[n]!;
    }
    return NIL;
  }

  /** In-order traversal (address order). */
  *nodes(): Generator<number> {
    const stack: number[] = [];
    let n = this.root;
    while (n !== NIL || stack.length > 0) {
      while (n !== NIL) {
        stack.push(n);
        n = this.left[n]!;
      }
      n = stack.pop()!;
      yield n;
      n = this.right[n]!;
    }
  }

  /**
   * Full structural check for tests: BST order without overlap, AVL balance and heights, each node's own gap
   * and the subtree maxima. Returns a description of the first violation, or null.
   */
  validate(): string | null {
    let prevHi = Number.NEGATIVE_INFINITY;
    let first = true;
    for (const n of this.nodes()) {
      const lo = this.lo[n]!;
      const hi = this.hi[n]!;
      if (hi < lo) return `node ${n}: hi ${hi} < lo ${lo}`;
      if (lo <= prevHi) return `node ${n}: [${lo}, ${hi}] overlaps or is out of order after ${prevHi}`;
      const wantLen = first ? Number.POSITIVE_INFINITY : lo - prevHi - 1;
      const wantAligned = first ? Number.POSITIVE_INFINITY : alignedFit(prevHi + 1, lo);
      if (this.gapLen[n] !== wantLen || this.gapAligned[n] !== wantAligned)
        return `node ${n}: gap ${this.gapLen[n]}/${this.gapAligned[n]}, want ${wantLen}/${wantAligned}`;
      prevHi = hi;
      first = false;
    }
    const check = (n: number): string | null => {
      if (n === NIL) return null;
      const l = this.left[n]!;
      const r = this.right[n]!;
      const e = check(l) ?? check(r);
      if (e) return e;
      if (Math.abs(this.h(l) - this.h(r)) > 1) return `node ${n}: unbalanced`;
      if (this.height[n] !== Math.max(this.h(l), this.h(r)) + 1) return `node ${n}: height`;
      const ml = Math.max(this.gapLen[n]!, l === NIL ? 0 : this.maxLen[l]!, r === NIL ? 0 : this.maxLen[r]!);
      const ma = Math.max(
        this.gapAligned[n]!,
        l === NIL ? 0 : this.maxAligned[l]!,
        r === NIL ? 0 : this.maxAligned[r]!,
      );
      if (this.maxLen[n] !== ml || this.maxAligned[n] !== ma) return `node ${n}: subtree maxima`;
      return null;
    };
    return check(this.root);
  }

  // ---- updates --------------------------------------------------------------------------------------------

  /** Inserts [lo, hi] (caller guarantees no overlap and a fresh `lo`) and returns its node number. */
  insert(lo: number, hi: number): number {
    const x = this.allocNode(lo, hi);
    const { path, dirs } = this;
    let depth = 0;
    let n = this.root;
    let pred = NIL;
    let succ = NIL;
    while (n !== NIL) {
      path[depth] = n;
      if (lo < this.lo[n]!) {
        succ = n;
        dirs[depth++] = 0;
        n = this.left[n]!;
      } else {
        pred = n;
        dirs[depth++] = 1;
        n = this.right[n]!;
      }
    }
    this.setGap(x, pred);
    this.pull(x);
    if (depth === 0) this.root = x;
    else if (dirs[depth - 1] === 0) this.left[path[depth - 1]!] = x;
    else this.right[path[depth - 1]!] = x;
    this.rebalancePath(depth);
    if (succ !== NIL) this.refreshGap(succ, x);
    return x;
  }

  /** Removes node `x` (`rb_erase`). */
  remove(x: number): void {
    const pred = this.prev(x);
    const succ = this.next(x);
    const { path, dirs, left, right } = this;
    const key = this.lo[x]!;
    let depth = 0;
    let n = this.root;
    while (n !== x) {
      path[depth] = n;
      if (key < this.lo[n]!) {
        dirs[depth++] = 0;
        n = left[n]!;
      } else {
        dirs[depth++] = 1;
        n = right[n]!;
      }
    }
    const xDepth = depth;
    let replacement: number;
    if (left[x] === NIL || right[x] === NIL) {
      replacement = left[x] !== NIL ? left[x]! : right[x]!;
    } else {
      // Splice out the successor (leftmost of the right subtree) and put it where x was.
      path[depth] = x; // placeholder, becomes the successor below
      dirs[depth++] = 1;
      let s = right[x]!;
      while (left[s] !== NIL) {
        path[depth] = s;
        dirs[depth++] = 0;
        s = left[s]!;
      }
      if (depth - 1 === xDepth) right[x] = right[s]!;
      else left[path[depth - 1]!] = right[s]!;
      left[s] = left[x]!;
      right[s] = right[x]!;
      path[xDepth] = s;
      replacement = s;
    }
    if (xDepth === 0) this.root = replacement;
    else if (dirs[xDepth - 1] === 0) left[path[xDepth - 1]!] = replacement;
    else right[path[xDepth - 1]!] = replacement;
    this.rebalancePath(depth);
    this.freeNode(x);
    if (succ !== NIL) this.refreshGap(succ, pred);
  }

  /** Lowers node `x`'s `lo` (reserve_iova growing a node downward; order is unchanged). */
  extendDown(x: number, newLo: number): void {
    const pred = this.floorBelow(newLo);
    this.lo[x] = newLo;
    this.refreshGap(x, pred);
  }

  // ---- internals ------------------------------------------------------------------------------------------

  private allocNode(lo: number, hi: number): number {
    let x = this.freeHead;
    if (x !== NIL) this.freeHead = this.left[x]!;
    else {
      if (this.used === this.lo.length) this.grow();
      x = this.used++;
    }
    this.lo[x] = lo;
    this.hi[x] = hi;
    this.left[x] = NIL;
    this.right[x] = NIL;
    this.height[x] = 1;
    this.flags[x] = 0;
    this.live++;
    return x;
  }

  private freeNode(x: number): void {
    this.left[x] = this.freeHead;
    this.freeHead = x;
    this.live--;
  }

  /** Grows by half: right after a growth, at most 1.5 x 58 = 87 bytes per live range (doubling would allow 116). */
  private grow(): void {
    const cap = Math.ceil(this.lo.length * 1.5);
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.lo = f64(this.lo);
    this.hi = f64(this.hi);
    this.gapLen = f64(this.gapLen);
    this.gapAligned = f64(this.gapAligned);
    this.maxLen = f64(this.maxLen);
    this.maxAligned = f64(this.maxAligned);
    const i32 = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.left = i32(this.left);
    this.right = i32(this.right);
    const h = new Int8Array(cap);
    h.set(this.height);
    this.height = h;
    const fl = new Uint8Array(cap);
    fl.set(this.flags);
    this.flags = fl;
  }

  /** Sets x's own gap from its predecessor (NIL: x is lowest, its gap is unbounded). */
  private setGap(x: number, pred: number): void {
    if (pred === NIL) {
      this.gapLen[x] = Number.POSITIVE_INFINITY;
      this.gapAligned[x] = Number.POSITIVE_INFINITY;
    } else {
      const gapLo = this.hi[pred]! + 1;
      this.gapLen[x] = this.lo[x]! - gapLo;
      this.gapAligned[x] = alignedFit(gapLo, this.lo[x]!);
    }
  }

  /** Recomputes x's own gap and the maxima on the path from the root down to x. */
  private refreshGap(x: number, pred: number): void {
    this.setGap(x, pred);
    const key = this.lo[x]!;
    const { path } = this;
    let depth = 0;
    let n = this.root;
    while (n !== x) {
      path[depth++] = n;
      n = key < this.lo[n]! ? this.left[n]! : this.right[n]!;
    }
    this.pull(x);
    for (let i = depth - 1; i >= 0; i--) this.pull(path[i]!);
  }

  private pull(n: number): void {
    const l = this.left[n]!;
    const r = this.right[n]!;
    let len = this.gapLen[n]!;
    let al = this.gapAligned[n]!;
    let h = 0;
    if (l !== NIL) {
      if (this.maxLen[l]! > len) len = this.maxLen[l]!;
      if (this.maxAligned[l]! > al) al = this.maxAligned[l]!;
      h = this.height[l]!;
    }
    if (r !== NIL) {
      if (this.maxLen[r]! > len) len = this.maxLen[r]!;
      if (this.maxAligned[r]! > al) al = this.maxAligned[r]!;
      if (this.height[r]! > h) h = this.height[r]!;
    }
    this.maxLen[n] = len;
    this.maxAligned[n] = al;
    this.height[n] = h + 1;
  }

  private h(n: number): number {
    return n === NIL ? 0 : this.height[n]!;
  }

  private rotateLeft(n: number): number {
    const r = this.right[n]!;
    this.right[n] = this.left[r]!;
    this.left[r] = n;
    this.pull(n);
    this.pull(r);
    return r;
  }

  private rotateRight(n: number): number {
    const l = this.left[n]!;
    this.left[n] = this.right[l]!;
    this.right[l] = n;
    this.pull(n);
    this.pull(l);
    return l;
  }

  private rebalance(n: number): number {
    this.pull(n);
    const bf = this.h(this.left[n]!) - this.h(this.right[n]!);
    if (bf > 1) {
      const l = this.left[n]!;
      if (this.h(this.left[l]!) < this.h(this.right[l]!)) this.left[n] = this.rotateLeft(l);
      return this.rotateRight(n);
    }
    if (bf < -1) {
      const r = this.right[n]!;
      if (this.h(this.right[r]!) < this.h(this.left[r]!)) this.right[n] = this.rotateRight(r);
      return this.rotateLeft(n);
    }
    return n;
  }

  /** Rebalances and re-aggregates path[depth-1] .. path[0], relinking each subtree root into its parent. */
  private rebalancePath(depth: number): void {
    const { path, dirs } = this;
    for (let i = depth - 1; i >= 0; i--) {
      const sub = this.rebalance(path[i]!);
      if (i === 0) this.root = sub;
      else if (dirs[i - 1] === 0) this.left[path[i - 1]!] = sub;
      else this.right[path[i - 1]!] = sub;
    }
  }
}
