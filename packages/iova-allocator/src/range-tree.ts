import { alignedFit } from "./pfn-math.js";

/** "No node" for child links and search results. */
export const NIL = -1;
/**
 * Gap lengths are stored as u32, saturated here: a search for a size below this is exact; the domain walks node
 * by node for larger sizes (a request of 2^32 - 1 granules or more).
 */
export const GAP_SAT = 0xffffffff;

const INITIAL_CAPACITY = 64;
/** AVL height < 1.45 log2(n + 2) < 46 for int32 node numbers; 6 bits of `meta` hold it. */
const MAX_DEPTH = 64;
/** Float64 slots per node (40 bytes): lo, hi, then four u32 gap words, then the two i32 child links. */
const F = 5;
/** 32-bit words per node, and the word offsets of the u32 gaps and i32 links within a node. */
const W = 10;
const GAP_LEN = 4;
const GAP_AL = 5;
const MAX_LEN = 6;
const MAX_AL = 7;
const LEFT = 8;
const RIGHT = 9;
const HEIGHT = 0x3f;
const CACHED = 0x40;
const INDEXED = 0x80;
/** A gap this long holds a size-aligned block of 2^32 granules, so both its gap words saturate. */
const SAT_GAP = 2 ** 34;

/**
 * The allocated ranges of one IOVA domain: an AVL tree keyed by `pfnLo` (ranges never overlap, so `pfnHi` is
 * sorted too). A node's fields sit together in one 40-byte record of a single buffer (lo and hi as f64, the gap
 * words as u32, the child links as i32) plus one byte of height and flags: 41 bytes per slot, one cache line per
 * node visited.
 *
 * Augmentation (DESIGN.md): each node owns the free gap just below it, between its predecessor's `pfnHi` and its
 * own `pfnLo`. `gapLen` is that gap's length and `gapAligned` the largest size whose size-aligned placement fits
 * in it; the lowest node owns an infinite gap (Linux's walk always stops there). `maxLen`/`maxAligned` are the
 * subtree maxima, so "the highest node at or below K whose gap can take `size`" is one O(log n) descent. All four
 * saturate at GAP_SAT.
 *
 * There are no parent links: every update works on the root-to-node path of the descent that found the node
 * (`find`, `locate`, `insert`), and stops climbing once a subtree's height and maxima are what they were.
 *
 * Node numbers are stable for a node's lifetime (the domain's cached hints and the range caches hold them) and
 * recycled after removal.
 */
export class RangeTree {
  private f: Float64Array;
  private u: Uint32Array;
  private i: Int32Array;
  /** Height (6 bits), cached, indexed. */
  private meta: Uint8Array;
  private cap: number;
  private root = NIL;
  private freeHead = NIL;
  private used = 0;
  private live = 0;
  /**
   * The root-to-node path of `onPath` (path[0] the root, path[depth - 1] = onPath; dirs[k] = 1 went right), kept
   * valid across updates that rotate nothing above it: the next find of the same range, or an insert into its
   * gap (Linux starts the insert at the hint), needs no descent from the root. NIL: no valid path.
   */
  private readonly path = new Int32Array(MAX_DEPTH);
  private readonly dirs = new Uint8Array(MAX_DEPTH);
  private depth = 0;
  private onPath = NIL;
  /** Set when the last fixup rotated: every recorded path may be stale. */
  private rotated = false;

  constructor(capacity = INITIAL_CAPACITY) {
    this.cap = capacity;
    const buf = new ArrayBuffer(capacity * F * 8);
    this.f = new Float64Array(buf);
    this.u = new Uint32Array(buf);
    this.i = new Int32Array(buf);
    this.meta = new Uint8Array(capacity);
  }

  /** Number of ranges in the tree. */
  get count(): number {
    return this.live;
  }

  /** Bytes held by the node arrays (capacity, not just live nodes). */
  get byteLength(): number {
    return this.cap * (F * 8 + 1);
  }

  lo(n: number): number {
    return this.f[n * F]!;
  }

  hi(n: number): number {
    return this.f[n * F + 1]!;
  }

  isCached(n: number): boolean {
    return (this.meta[n]! & CACHED) !== 0;
  }

  setCached(n: number, cached: boolean): void {
    this.meta[n] = cached ? this.meta[n]! | CACHED : this.meta[n]! & ~CACHED;
  }

  /** Whether the domain's pfn index holds this node (under its current `lo`). */
  isIndexed(n: number): boolean {
    return (this.meta[n]! & INDEXED) !== 0;
  }

  setIndexed(n: number, indexed: boolean): void {
    this.meta[n] = indexed ? this.meta[n]! | INDEXED : this.meta[n]! & ~INDEXED;
  }

  /** Whether node n's own gap takes `size` (exact for size < GAP_SAT). */
  ownFits(n: number, size: number, aligned: boolean): boolean {
    return this.u[n * W + (aligned ? GAP_AL : GAP_LEN)]! >= size;
  }

  // ---- searches -------------------------------------------------------------------------------------------

  /** `private_find_iova`: the node whose [lo, hi] contains `pfn`; records the path to it. */
  find(pfn: number): number {
    const { f, i, path, dirs } = this;
    const last = this.onPath;
    if (last !== NIL && pfn >= f[last * F]! && pfn <= f[last * F + 1]!) return last;
    let d = 0;
    let n = this.root;
    while (n !== NIL) {
      path[d] = n;
      if (pfn < f[n * F]!) {
        dirs[d++] = 0;
        n = i[n * W + LEFT]!;
      } else if (pfn > f[n * F + 1]!) {
        dirs[d++] = 1;
        n = i[n * W + RIGHT]!;
      } else {
        this.depth = d + 1;
        this.onPath = n;
        return n;
      }
    }
    this.depth = 0;
    this.onPath = NIL;
    return NIL;
  }

  /** Records the path to node x (which must be in the tree). */
  locate(x: number): void {
    if (this.onPath !== x && this.find(this.f[x * F]!) !== x)
      throw new Error(`RangeTree: node ${x} is not in the tree`);
  }

  /** `rb_next` of the node the last find/locate reached, from its path (no descent). */
  successorOnPath(): number {
    const { i, path, dirs } = this;
    const x = path[this.depth - 1]!;
    let n = i[x * W + RIGHT]!;
    if (n !== NIL) {
      for (let l = i[n * W + LEFT]!; l !== NIL; l = i[l * W + LEFT]!) n = l;
      return n;
    }
    for (let k = this.depth - 2; k >= 0; k--) if (dirs[k] === 0) return path[k]!;
    return NIL;
  }

  /** Lowest node with `lo >= key`. */
  lowerBound(key: number): number {
    const { f, i } = this;
    let n = this.root;
    let best = NIL;
    while (n !== NIL) {
      if (f[n * F]! >= key) {
        best = n;
        n = i[n * W + LEFT]!;
      } else n = i[n * W + RIGHT]!;
    }
    return best;
  }

  /** Highest node with `lo < key`. */
  floorBelow(key: number): number {
    const { f, i } = this;
    let n = this.root;
    let best = NIL;
    while (n !== NIL) {
      if (f[n * F]! < key) {
        best = n;
        n = i[n * W + RIGHT]!;
      } else n = i[n * W + LEFT]!;
    }
    return best;
  }

  /** Lowest node with `hi >= pfn` (the first one `reserve_iova` can overlap). */
  firstEndingAtOrAbove(pfn: number): number {
    const { f, i } = this;
    let n = this.root;
    let best = NIL;
    while (n !== NIL) {
      if (f[n * F + 1]! >= pfn) {
        best = n;
        n = i[n * W + LEFT]!;
      } else n = i[n * W + RIGHT]!;
    }
    return best;
  }

  /** `rb_next`: the node after `n` in address order. */
  next(n: number): number {
    return this.lowerBound(this.f[n * F]! + 1);
  }

  /** `rb_prev`: the node before `n` in address order. */
  prev(n: number): number {
    return this.floorBelow(this.f[n * F]!);
  }

  /**
   * Highest node with `lo <= key` whose own gap takes `size` (aligned or not; size < GAP_SAT). The lowest node
   * always qualifies (its gap is infinite), so the result is NIL only when no node has `lo <= key`.
   */
  lastFit(key: number, size: number, aligned: boolean): number {
    const { f, u, i } = this;
    const own = aligned ? GAP_AL : GAP_LEN;
    const max = aligned ? MAX_AL : MAX_LEN;
    let n = this.root;
    let hitNode = NIL;
    let hitTree = NIL;
    // Walk the search path for `key`; every node or left subtree that qualifies lies right of the previous hit.
    while (n !== NIL) {
      if (f[n * F]! > key) {
        n = i[n * W + LEFT]!;
        continue;
      }
      if (u[n * W + own]! >= size) {
        hitNode = n;
        hitTree = NIL;
      } else {
        const l = i[n * W + LEFT]!;
        if (l !== NIL && u[l * W + max]! >= size) {
          hitTree = l;
          hitNode = NIL;
        }
      }
      n = i[n * W + RIGHT]!;
    }
    if (hitNode !== NIL) return hitNode;
    n = hitTree;
    while (n !== NIL) {
      const r = i[n * W + RIGHT]!;
      if (r !== NIL && u[r * W + max]! >= size) n = r;
      else if (u[n * W + own]! >= size) return n;
      else n = i[n * W + LEFT]!;
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
        n = this.i[n * W + LEFT]!;
      }
      n = stack.pop()!;
      yield n;
      n = this.i[n * W + RIGHT]!;
    }
  }

  /**
   * Full structural check for tests: BST order without overlap, AVL balance and heights, each node's own gap
   * and the subtree maxima. Returns a description of the first violation, or null.
   */
  validate(): string | null {
    const { u, i } = this;
    let prevHi = Number.NEGATIVE_INFINITY;
    let first = true;
    const sat = (x: number) => Math.min(x, GAP_SAT);
    for (const n of this.nodes()) {
      const lo = this.lo(n);
      const hi = this.hi(n);
      if (hi < lo) return `node ${n}: hi ${hi} < lo ${lo}`;
      if (lo <= prevHi) return `node ${n}: [${lo}, ${hi}] overlaps or is out of order after ${prevHi}`;
      const wantLen = first ? GAP_SAT : sat(lo - prevHi - 1);
      const wantAligned = first ? GAP_SAT : sat(alignedFit(prevHi + 1, lo));
      if (u[n * W + GAP_LEN] !== wantLen || u[n * W + GAP_AL] !== wantAligned)
        return `node ${n}: gap ${u[n * W + GAP_LEN]}/${u[n * W + GAP_AL]}, want ${wantLen}/${wantAligned}`;
      prevHi = hi;
      first = false;
    }
    const check = (n: number): string | null => {
      if (n === NIL) return null;
      const l = i[n * W + LEFT]!;
      const r = i[n * W + RIGHT]!;
      const e = check(l) ?? check(r);
      if (e) return e;
      if (Math.abs(this.h(l) - this.h(r)) > 1) return `node ${n}: unbalanced`;
      if (this.h(n) !== Math.max(this.h(l), this.h(r)) + 1) return `node ${n}: height`;
      const m = (c: number, k: number) => (c === NIL ? 0 : u[c * W + k]!);
      const ml = Math.max(u[n * W + GAP_LEN]!, m(l, MAX_LEN), m(r, MAX_LEN));
      const ma = Math.max(u[n * W + GAP_AL]!, m(l, MAX_AL), m(r, MAX_AL));
      if (u[n * W + MAX_LEN] !== ml || u[n * W + MAX_AL] !== ma) return `node ${n}: subtree maxima`;
      return null;
    };
    return check(this.root);
  }

  // ---- updates --------------------------------------------------------------------------------------------

  /**
   * Inserts [lo, hi] (caller guarantees no overlap and a fresh `lo`) and returns its node number. `above`: a node
   * whose own gap holds the range (NIL: unknown); when its path is still recorded the descent starts there, else
   * at the root. The predecessor and successor are the last right and left turns on the path.
   */
  insert(lo: number, hi: number, above = NIL): number {
    const { f, i, path, dirs } = this;
    let d = 0;
    let n = this.root;
    let pred = NIL;
    let succDepth = -1;
    if (above !== NIL && above === this.onPath) {
      // The new range is above's predecessor: left of above, then right as far as it goes.
      d = this.depth;
      succDepth = d - 1;
      dirs[d - 1] = 0;
      n = i[above * W + LEFT]!;
      if (n === NIL)
        for (let k = d - 2; k >= 0; k--)
          if (dirs[k] === 1) {
            pred = path[k]!;
            break;
          }
    }
    while (n !== NIL) {
      path[d] = n;
      if (lo < f[n * F]!) {
        succDepth = d;
        dirs[d++] = 0;
        n = i[n * W + LEFT]!;
      } else {
        pred = n;
        dirs[d++] = 1;
        n = i[n * W + RIGHT]!;
      }
    }
    const x = this.allocNode(lo, hi); // may grow: the arrays read above are stale from here on
    this.setGap(x, pred === NIL ? Number.NEGATIVE_INFINITY : this.f[pred * F + 1]! + 1);
    this.pull(x);
    this.link(d, x);
    if (succDepth >= 0) this.setGap(path[succDepth]!, hi + 1);
    this.fixup(d - 1, succDepth >= 0 ? succDepth : d - 1);
    path[d] = x;
    this.depth = d + 1;
    this.onPath = this.rotated ? NIL : x;
    return x;
  }

  /** Removes the node the last find/locate reached (`rb_erase`); the path must be unchanged since. */
  removeOnPath(): void {
    const { f, u, i, path, dirs } = this;
    const xDepth = this.depth - 1;
    const x = path[xDepth]!;
    const l = i[x * W + LEFT]!;
    const r = i[x * W + RIGHT]!;
    // The gap x leaves merges into its successor's: it starts above x's predecessor.
    let pred = NIL;
    if (l !== NIL) {
      pred = l;
      for (let c = i[l * W + RIGHT]!; c !== NIL; c = i[c * W + RIGHT]!) pred = c;
    } else {
      for (let k = xDepth - 1; k >= 0; k--)
        if (dirs[k] === 1) {
          pred = path[k]!;
          break;
        }
    }
    const gapLo = pred === NIL ? Number.NEGATIVE_INFINITY : f[pred * F + 1]! + 1;
    this.onPath = NIL;
    let top: number; // deepest path level to rebalance from
    let must: number; // every level down to here must be re-aggregated
    if (l === NIL || r === NIL) {
      const child = l !== NIL ? l : r;
      this.link(xDepth, child);
      top = xDepth - 1;
      must = xDepth - 1;
      if (r !== NIL) {
        // An AVL node with one child has a leaf there: that leaf is the successor.
        this.setGap(r, gapLo);
        this.pull(r);
      } else {
        for (let k = xDepth - 1; k >= 0; k--)
          if (dirs[k] === 0) {
            this.setGap(path[k]!, gapLo);
            must = k; // an ancestor: k < xDepth
            break;
          }
      }
    } else {
      // Splice out the successor s (leftmost of the right subtree) and put it where x was.
      let d = xDepth + 1;
      let s = r;
      dirs[xDepth] = 1;
      while (i[s * W + LEFT] !== NIL) {
        path[d] = s;
        dirs[d++] = 0;
        s = i[s * W + LEFT]!;
      }
      if (d - 1 === xDepth) i[x * W + RIGHT] = i[s * W + RIGHT]!;
      else i[path[d - 1]! * W + LEFT] = i[s * W + RIGHT]!;
      i[s * W + LEFT] = i[x * W + LEFT]!;
      i[s * W + RIGHT] = i[x * W + RIGHT]!;
      // s now stands for x's subtree: give it x's aggregates so the climb compares like with like.
      u[s * W + MAX_LEN] = u[x * W + MAX_LEN]!;
      u[s * W + MAX_AL] = u[x * W + MAX_AL]!;
      this.meta[s] = (this.meta[s]! & ~HEIGHT) | (this.meta[x]! & HEIGHT);
      path[xDepth] = s;
      this.link(xDepth, s);
      this.setGap(s, gapLo);
      top = d - 1;
      must = xDepth;
    }
    this.freeNode(x);
    this.fixup(top, must);
    // Without a rotation, path[0 .. top] still leads to path[top] (x's parent, or the successor's old one).
    if (!this.rotated && top >= 0) {
      this.depth = top + 1;
      this.onPath = path[top]!;
    } else this.depth = 0;
  }

  /** Lowers node `x`'s `lo` (reserve_iova growing a node downward; order is unchanged). */
  extendDown(x: number, newLo: number): void {
    const pred = this.floorBelow(newLo);
    this.locate(x);
    this.f[x * F] = newLo;
    this.setGap(x, pred === NIL ? Number.NEGATIVE_INFINITY : this.f[pred * F + 1]! + 1);
    this.fixup(this.depth - 1, this.depth - 1);
    if (this.rotated) {
      this.onPath = NIL;
      this.depth = 0;
    }
  }

  // ---- internals ------------------------------------------------------------------------------------------

  /** Makes `sub` the child that path[level] was of its parent (or the root). */
  private link(level: number, sub: number): void {
    if (level === 0) this.root = sub;
    else this.i[this.path[level - 1]! * W + (this.dirs[level - 1] === 0 ? LEFT : RIGHT)] = sub;
  }

  /**
   * Rebalances and re-aggregates path[from] .. path[0], relinking each subtree root into its parent. Above level
   * `must`, the climb stops at the first subtree whose height and maxima are unchanged: nothing above can move.
   */
  private fixup(from: number, must: number): void {
    const { u, meta, path } = this;
    this.rotated = false;
    for (let k = from; k >= 0; k--) {
      const n = path[k]!;
      const h = meta[n]! & HEIGHT;
      const ml = u[n * W + MAX_LEN]!;
      const ma = u[n * W + MAX_AL]!;
      const sub = this.rebalance(n);
      if (sub !== n) {
        this.link(k, sub);
        this.rotated = true;
      }
      if (k <= must && (meta[sub]! & HEIGHT) === h && u[sub * W + MAX_LEN] === ml && u[sub * W + MAX_AL] === ma) return;
    }
  }

  private allocNode(lo: number, hi: number): number {
    let x = this.freeHead;
    if (x !== NIL) this.freeHead = this.i[x * W + LEFT]!;
    else {
      if (this.used === this.cap) this.grow();
      x = this.used++;
    }
    this.f[x * F] = lo;
    this.f[x * F + 1] = hi;
    this.i[x * W + LEFT] = NIL;
    this.i[x * W + RIGHT] = NIL;
    this.meta[x] = 1;
    this.live++;
    return x;
  }

  private freeNode(x: number): void {
    this.i[x * W + LEFT] = this.freeHead;
    this.meta[x] = 0;
    this.freeHead = x;
    this.live--;
  }

  /** Grows by half: right after a growth, at most 1.5 x 41 = 62 bytes per live range (doubling would allow 82). */
  private grow(): void {
    const cap = Math.ceil(this.cap * 1.5);
    const buf = new ArrayBuffer(cap * F * 8);
    const f = new Float64Array(buf);
    f.set(this.f);
    this.f = f;
    this.u = new Uint32Array(buf);
    this.i = new Int32Array(buf);
    const meta = new Uint8Array(cap);
    meta.set(this.meta);
    this.meta = meta;
    this.cap = cap;
  }

  /** Sets x's own gap, the free pfns [gapLo, lo) (gapLo = -Infinity: x is lowest, its gap is unbounded). */
  private setGap(x: number, gapLo: number): void {
    const { u } = this;
    const lo = this.f[x * F]!;
    const len = lo - gapLo;
    if (len >= SAT_GAP) {
      u[x * W + GAP_LEN] = GAP_SAT;
      u[x * W + GAP_AL] = GAP_SAT;
    } else {
      u[x * W + GAP_LEN] = Math.min(len, GAP_SAT);
      const al = len <= 1 ? len : alignedFit(gapLo, lo);
      u[x * W + GAP_AL] = Math.min(al, GAP_SAT);
    }
  }

  private pull(n: number): void {
    const { u, i, meta } = this;
    const l = i[n * W + LEFT]!;
    const r = i[n * W + RIGHT]!;
    let len = u[n * W + GAP_LEN]!;
    let al = u[n * W + GAP_AL]!;
    let h = 0;
    if (l !== NIL) {
      if (u[l * W + MAX_LEN]! > len) len = u[l * W + MAX_LEN]!;
      if (u[l * W + MAX_AL]! > al) al = u[l * W + MAX_AL]!;
      h = meta[l]! & HEIGHT;
    }
    if (r !== NIL) {
      if (u[r * W + MAX_LEN]! > len) len = u[r * W + MAX_LEN]!;
      if (u[r * W + MAX_AL]! > al) al = u[r * W + MAX_AL]!;
      const hr = meta[r]! & HEIGHT;
      if (hr > h) h = hr;
    }
    u[n * W + MAX_LEN] = len;
    u[n * W + MAX_AL] = al;
    meta[n] = (meta[n]! & ~HEIGHT) | (h + 1);
  }

  private h(n: number): number {
    return n === NIL ? 0 : this.meta[n]! & HEIGHT;
  }

  private rotateLeft(n: number): number {
    const { i } = this;
    const r = i[n * W + RIGHT]!;
    i[n * W + RIGHT] = i[r * W + LEFT]!;
    i[r * W + LEFT] = n;
    this.pull(n);
    this.pull(r);
    return r;
  }

  private rotateRight(n: number): number {
    const { i } = this;
    const l = i[n * W + LEFT]!;
    i[n * W + LEFT] = i[l * W + RIGHT]!;
    i[l * W + RIGHT] = n;
    this.pull(n);
    this.pull(l);
    return l;
  }

  private rebalance(n: number): number {
    const { i } = this;
    this.pull(n);
    const l = i[n * W + LEFT]!;
    const r = i[n * W + RIGHT]!;
    const bf = this.h(l) - this.h(r);
    if (bf > 1) {
      if (this.h(i[l * W + LEFT]!) < this.h(i[l * W + RIGHT]!)) i[n * W + LEFT] = this.rotateLeft(l);
      return this.rotateRight(n);
    }
    if (bf < -1) {
      if (this.h(i[r * W + RIGHT]!) < this.h(i[r * W + LEFT]!)) i[n * W + RIGHT] = this.rotateRight(r);
      return this.rotateLeft(n);
    }
    return n;
  }
}
