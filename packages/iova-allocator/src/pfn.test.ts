import { describe, expect, it } from "vitest";
import { IovaDomain } from "./iova-domain.js";
import { type Pfn, type PfnCount, pfn, pfnCount } from "./pfn.js";

describe("branded Pfn / PfnCount at alloc_iova, free_iova_fast, reserve_iova", () => {
  it("constructors accept whole numbers below 2^53 and refuse others with RangeError", () => {
    expect(pfn(0)).toBe(0);
    expect(pfnCount(2 ** 53 - 1)).toBe(2 ** 53 - 1);
    for (const bad of [-1, 0.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => pfn(bad)).toThrow(RangeError);
      expect(() => pfnCount(bad)).toThrow(RangeError);
    }
  });

  it("regression (swapped free_iova_fast arguments): the compiler refuses a Pfn where the size goes", () => {
    const d = new IovaDomain({ granule: 4096, startPfn: pfn(1) });
    const size: PfnCount = pfnCount(4);
    const start: Pfn = d.allocFast(size, pfn(0xfffff), false);
    expect(start).toBe(0xffffc);
    expect(d.find(start)).toEqual({ pfnLo: 0xffffc, pfnHi: 0xfffff });
    // @ts-expect-error: the pfn and the size swapped (tsc -b checks this line); at run time pfn 4 is in no range
    expect(() => d.freeFast(size, start)).toThrow(/pfn 4 is not in an allocated range/);
    d.freeFast(start, size);
    // A range's bounds are pfns: one is not a size.
    const r = d.reserve(pfn(0x100), pfn(0x1ff));
    // @ts-expect-error: a Pfn passed as alloc_iova's size (tsc -b checks this line); 0x1ff granules fit below 0x80 nowhere
    expect(d.alloc(r.pfnHi, pfn(0x80), false)).toBeNull();
    // Plain numbers (and arithmetic on pfns) are still accepted: callers brand values where they make them.
    // 256 granules size-aligned below the cached [0xffffc, 0xfffff]: the next 256-aligned slot down.
    expect(d.alloc(r.pfnHi - r.pfnLo + 1, 0xfffff, true)).toEqual({ pfnLo: 0xffe00, pfnHi: 0xffeff });
  });
});
