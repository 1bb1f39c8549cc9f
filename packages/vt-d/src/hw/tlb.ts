/**
 * The hardware's translation caches: the context cache (requester id → decoded context entry) and the
 * IOTLB (domain id + page at a level, and on QEMU the requester id → output page and rights). They are filled by walks and only
 * emptied by invalidation commands, so a driver that forgets to invalidate sees stale translations,
 * as on a real machine. Full caches are dropped whole, as QEMU does (VTD_IOTLB_MAX_SIZE).
 */

/** A decoded, present context entry. */
export interface CachedContext {
  readonly did: number;
  /** Translation type: 0 multi-level, 1 device-IOTLB, 2 pass-through. */
  readonly tt: number;
  /** Second-level table root (physical). */
  readonly root: bigint;
  /** Page-table levels (3, 4 or 5). */
  readonly levels: number;
  /** Input address width in bits (39, 48 or 57). */
  readonly width: number;
  /** 2^width: the first input address beyond the width. */
  readonly limit: bigint;
  /** Fault processing disabled: faults are not recorded. */
  readonly fpd: boolean;
}

export interface IotlbEntry {
  /** Output address of the page (aligned to its size). */
  readonly phys: bigint;
  /** 1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB. */
  readonly level: number;
  /** Effective R (bit 0) / W (bit 1) rights, ANDed over the walk. */
  readonly perm: number;
}

/** 4 KiB pages per entry by level (a table, not `2 **`: Math.pow was a fifth of a walk). */
const LEVEL_PAGES = [0, 1, 512, 512 * 512, 512 ** 3, 512 ** 4];

/** pfn's tag at a level: the pfn shifted to the page of that level, with the level in the low 2 bits. */
function tag(pfn: number, level: number): number {
  return Math.floor(pfn / (LEVEL_PAGES[level] as number)) * 4 + level;
}

export class ContextCache {
  private readonly map = new Map<number, CachedContext>();
  constructor(private readonly capacity: number) {}

  get(sid: number): CachedContext | undefined {
    return this.map.get(sid);
  }
  set(sid: number, ctx: CachedContext): void {
    if (this.map.size >= this.capacity) this.map.clear();
    this.map.set(sid, ctx);
  }
  invalidateAll(): void {
    this.map.clear();
  }
  invalidateDomain(did: number): void {
    for (const [sid, c] of this.map) if (c.did === did) this.map.delete(sid);
  }
  /** Device-selective: `fm` masks the low bits of the function number (0 = exact, 3 = all 8 functions). */
  invalidateDevice(sid: number, fm: number): void {
    const mask = fm === 0 ? 0xffff : fm === 1 ? 0xfffb : fm === 2 ? 0xfff9 : 0xfff8;
    for (const s of [...this.map.keys()]) if ((s & mask) === (sid & mask)) this.map.delete(s);
  }
  get size(): number {
    return this.map.size;
  }
}

export class Iotlb {
  /** Domain id → tag owner (the requester id when entries are per requester, else 0) → tag → entry. */
  private readonly byDomain = new Map<number, Map<number, Map<number, IotlbEntry>>>();
  private count = 0;

  /**
   * `perRequester`: an entry is found only by the requester whose walk filled it (QEMU 7.2 keys its IOTLB by
   * source id, gfn and level, `struct vtd_iotlb_key`); otherwise every device of the domain shares it.
   * Invalidations select by domain id either way (QEMU keeps the domain id in each entry).
   */
  constructor(
    private readonly capacity: number,
    private readonly perRequester = false,
  ) {}

  lookup(did: number, pfn: number, sid = 0): IotlbEntry | undefined {
    const m = this.byDomain.get(did)?.get(this.perRequester ? sid : 0);
    if (!m) return undefined;
    return m.get(pfn * 4 + 1) ?? m.get(tag(pfn, 2)) ?? m.get(tag(pfn, 3));
  }

  insert(did: number, pfn: number, e: IotlbEntry, sid = 0): void {
    if (this.count >= this.capacity) this.invalidateAll();
    let d = this.byDomain.get(did);
    if (!d) {
      d = new Map();
      this.byDomain.set(did, d);
    }
    const owner = this.perRequester ? sid : 0;
    let m = d.get(owner);
    if (!m) {
      m = new Map();
      d.set(owner, m);
    }
    const before = m.size;
    m.set(tag(pfn, e.level), e);
    this.count += m.size - before;
  }

  invalidateAll(): void {
    // Keep the per-domain maps: refilling after a global flush then allocates nothing.
    if (this.count === 0) return;
    for (const d of this.byDomain.values()) for (const m of d.values()) if (m.size !== 0) m.clear();
    this.count = 0;
  }

  invalidateDomain(did: number): void {
    const d = this.byDomain.get(did);
    if (!d) return;
    for (const m of d.values()) {
      this.count -= m.size;
      m.clear();
    }
  }

  /** Page-selective: the 2^am pages from `pfn` (aligned down to 2^am); any entry overlapping them goes. */
  invalidatePages(did: number, pfn: number, am: number): void {
    const d = this.byDomain.get(did);
    if (!d) return;
    for (const m of d.values()) this.invalidatePagesIn(m, pfn, am);
  }

  private invalidatePagesIn(m: Map<number, IotlbEntry>, pfn: number, am: number): void {
    if (m.size === 0) return;
    const n = 2 ** am;
    const first = Math.floor(pfn / n) * n;
    const last = first + n - 1;
    if (n <= 64 && n < m.size) {
      // Small ranges: drop the few tags that can cover them instead of scanning the domain.
      for (let level = 1; level <= 3; level++) {
        const lo = tag(first, level);
        const hi = tag(last, level);
        for (let k = lo; k <= hi; k += 4) if (m.delete(k)) this.count--;
      }
      return;
    }
    for (const [k, e] of m) {
      const span = LEVEL_PAGES[e.level] as number;
      const start = Math.floor(k / 4) * span;
      if (start <= last && start + span - 1 >= first) {
        m.delete(k);
        this.count--;
      }
    }
  }

  get size(): number {
    return this.count;
  }
}
