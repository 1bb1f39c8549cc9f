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

  describe("rcacheDepot 'list' (Linux 6.7+, 'iommu/iova: Make the rcache depot scale better')", () => {
    const MAG = 127;

    /** Allocates n single granules top-down from 0xfffff and frees them lowest first; returns the lowest pfn. */
    function fillAndFree(d: IovaDomain, n: number, between?: (k: number) => void): number {
      for (let i = 0; i < n; i++) expect(d.allocFast(1, TOP, false)).toBe(TOP - i);
      const lo = TOP - (n - 1);
      for (let k = 0; k < n; k++) {
        d.freeFast(lo + k, 1);
        between?.(k);
      }
      return lo;
    }

    it("a full loaded and prev never send ranges to the tree: the depot grows past MAX_GLOBAL_MAGS", () => {
      const n = MAG * (2 + MAX_GLOBAL_MAGS + 8);
      const list = new IovaDomain({ granule: G4K, startPfn: 1, rcacheDepot: "list" });
      fillAndFree(list, n);
      expect(list.depotSize(1)).toBe(MAX_GLOBAL_MAGS + 8);
      expect(list.cachedCount).toBe(n);
      expect(list.count).toBe(n);
      // 6.1 (the default) freed the 8 magazines that found its array full.
      const array = new IovaDomain({ granule: G4K, startPfn: 1 });
      expect(array.rcacheDepot).toBe("array");
      fillAndFree(array, n);
      expect(array.depotSize(1)).toBe(MAX_GLOBAL_MAGS);
      expect(array.count).toBe(n - 8 * MAG);
    });

    it("iova_depot_work_func: due 100 ms after the push that armed it, frees the newest depot magazine, re-arms until cpus magazines remain", () => {
      const d = new IovaDomain({ granule: G4K, startPfn: 1, cpus: 2, rcacheDepot: "list" });
      const n = MAG * 6;
      // Free #254 pushes the 2nd magazine at t = 0 (armed for t = 100); the next pushes happen at t = 50.
      const lo = fillAndFree(d, n, (k) => {
        if (k === 2 * MAG) d.tick(50);
      });
      expect(d.now).toBe(50);
      expect(d.depotSize(1)).toBe(4); // frees 127..253, 254..380, 381..507, 508..634; loaded and prev full
      d.tick(49);
      expect(d.count).toBe(n); // a push while armed did not re-arm it for t = 150
      d.tick(1);
      // t = 100: 4 > num_online_cpus() = 2: the newest magazine (frees 508..634) goes back to the tree.
      expect(d.depotSize(1)).toBe(3);
      expect(d.count).toBe(n - MAG);
      expect(d.find(lo + 4 * MAG)).toBeNull();
      expect(d.find(lo + 5 * MAG - 1)).toBeNull();
      expect(d.find(lo + 4 * MAG - 1)).not.toBeNull();
      d.tick(99);
      expect(d.depotSize(1)).toBe(3);
      d.tick(1); // t = 200, re-armed by the last run
      expect(d.depotSize(1)).toBe(2);
      expect(d.find(lo + 3 * MAG)).toBeNull();
      d.tick(10_000); // t = 300 finds 2 <= 2: nothing freed, nothing re-armed
      expect(d.depotSize(1)).toBe(2);
      expect(d.count).toBe(n - 2 * MAG);
      expect(d.cachedCount).toBe(n - 2 * MAG);
      // A push arms it again, 100 ms from now.
      const r = d.alloc(1, TOP, true)!;
      d.freeFast(r.pfnLo, 1);
      expect(d.depotSize(1)).toBe(3);
      d.tick(99);
      expect(d.depotSize(1)).toBe(3);
      d.tick(1);
      expect(d.depotSize(1)).toBe(2);
      expect(d.validateTree()).toBeNull();
    });

    it("get trades an empty loaded magazine for the depot's newest, as 6.1 did", () => {
      const d = new IovaDomain({ granule: G4K, startPfn: 1, rcacheDepot: "list" });
      const n = MAG * 4;
      const lo = fillAndFree(d, n);
      // loaded: frees 381..507 (LIFO), prev: 0..126, then the depot's newest: 254..380, then 127..253.
      const want: number[] = [];
      for (const [hi, low] of [
        [4, 3],
        [1, 0],
        [3, 2],
        [2, 1],
      ] as const)
        for (let k = hi * MAG - 1; k >= low * MAG; k--) want.push(lo + k);
      expect(want.map(() => d.allocFast(1, TOP, false))).toEqual(want);
      expect(d.cachedCount).toBe(0);
    });

    it("'array' runs no delayed work: tick only moves model time", () => {
      const d = new IovaDomain({ granule: G4K, startPfn: 1 });
      fillAndFree(d, MAG * 5);
      d.tick(1000);
      expect(d.now).toBe(1000);
      expect(d.depotSize(1)).toBe(3);
      expect(d.count).toBe(MAG * 5);
    });

    it("rejects an unknown depot shape and a negative or infinite tick, changing nothing", () => {
      expect(() => new IovaDomain({ granule: G4K, startPfn: 1, rcacheDepot: "tree" as "list" })).toThrow(/rcacheDepot/);
      const d = new IovaDomain({ granule: G4K, startPfn: 1, rcacheDepot: "list" });
      expect(() => d.tick(-1)).toThrow(RangeError);
      expect(() => d.tick(Number.POSITIVE_INFINITY)).toThrow(RangeError);
      expect(d.now).toBe(0);
    });
  });
});
