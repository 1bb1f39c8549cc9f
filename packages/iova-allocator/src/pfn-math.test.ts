import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { alignDown, alignedFit, nextPowerOfTwo, orderBase2 } from "./pfn-math.js";

describe("pfn arithmetic", () => {
  it("nextPowerOfTwo and orderBase2 match roundup_pow_of_two / order_base_2", () => {
    expect([1, 2, 3, 4, 5, 32, 33].map(nextPowerOfTwo)).toEqual([1, 2, 4, 4, 8, 32, 64]);
    expect([1, 2, 3, 4, 5, 32, 33].map(orderBase2)).toEqual([0, 1, 2, 2, 3, 5, 6]);
    expect(nextPowerOfTwo(2 ** 31 + 1)).toBe(2 ** 32);
    expect(orderBase2(2 ** 52)).toBe(52);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 53 }), (n) => {
        const p = nextPowerOfTwo(n);
        expect(p >= n && p / 2 < n).toBe(true);
        expect(2 ** orderBase2(n)).toBe(p);
      }),
      { seed: 7, numRuns: 2000 },
    );
  });

  it("alignedFit is the largest size whose size-aligned placement fits, and fitting is downward closed", () => {
    const fits = (lo: number, end: number, s: number) => {
      const a = nextPowerOfTwo(s);
      return end - s >= 0 && alignDown(end - s, a) >= lo;
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 300 }), (lo, gap) => {
        const end = lo + gap;
        const best = alignedFit(lo, end);
        // One expect per run: vitest's expect costs more than the arithmetic it would check 300 times.
        let wrong = 0;
        for (let s = 1; s <= gap + 1 && wrong === 0; s++) if (fits(lo, end, s) !== s <= best) wrong = s;
        expect(wrong, `size ${wrong} in [${lo}, ${end}]: fits disagrees with alignedFit = ${best}`).toBe(0);
      }),
      { seed: 11, numRuns: 500 },
    );
  });
});
