import { describe, expect, it } from "vitest";
import { IovaDomain } from "./iova-domain.js";
import { ReferenceIovaDomain } from "./testing/linux-iova-reference.js";

const G4K = 4096;
const DMA32_4K = 2 ** 20; // first pfn at 4 GiB with 4 KiB granules

function snapshot(d: IovaDomain) {
  return JSON.stringify({ ranges: [...d], hints: d.hints(), count: d.count, cached: d.cachedCount });
}

describe("IovaDomain construction", () => {
  it("derives dma32bitPfn and maxPfn from the granule", () => {
    const d = new IovaDomain({ granule: 2048, startPfn: 1 });
    expect(d.granule).toBe(2048);
    expect(d.startPfn).toBe(1);
    expect(d.dma32bitPfn).toBe(2 ** 21);
    expect(d.maxPfn).toBe(Number.MAX_SAFE_INTEGER); // 2^53 - 1 at 2 KiB
    expect(d.cpus).toBe(1);
    expect(new IovaDomain({ granule: 65536, startPfn: 0, cpus: 4 }).dma32bitPfn).toBe(65536);
  });

  it.each([
    [3000, "power of two"],
    [1024, "power of two from 2048"],
    [131072, "to 65536"],
    [Number.NaN, "granule"],
  ])("rejects granule %s (init_iova_domain BUG_ON)", (granule, text) => {
    expect(() => new IovaDomain({ granule, startPfn: 1 })).toThrow(RangeError);
    expect(() => new IovaDomain({ granule, startPfn: 1 })).toThrow(text);
  });

  it("rejects a start pfn beyond a u64 address and a bad CPU count", () => {
    expect(() => new IovaDomain({ granule: G4K, startPfn: 2 ** 52 })).toThrow(RangeError);
    expect(() => new IovaDomain({ granule: G4K, startPfn: -1 })).toThrow(RangeError);
    expect(() => new IovaDomain({ granule: G4K, startPfn: 1, cpus: 0 })).toThrow(/cpus/);
  });
});

describe("alloc (alloc_iova)", () => {
  it("places ranges top-down below the inclusive limit", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    expect(d.alloc(4, DMA32_4K - 1, false)).toEqual({ pfnLo: DMA32_4K - 4, pfnHi: DMA32_4K - 1 });
    expect(d.alloc(3, DMA32_4K - 1, false)).toEqual({ pfnLo: DMA32_4K - 7, pfnHi: DMA32_4K - 5 });
    // Size-aligned: the start is aligned to 4 (next power of two of 3); the length stays 3.
    expect(d.alloc(3, DMA32_4K - 1, true)).toEqual({ pfnLo: DMA32_4K - 12, pfnHi: DMA32_4K - 10 });
    expect(d.count).toBe(3);
  });

  it("regression (2016 'fix __alloc_and_insert_iova_range'): an allocation exactly filling [startPfn, limit] succeeds", () => {
    // The 1 MiB software MSI window at 0x8000000 with 4 KiB granules: 256 pfns, 0x8000..0x80ff.
    const d = new IovaDomain({ granule: G4K, startPfn: 0x8000 });
    expect(d.alloc(256, 0x80ff, true)).toEqual({ pfnLo: 0x8000, pfnHi: 0x80ff });
    expect(d.alloc(1, 0x80ff, false)).toBeNull();

    // And page by page: the last page handed out is startPfn itself (4.x refused it).
    const e = new IovaDomain({ granule: G4K, startPfn: 0x8000 });
    for (let i = 0; i < 256; i++) expect(e.alloc(1, 0x80ff, true)).toEqual({ pfnLo: 0x80ff - i, pfnHi: 0x80ff - i });
    expect(e.alloc(1, 0x80ff, true)).toBeNull();
    expect(e.count).toBe(256);
  });

  it("regression (underflow in __alloc_and_insert_iova_range): no bogus huge pfn near pfn 0", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 0 });
    expect(d.alloc(4, 2, false)).toBeNull(); // 4.x wrapped limit - size and returned a pfn near 2^64
    expect(d.alloc(3, 2, false)).toEqual({ pfnLo: 0, pfnHi: 2 });
    expect(d.alloc(1, 2, false)).toBeNull();
    expect(d.alloc(1, 0, true)).toBeNull();
    expect(d.allocFast(8, 5, true)).toBe(0);
    expect([...d]).toEqual([{ pfnLo: 0, pfnHi: 2 }]);

    const one = new IovaDomain({ granule: G4K, startPfn: 1 }); // dma-iommu never hands out pfn 0
    expect(one.alloc(3, 3, false)).toEqual({ pfnLo: 1, pfnHi: 3 });
    expect(one.alloc(1, 3, false)).toBeNull();
    expect(one.alloc(2, 1, false)).toBeNull();
  });

  it("returns null when the limit is below the start pfn (and, as Linux, records the size as max32_alloc_size)", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 100 });
    expect(d.alloc(2, 99, false)).toBeNull();
    expect(d.hints().max32AllocSize).toBe(2);
    expect(d.alloc(2, 100, false)).toBeNull(); // 32-bit fast-fail: size >= max32_alloc_size
    expect(d.alloc(1, 100, false)).toEqual({ pfnLo: 100, pfnHi: 100 });
  });

  it("starts at the cached hint: a later allocation with a higher limit lands below the hint, not at the limit", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 49 });
    expect(d.alloc(1, 50, false)).toEqual({ pfnLo: 50, pfnHi: 50 });
    expect(d.alloc(1, 99, false)).toEqual({ pfnLo: 49, pfnHi: 49 });
    // Nothing is left below the hint: the one retry scans above it, from the limit down.
    expect(d.alloc(1, 99, false)).toEqual({ pfnLo: 99, pfnHi: 99 });
    expect(d.hints().cached32).toEqual({ pfnLo: 99, pfnHi: 99 });
  });

  it("moves the hint on free so the freed hole is reused", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const top = DMA32_4K - 1;
    for (let i = 0; i < 3; i++) d.alloc(1, top, false);
    d.free(top - 1);
    expect(d.hints().cached32).toEqual({ pfnLo: top, pfnHi: top });
    expect(d.alloc(1, top, false)).toEqual({ pfnLo: top - 1, pfnHi: top - 1 });
  });

  it("keeps 32-bit and 64-bit hints apart", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const hi = d.alloc(2, DMA32_4K + 99, false)!;
    const lo = d.alloc(2, DMA32_4K - 1, false)!;
    expect(hi).toEqual({ pfnLo: DMA32_4K + 98, pfnHi: DMA32_4K + 99 });
    expect(lo).toEqual({ pfnLo: DMA32_4K - 2, pfnHi: DMA32_4K - 1 });
    expect(d.hints().cached).toEqual(hi);
    expect(d.hints().cached32).toEqual(lo);
  });

  it("fast-fails 32-bit requests at or above max32_alloc_size until a free below 4 GiB", () => {
    const d = new IovaDomain({ granule: 65536, startPfn: 1 }); // dma32bitPfn = 65536
    expect(d.alloc(65535, 65535, false)).toEqual({ pfnLo: 1, pfnHi: 65535 });
    expect(d.alloc(2, 65535, false)).toBeNull();
    expect(d.hints().max32AllocSize).toBe(2);
    expect(d.alloc(5, 65535, false)).toBeNull(); // fast-fail, no walk
    d.free(7);
    expect(d.hints().max32AllocSize).toBe(65536);
  });

  it("regression (Linux quirk): a failed 64-bit aligned request also arms the 32-bit fast-fail", () => {
    const d = new IovaDomain({ granule: 65536, startPfn: 1 });
    const ref = new ReferenceIovaDomain({ granule: 65536, startPfn: 1 });
    for (const x of [d, ref]) {
      x.reserve(1, 99);
      x.reserve(105, x.maxPfn); // leaves [100, 104]: 5 free pfns, no 8-aligned start
    }
    expect(d.alloc(5, d.maxPfn, true)).toBeNull();
    expect(ref.alloc(5, ref.maxPfn, true)).toBeNull();
    expect(d.hints().max32AllocSize).toBe(5);
    // The unaligned request would fit in [100, 104], but size >= max32_alloc_size fails at once.
    expect(d.alloc(5, 65535, false)).toBeNull();
    expect(ref.alloc(5, 65535, false)).toBeNull();
    expect(d.alloc(4, 65535, false)).toEqual({ pfnLo: 101, pfnHi: 104 });
    expect(ref.alloc(4, 65535, false)).toEqual({ pfnLo: 101, pfnHi: 104 });
  });

  it("regression (dcdb3ba7e2a8 'Fix alloc iova overflows issue'): a too-large first allocation does not retry below startPfn", () => {
    // The hint is the anchor (pfn_hi ~0UL): before the fix retry_pfn + 1 wrapped to 0 and the retry succeeded
    // below start_pfn. 6.1.y carries the fix.
    const d = new IovaDomain({ granule: G4K, startPfn: 0x1f0000 });
    expect(d.alloc(0xb00, 0x1f09ff, false)).toBeNull();
    expect(d.count).toBe(0);
  });
});

describe("free / find", () => {
  it("finds a range from any pfn inside it and frees it from any pfn inside it", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const r = d.alloc(10, 1000, false)!;
    expect(d.find(r.pfnLo)).toEqual(r);
    expect(d.find(r.pfnLo + 5)).toEqual(r);
    expect(d.find(r.pfnHi)).toEqual(r);
    expect(d.find(r.pfnLo - 1)).toBeNull();
    d.free(r.pfnLo + 3);
    expect(d.find(r.pfnLo)).toBeNull();
    expect(d.count).toBe(0);
  });

  it("ignores a free of an unknown pfn", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    d.alloc(1, 10, false);
    const before = snapshot(d);
    d.free(5);
    expect(snapshot(d)).toBe(before);
  });
});

describe("reserve (reserve_iova)", () => {
  it("inserts a new range where nothing overlaps", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    expect(d.reserve(0x8000, 0x80ff)).toEqual({ pfnLo: 0x8000, pfnHi: 0x80ff });
    expect(d.find(0x8080)).toEqual({ pfnLo: 0x8000, pfnHi: 0x80ff });
  });

  it("grows an overlapped range downward instead of failing (even an ordinary allocation)", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const r = d.alloc(10, 109, false)!; // [100, 109]
    expect(d.reserve(95, 105)).toEqual({ pfnLo: 95, pfnHi: 109 });
    expect([...d]).toEqual([{ pfnLo: 95, pfnHi: 109 }]);
    expect(d.reserve(100, 101)).toEqual({ pfnLo: 95, pfnHi: 109 }); // fully inside: unchanged
    d.free(r.pfnLo);
    expect(d.count).toBe(0);
  });

  it("spanning several ranges, fills the gaps between them and inserts the tail", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    d.reserve(10, 19);
    d.reserve(30, 39);
    expect(d.reserve(5, 50)).toEqual({ pfnLo: 40, pfnHi: 50 });
    expect([...d]).toEqual([
      { pfnLo: 5, pfnHi: 19 },
      { pfnLo: 20, pfnHi: 39 },
      { pfnLo: 40, pfnHi: 50 },
    ]);
    expect(d.validateTree()).toBeNull();
  });

  it("returns the range that covers the tail when the request ends inside a later range", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    d.reserve(10, 19);
    d.reserve(30, 39);
    expect(d.reserve(15, 35)).toEqual({ pfnLo: 20, pfnHi: 39 });
    expect([...d]).toEqual([
      { pfnLo: 10, pfnHi: 19 },
      { pfnLo: 20, pfnHi: 39 },
    ]);
  });

  it("does not move the search hints", () => {
    const d = new IovaDomain({ granule: G4K, startPfn: 1 });
    const before = d.hints();
    d.reserve(50, 60);
    expect(d.hints()).toEqual(before);
    expect(d.alloc(1, 99, false)).toEqual({ pfnLo: 99, pfnHi: 99 });
  });
});

describe("RangeError for arguments Linux would BUG or WARN on, leaving the state unchanged", () => {
  function loaded(): IovaDomain {
    const d = new IovaDomain({ granule: G4K, startPfn: 1, cpus: 2 });
    d.alloc(4, 1000, true);
    const p = d.allocFast(2, 1000, false);
    d.allocFast(1, DMA32_4K + 10, false, 1);
    d.freeFast(p, 2);
    d.reserve(10, 20);
    return d;
  }
  const max = 2 ** 52 - 1; // maxPfn at 4 KiB
  const cases: [string, (d: IovaDomain) => unknown, RegExp][] = [
    ["alloc size 0", (d) => d.alloc(0, 100, false), /alloc_iova: size/],
    ["alloc size 1.5", (d) => d.alloc(1.5, 100, false), /size/],
    ["alloc size NaN", (d) => d.alloc(Number.NaN, 100, false), /size/],
    ["alloc size above the address space", (d) => d.alloc(max + 2, max, false), /size/],
    ["alloc limit beyond u64", (d) => d.alloc(1, max + 1, false), /limitPfn/],
    ["alloc negative limit", (d) => d.alloc(1, -1, false), /limitPfn/],
    ["free pfn beyond u64", (d) => d.free(max + 1), /free_iova: pfn/],
    [
      "free of a cached range",
      (d) => d.free([...d].find((r) => d.find(r.pfnLo) && r.pfnHi - r.pfnLo === 1)!.pfnLo),
      /range cache/,
    ],
    ["find pfn beyond u64", (d) => d.find(2 ** 60), /find_iova/],
    ["reserve pfnHi beyond u64", (d) => d.reserve(1, max + 1), /reserve_iova: pfnHi/],
    ["reserve lo above hi", (d) => d.reserve(50, 40), /above/],
    ["allocFast size 0", (d) => d.allocFast(0, 100, true), /alloc_iova_fast: size/],
    ["allocFast cpu out of range", (d) => d.allocFast(1, 100, true, 2), /cpu/],
    ["freeFast unknown pfn", (d) => d.freeFast(500, 1), /not in an allocated range/],
    [
      "freeFast twice",
      (d) => d.freeFast([...d].find((r) => r.pfnHi - r.pfnLo === 1)!.pfnLo, 2),
      /already in a range cache/,
    ],
    ["freeFast size 0", (d) => d.freeFast(10, 0), /size/],
    ["freeFast cpu -1", (d) => d.freeFast(10, 1, -1), /cpu/],
  ];
  it.each(cases)("%s", (_name, call, message) => {
    const d = loaded();
    const before = snapshot(d);
    expect(() => call(d)).toThrow(RangeError);
    expect(() => call(d)).toThrow(message);
    expect(snapshot(d)).toBe(before);
  });
});
