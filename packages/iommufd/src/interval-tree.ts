/**
 * The interval trees of an io_pagetable (`area_itree`, `allowed_itree`, `reserved_itree`) and
 * `interval_tree_span_iter` / `interval_tree_double_span_iter`: inclusive [start, last] u64 nodes kept
 * sorted by start, and the used/hole spans of their union over a window.
 */

export interface IntervalNode {
  readonly start: bigint;
  /** Inclusive. */
  readonly last: bigint;
}

/** Nodes sorted by start. `disjoint` trees (areas, allowed ranges) get O(log n) lookups. */
export class IntervalTree<T extends IntervalNode> {
  private nodes: T[] = [];

  constructor(private readonly disjoint: boolean) {}

  get size(): number {
    return this.nodes.length;
  }

  isEmpty(): boolean {
    return this.nodes.length === 0;
  }

  /** Every node, by start. */
  all(): readonly T[] {
    return this.nodes;
  }

  insert(node: T): void {
    const i = this.lowerBound(node.start);
    this.nodes.splice(i, 0, node);
  }

  remove(node: T): void {
    this.removeAll([node]);
  }

  /** Remove nodes (for a disjoint tree: found by binary search, and a run of neighbours in one splice). */
  removeAll(nodes: readonly T[]): void {
    if (nodes.length === 0) return;
    if (!this.disjoint) {
      const gone = new Set(nodes);
      this.nodes = this.nodes.filter((n) => !gone.has(n));
      return;
    }
    const first = this.lowerBound(nodes[0]!.start);
    let k = 0;
    while (k < nodes.length && this.nodes[first + k] === nodes[k]) k++;
    if (k === nodes.length) {
      this.nodes.splice(first, k);
      return;
    }
    const gone = new Set(nodes);
    this.nodes = this.nodes.filter((n) => !gone.has(n));
  }

  /** Drop every node. */
  clear(): void {
    this.nodes = [];
  }

  /** `interval_tree_iter_first`: the lowest-start node intersecting [start, last], or null. */
  iterFirst(start: bigint, last: bigint): T | null {
    if (this.disjoint) {
      const i = this.lowerBound(start);
      const prev = i > 0 ? this.nodes[i - 1]! : null;
      if (prev && prev.last >= start) return prev;
      const next = i < this.nodes.length ? this.nodes[i]! : null;
      return next && next.start <= last ? next : null;
    }
    for (const n of this.nodes) {
      if (n.start > last) break;
      if (n.last >= start) return n;
    }
    return null;
  }

  /** Every node intersecting [start, last], by start. */
  intersecting(start: bigint, last: bigint): T[] {
    const out: T[] = [];
    const from = this.disjoint ? Math.max(0, this.lowerBound(start) - 1) : 0;
    for (let i = from; i < this.nodes.length; i++) {
      const n = this.nodes[i]!;
      if (n.start > last) break;
      if (n.last >= start) out.push(n);
    }
    return out;
  }

  /** The nodes intersecting [start, last], by start, lazily. */
  *iterate(start: bigint, last: bigint): Generator<T> {
    const from = this.disjoint ? Math.max(0, this.lowerBound(start) - 1) : 0;
    for (let i = from; i < this.nodes.length; i++) {
      const n = this.nodes[i]!;
      if (n.start > last) return;
      if (n.last >= start) yield n;
    }
  }

  private lowerBound(x: bigint): number {
    let lo = 0;
    let hi = this.nodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.nodes[mid]!.start < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** One span of `interval_tree_span_iter`: a maximal used run of the union, or a hole between runs. */
export interface Span {
  readonly isHole: boolean;
  readonly start: bigint;
  readonly last: bigint;
}

/** The used and hole spans of the union of `trees` over [first, last], in order (the span iterators). */
export function spans(trees: readonly IntervalTree<IntervalNode>[], first: bigint, last: bigint): Span[] {
  const hits: IntervalNode[] = [];
  for (const t of trees) hits.push(...t.intersecting(first, last));
  hits.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Span[] = [];
  let cur = first;
  let i = 0;
  while (i < hits.length) {
    let s = hits[i]!.start < first ? first : hits[i]!.start;
    let e = hits[i]!.last > last ? last : hits[i]!.last;
    i++;
    while (i < hits.length && hits[i]!.start <= e + 1n) {
      if (hits[i]!.last > e) e = hits[i]!.last > last ? last : hits[i]!.last;
      i++;
    }
    if (s > cur) out.push({ isHole: true, start: cur, last: s - 1n });
    else s = cur;
    out.push({ isHole: false, start: s, last: e });
    if (e === last) return out;
    cur = e + 1n;
  }
  out.push({ isHole: true, start: cur, last });
  return out;
}

/**
 * The holes of the union of `trees` over [first, last], lowest first, computed lazily (a k-way merge of
 * the trees' nodes): what `interval_tree_double_span_iter` visits when only holes matter.
 */
export function* holes(trees: readonly IntervalTree<IntervalNode>[], first: bigint, last: bigint): Generator<Span> {
  const its = trees.map((t) => t.iterate(first, last));
  const heads = its.map((it) => it.next());
  let cur = first;
  for (;;) {
    let k = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (!h.done && (k < 0 || h.value.start < (heads[k]!.value as IntervalNode).start)) k = i;
    }
    if (k < 0) break;
    const n = heads[k]!.value as IntervalNode;
    heads[k] = its[k]!.next();
    if (n.start > cur) yield { isHole: true, start: cur, last: n.start - 1n };
    if (n.last >= last) return;
    if (n.last + 1n > cur) cur = n.last + 1n;
  }
  yield { isHole: true, start: cur, last };
}
