/**
 * The SMMU's TLB: caches leaf translations (pages and blocks, at the size the walk found) per
 * translation context until the driver invalidates them by command. Nothing here reads memory, so
 * a missing TLBI leaves an entry that still translates (design.md "two worlds, one memory").
 */

/** A cached leaf: the input range `[inBase, inBase + 2^shift)` maps to `outBase` with these permissions. */
export interface TlbEntry {
  readonly inBase: bigint;
  readonly outBase: bigint;
  readonly shift: number;
  readonly size: bigint;
  readonly readable: boolean;
  readonly writable: boolean;
}

/** Per-context store: one map per leaf size, keyed by input page number at that size. */
interface ContextTlb {
  readonly bySize: Map<number, Map<number, TlbEntry>>;
  /** Leaf shifts present, smallest first (the lookup order). */
  shifts: number[];
}

const POW2: number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);

export class Tlb {
  private readonly contexts = new Map<number, ContextTlb>();
  private count = 0;
  /** Lookups answered from the TLB / that missed (observability for tests and benches). */
  hits = 0;
  misses = 0;

  constructor(readonly capacity = 8192) {}

  get size(): number {
    return this.count;
  }

  /** Find an entry of context `tag` covering `va` (va < 2^53, checked by the caller). */
  lookup(tag: number, va: number): TlbEntry | undefined {
    const ctx = this.contexts.get(tag);
    if (ctx) {
      for (const s of ctx.shifts) {
        const e = ctx.bySize.get(s)?.get(Math.floor(va / (POW2[s] as number)));
        if (e) {
          this.hits++;
          return e;
        }
      }
    }
    this.misses++;
    return undefined;
  }

  insert(tag: number, e: TlbEntry): void {
    let ctx = this.contexts.get(tag);
    if (!ctx) {
      ctx = { bySize: new Map(), shifts: [] };
      this.contexts.set(tag, ctx);
    }
    let m = ctx.bySize.get(e.shift);
    if (!m) {
      m = new Map();
      ctx.bySize.set(e.shift, m);
      ctx.shifts = [...ctx.bySize.keys()].sort((a, b) => a - b);
    }
    const key = Number(e.inBase >> BigInt(e.shift));
    if (!m.has(key)) {
      if (this.count >= this.capacity) this.evictOne(m);
      this.count++;
    }
    m.set(key, e);
  }

  /** Drop every entry of context `tag` overlapping `[start, start + len)` (TLBI by VA / IPA). */
  invalidateRange(tag: number, start: bigint, len: bigint): void {
    const ctx = this.contexts.get(tag);
    if (!ctx) return;
    const last = start + len - 1n;
    for (const [shift, m] of ctx.bySize) {
      const first = Number(start >> BigInt(shift));
      const lastKey = Number(last >> BigInt(shift));
      if (lastKey - first + 1 <= m.size) {
        for (let k = first; k <= lastKey; k++) if (m.delete(k)) this.count--;
      } else {
        for (const k of m.keys()) {
          if (k >= first && k <= lastKey) {
            m.delete(k);
            this.count--;
          }
        }
      }
    }
  }

  /** Drop a whole context (TLBI_NH_ASID, TLBI_S12_VMALL). */
  invalidateContext(tag: number): void {
    const ctx = this.contexts.get(tag);
    if (!ctx) return;
    for (const m of ctx.bySize.values()) this.count -= m.size;
    this.contexts.delete(tag);
  }

  /** Drop every context whose tag matches (e.g. all stage-1 contexts). */
  invalidateWhere(pred: (tag: number) => boolean): void {
    for (const tag of [...this.contexts.keys()]) if (pred(tag)) this.invalidateContext(tag);
  }

  invalidateAll(): void {
    this.contexts.clear();
    this.count = 0;
  }

  private evictOne(prefer: Map<number, TlbEntry>): void {
    // Oldest entry of the map being filled; any victim is architecturally fine.
    const k = prefer.keys().next();
    if (!k.done) {
      prefer.delete(k.value);
      this.count--;
      return;
    }
    for (const ctx of this.contexts.values()) {
      for (const m of ctx.bySize.values()) {
        const first = m.keys().next();
        if (!first.done) {
          m.delete(first.value);
          this.count--;
          return;
        }
      }
    }
  }
}
