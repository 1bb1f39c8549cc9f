import { describe, expect, it } from "vitest";
import { IOVA_MAG_SIZE, MAX_GLOBAL_MAGS } from "./constants.js";
import { IovaDomain } from "./iova-domain.js";
import { ReferenceIovaDomain } from "./testing/linux-iova-reference.js";

const G4K = 4096;
const TOP = 2 ** 20 - 1; // highest pfn below 4 GiB at 4 KiB

describe("allocFast / freeFast (range caches)", () => {
  it("reuses a freed range from the CPU's magazine, last in first out", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const a = d.allocFast(1, TOP, false);
    const b = d.allocFast(1, TOP, false);
    const c = d.allocFast(1, TOP, false);
    expect([a, b, c]).toEqual([TOP, TOP - 1, TOP - 2]);
    d.freeFast(a, 1);
    d.freeFast(c, 1);
    expect(d.allocFast(1, TOP, false)).toBe(c);
    expect(d.allocFast(1, TOP, false)).toBe(a);
    expect(d.cachedCount).toBe(0);
  });

  it("keeps cached ranges allocated: counted, findable, never handed out by alloc", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const a = d.allocFast(2, 99, false);
    d.freeFast(a, 2);
    expect(d.count).toBe(1);
    expect(d.cachedCount).toBe(1);
    expect(d.find(a)).toEqual({ pfnLo: a, pfnHi: a + 1 });
    expect(d.alloc(2, 99, true)).toEqual({ pfnLo: a - 2, pfnHi: a - 1 });
  });

  it("rounds cacheable sizes up to a power of two and aligns them", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const p = d.allocFast(3, 1001, false);
    expect(p % 4).toBe(0);
    expect(d.find(p)).toEqual({ pfnLo: p, pfnHi: p + 3 });
    const q = d.allocFast(33, 100_000, false); // above 32: not rounded, aligned to 64
    expect(q % 64).toBe(0);
    expect(d.find(q)).toEqual({ pfnLo: q, pfnHi: q + 32 });
    d.freeFast(q, 33); // order 6: not cached, straight back to the tree
    expect(d.find(q)).toBeNull();
    expect(d.cachedCount).toBe(0);
  });

  it("skips cached ranges that would end above the caller's limit", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const high = d.allocFast(1, 500, false);
    d.freeFast(high, 1);
    const low = d.allocFast(1, 400, false);
    expect(low).toBe(400); // from the tree
    expect(d.cachedCount).toBe(1);
    expect(d.allocFast(1, 500, false)).toBe(high);
  });

  it("regression (Linux quirk): with limit + 1 < size the cache bound wraps in u64 and any cached range is returned", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const p = d.allocFast(32, 799, false);
    expect(p).toBe(768);
    d.freeFast(p, 32);
    // __iova_rcache_get(limit_pfn + 1 - size) = 1 - 32 wraps: the pop accepts [768, 799] despite limit 0.
    expect(d.allocFast(32, 0, false)).toBe(768);
    // A limit that does not wrap is honoured: the cached range is skipped, the tree serves the request.
    d.freeFast(768, 32);
    expect(d.allocFast(32, 700, false)).toBe(640);
    expect(d.cachedCount).toBe(1);
  });

  it("has per-CPU magazines", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1, cpus: 2 });
    const a = d.allocFast(1, TOP, false, 1);
    d.freeFast(a, 1, 1);
    expect(d.allocFast(1, TOP, false, 0)).not.toBe(a);
    expect(d.allocFast(1, TOP, false, 1)).toBe(a);
  });

  it("flushes every cache back to the tree and retries once when flushRcache is set", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 4, cpus: 2 });
    // Space [4, 19]: four 4-granule ranges fill it; two of them go into CPU 1's cache.
    const ps = [0, 1, 2, 3].map(() => d.allocFast(4, 19, false));
    expect(ps).toEqual([16, 12, 8, 4]);
    d.freeFast(16, 4, 1);
    d.freeFast(12, 4, 1);
    // CPU 0's caches are empty and the tree is full.
    expect(d.allocFast(4, 19, false, 0)).toBe(0);
    expect(d.cachedCount).toBe(2);
    expect(d.allocFast(4, 19, true, 0)).toBe(16);
    expect(d.cachedCount).toBe(0);
    expect([...d].map((r) => r.pfnLo)).toEqual([4, 8, 16]);
  });

  it(`moves full magazines to a depot of ${MAX_GLOBAL_MAGS} and frees a full magazine to the tree beyond it`, () => {
    const opts = { granule: G4K, startPfn: 1 };
    const d = new IovaDomain(opts);
    const ref = new ReferenceIovaDomain(opts);
    const capacity = IOVA_MAG_SIZE * (2 + MAX_GLOBAL_MAGS);
    const pfns: number[] = [];
    for (let i = 0; i <= capacity; i++) {
      const p = d.allocFast(1, TOP, false);
      expect(ref.allocFast(1, TOP, false)).toBe(p);
      pfns.push(p);
    }
    for (let i = 0; i < capacity; i++) {
      d.freeFast(pfns[i]!, 1);
      ref.freeFast(pfns[i]!, 1);
    }
    expect(d.cachedCount).toBe(capacity);
    // One more: loaded and prev are full and so is the depot, so the full loaded magazine goes back to the tree.
    d.freeFast(pfns[capacity]!, 1);
    ref.freeFast(pfns[capacity]!, 1);
    expect(d.cachedCount).toBe(capacity + 1 - IOVA_MAG_SIZE);
    expect(d.count).toBe(capacity + 1 - IOVA_MAG_SIZE);
    expect(JSON.stringify([...d])).toBe(JSON.stringify(ref.ranges()));
    expect(d.hints()).toEqual(ref.hints());
    // Popping drains loaded, then prev, then depot magazines (last in, first out) — same order as the reference.
    for (let i = 0; i < capacity + 1 - IOVA_MAG_SIZE; i++)
      expect(d.allocFast(1, TOP, false)).toBe(ref.allocFast(1, TOP, false));
    expect(d.cachedCount).toBe(0);
    expect(d.validateTree()).toBeNull();
  });

  it("without flushRcache a miss leaves the caches alone (no flush, no retry)", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 8 });
    const pfn = d.allocFast(1, 15, false); // 15: the top of [8, 15]
    d.freeFast(pfn, 1); // cached: still allocated, so 8 aligned granules cannot fit
    expect(d.allocFast(8, 15, false)).toBe(0);
    expect(d.cachedCount).toBe(1);
    expect(d.find(pfn)).toEqual({ pfnLo: 15, pfnHi: 15 });
    expect(d.allocFast(8, 15, true)).toBe(8); // with the flag the cache is flushed and the retry fits
    expect(d.cachedCount).toBe(0);
  });

  it("returns 0 without a trace when nothing fits and no flush is asked", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 10 });
    expect(d.allocFast(1, 5, false)).toBe(0);
    expect(d.count).toBe(0);
  });

  describe("IOVA_MAG_SIZE is 127 (Linux 6.0+: 'change IOVA_MAG_SIZE to 127 to save memory')", () => {
    // Linux 6.1's value, written here rather than imported, so these tests pin the constant as well as the rule.
    const MAG = 127;
    it("regression (issue 13 rule 1): the 128th free rotates the magazines, so a limit below the one loaded pfn goes to the tree (Linux: 0xfff7f)", () => {
      expect(IOVA_MAG_SIZE).toBe(MAG);
      const d = new IovaDomain({ granule: G4K, startPfn: 1 });
      const pfns = Array.from({ length: 128 }, () => d.allocFast(1, TOP, false));
      expect(pfns[127]).toBe(TOP - 127);
      // Lowest first: 127 frees fill `loaded`; the 128th swaps in the empty `prev`, which then holds only 0xfffff.
      for (let i = 127; i >= 0; i--) d.freeFast(pfns[i]!, 1);
      // 0xfffff is above limit 0xffffe, so the pop misses and the tree answers below its hint (the lowest range).
      expect(d.allocFast(1, TOP - 1, true)).toBe(0xfff7f);
      expect(d.cachedCount).toBe(128);
    });

    it("rotation at exactly 127 and a depot spill: 127 x 34 + 1 frees, then Linux's answers pop by pop", () => {
      const n = MAG * (2 + MAX_GLOBAL_MAGS) + 1;
      const d = new IovaDomain({ granule: G4K, startPfn: 1 });
      const lo = TOP - (n - 1);
      for (let i = 0; i < n; i++) expect(d.allocFast(1, TOP, false)).toBe(TOP - i);
      // Free in ascending pfn order; free #k (from 0) frees lo + k.
      for (let k = 0; k < n; k++) {
        d.freeFast(lo + k, 1);
        // The first rotation: entry 127 does not fit `loaded`, so `prev` (empty) is swapped in; nothing leaves.
        if (k === MAG - 1 || k === MAG) expect(d.cachedCount).toBe(k + 1);
      }
      // The last free found loaded, prev and the 32-deep depot full: loaded (frees 4191..4317) went to the tree.
      expect(d.cachedCount).toBe(n - MAG);
      expect(d.count).toBe(n - MAG);
      expect(d.find(TOP - 1)).toBeNull();
      expect(d.find(lo + MAG * (2 + MAX_GLOBAL_MAGS - 1) - 1)).not.toBeNull(); // 0xfff7f: top of the depot
      // The loaded magazine holds only 0xfffff (above the limit); the tree's hint followed the freed run up to it.
      expect(d.allocFast(1, TOP - 1, false)).toBe(0xffffe);
      // Draining: loaded (0xfffff), then prev = the first magazine (frees 126..0), then the depot, last in first out.
      const want = [TOP];
      for (let k = MAG - 1; k >= 0; k--) want.push(lo + k);
      for (let j = MAX_GLOBAL_MAGS - 1; j >= 0; j--)
        for (let k = MAG * (j + 2) - 1; k >= MAG * (j + 1); k--) want.push(lo + k);
      const got = want.map(() => d.allocFast(1, TOP, false));
      expect(got).toEqual(want);
      expect(d.cachedCount).toBe(0);
      // Every cache empty: the tree answers below its hint (0xffffe).
      expect(d.allocFast(1, TOP, false)).toBe(0xffffd);
      expect(d.validateTree()).toBeNull();
    });
  });
});
