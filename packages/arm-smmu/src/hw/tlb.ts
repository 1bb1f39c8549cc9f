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
  /** outBase - inBase, and the first address past the leaf: the hit path is two subtractions. */
  readonly delta: bigint;
  readonly end: bigint;
  readonly readable: boolean;
  readonly writable: boolean;
}

const SIZE: bigint[] = Array.from({ length: 65 }, (_, i) => 1n << BigInt(i));

/** The TLB entry for a leaf the walker found, with the rights it grants. */
export function leafEntry(
  leaf: { readonly inBase: bigint; readonly outBase: bigint; readonly shift: number },
  readable: boolean,
  writable: boolean,
): TlbEntry {
  return {
    inBase: leaf.inBase,
    outBase: leaf.outBase,
    shift: leaf.shift,
    delta: leaf.outBase - leaf.inBase,
    end: leaf.inBase + (SIZE[leaf.shift] as bigint),
    readable,
    writable,
  };
}

/** Per-context store: one map keyed by (input page number at the leaf's size) * 64 + size shift. */
interface ContextTlb {
  readonly entries: Map<number, TlbEntry>;
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
    const ctx = tag === this.lastTag ? this.lastCtx : this.context(tag);
    if (ctx) {
      const shifts = ctx.shifts;
      for (let i = 0; i < shifts.length; i++) {
        const s = shifts[i] as number;
        const e = ctx.entries.get(Math.floor(va / (POW2[s] as number)) * 64 + s);
        if (e) {
          this.hits++;
          return e;
        }
      }
    }
    this.misses++;
    return undefined;
  }

  /** The context of `tag`, remembered for the next lookup (most DMA comes from one stream). */
  private context(tag: number): ContextTlb | undefined {
    const ctx = this.contexts.get(tag);
    this.lastTag = tag;
    this.lastCtx = ctx;
    return ctx;
  }

  private lastTag = -1;
  private lastCtx: ContextTlb | undefined = undefined;

  insert(tag: number, e: TlbEntry): void {
    this.lastTag = -1;
    let ctx = this.contexts.get(tag);
    if (!ctx) {
      ctx = { entries: new Map(), shifts: [] };
      this.contexts.set(tag, ctx);
    }
    if (!ctx.shifts.includes(e.shift)) ctx.shifts = [...ctx.shifts, e.shift].sort((a, b) => a - b);
    const key = Math.floor(Number(e.inBase) / (POW2[e.shift] as number)) * 64 + e.shift;
    if (!ctx.entries.has(key)) {
      if (this.count >= this.capacity) this.evictOne(ctx.entries);
      this.count++;
    }
    ctx.entries.set(key, e);
  }

  /** Drop every entry of context `tag` overlapping `[start, start + len)` (TLBI by VA / IPA). */
  invalidateRange(tag: number, start: bigint, len: bigint): void {
    const ctx = this.contexts.get(tag);
    if (!ctx) return;
    const m = ctx.entries;
    const last = start + len - 1n;
    for (const shift of ctx.shifts) {
      const first = Number(start >> BigInt(shift));
      const lastKey = Number(last >> BigInt(shift));
      if (lastKey - first + 1 <= m.size) {
        for (let k = first; k <= lastKey; k++) if (m.delete(k * 64 + shift)) this.count--;
      } else {
        for (const key of m.keys()) {
          const k = Math.floor(key / 64);
          if (key % 64 === shift && k >= first && k <= lastKey) {
            m.delete(key);
            this.count--;
          }
        }
      }
    }
  }

  /** Drop a whole context (TLBI_NH_ASID, TLBI_S12_VMALL). */
  invalidateContext(tag: number): void {
    this.lastTag = -1;
    const ctx = this.contexts.get(tag);
    if (!ctx) return;
    this.count -= ctx.entries.size;
    this.contexts.delete(tag);
  }

  /** Drop every context whose tag matches (e.g. all stage-1 contexts). */
  invalidateWhere(pred: (tag: number) => boolean): void {
    for (const tag of [...this.contexts.keys()]) if (pred(tag)) this.invalidateContext(tag);
  }

  invalidateAll(): void {
    this.lastTag = -1;
    this.contexts.clear();
    this.count = 0;
  }

  private evictOne(prefer: Map<number, TlbEntry>): void {
    // Oldest entry of the context being filled; any victim is architecturally fine.
    const k = prefer.keys().next();
    if (!k.done) {
      prefer.delete(k.value);
      this.count--;
      return;
    }
    for (const ctx of this.contexts.values()) {
      const first = ctx.entries.keys().next();
      if (!first.done) {
        ctx.entries.delete(first.value);
        this.count--;
        return;
      }
    }
  }
}
