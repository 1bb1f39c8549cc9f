/** The valid-IOVA list operations against a point-set model on a small universe. */
import { type ResvRegion, type ResvType, resvRegion } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { aperExpand, aperResize, findSwMsi, type IovaRange, iovaDmaValid, resvExclude } from "./iova-list.js";

const U = 96;

/** Ascending disjoint ranges with gaps, inside [0, U). */
const list = fc.uniqueArray(fc.nat(U - 1), { maxLength: 12 }).map((xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const out: IovaRange[] = [];
  for (let i = 0; i + 1 < s.length; i += 2) {
    if (out.length && BigInt(s[i]!) <= out[out.length - 1]!.end + 1n) continue;
    out.push({ start: BigInt(s[i]!), end: BigInt(s[i + 1]!) });
  }
  return out;
});
const region = fc
  .record({
    start: fc.nat(U - 1),
    len: fc.integer({ min: 1, max: 20 }),
    type: fc.constantFrom<ResvType>("reserved", "msi", "sw-msi", "direct", "direct-relaxable"),
  })
  .map((r): ResvRegion => resvRegion(BigInt(r.start), BigInt(r.len), 0, r.type));

const points = (l: readonly IovaRange[]): Set<number> => {
  const s = new Set<number>();
  for (const r of l) for (let x = Number(r.start); x <= Number(r.end); x++) s.add(x);
  return s;
};

const wellFormed = (l: readonly IovaRange[]): void => {
  for (const [i, r] of l.entries()) {
    expect(r.start <= r.end).toBe(true);
    if (i > 0) expect(l[i - 1]!.end < r.start).toBe(true);
  }
};

describe("iova list", () => {
  it("resvExclude is the set difference with every non-relaxable region (null when empty)", () => {
    fc.assert(
      fc.property(list, fc.array(region, { maxLength: 5 }), (l, rs) => {
        const got = resvExclude(l, rs);
        const want = points(l);
        for (const r of rs) {
          if (r.type === "direct-relaxable") continue;
          for (let x = Number(r.start); x < Number(r.start + r.length); x++) want.delete(x);
        }
        if (want.size === 0) expect(got).toBeNull();
        else {
          wellFormed(got!);
          expect(points(got!)).toEqual(want);
        }
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it("regression (Linux quirk): aperResize drops a range whose last address is the new start or whose first is the new end", () => {
    const l: IovaRange[] = [
      { start: 0n, end: 15n },
      { start: 32n, end: 63n },
    ];
    // vfio_iommu_aper_resize compares start < node->end and end > node->start strictly.
    expect(aperResize(l, 15n, 40n)).toEqual([{ start: 32n, end: 40n }]);
    expect(aperResize(l, 0n, 32n)).toEqual([{ start: 0n, end: 15n }]);
    expect(aperResize(l, 14n, 33n)).toEqual([
      { start: 14n, end: 15n },
      { start: 32n, end: 33n },
    ]);
  });

  it("aperResize clips to the aperture (an empty list becomes the aperture)", () => {
    fc.assert(
      fc.property(list, fc.nat(U - 1), fc.nat(U - 1), (l, a, b) => {
        const [s, e] = a <= b ? [a, b] : [b, a];
        const got = aperResize(l, BigInt(s), BigInt(e));
        wellFormed(got);
        if (l.length === 0) {
          expect(got).toEqual([{ start: BigInt(s), end: BigInt(e) }]);
          return;
        }
        const want = new Set([...points(l)].filter((x) => x >= s && x <= e));
        // Linux drops a range whose last address is the new start or whose first is the new end
        // (strict comparisons in vfio_iommu_aper_resize): the result may lack exactly those points.
        const gotPts = points(got);
        for (const x of gotPts) expect(want.has(x)).toBe(true);
        for (const x of want) if (!gotPts.has(x)) expect(x === s || x === e).toBe(true);
      }),
      { numRuns: 300, seed: 12 },
    );
  });

  it("iovaDmaValid: inside one range (anything on an empty list)", () => {
    const l = [
      { start: 0n, end: 0xfedf_ffffn },
      { start: 0xfef0_0000n, end: 0x7f_ffff_ffffn },
    ];
    expect(iovaDmaValid([], 0xfee0_0000n, 0xfee0_0fffn)).toBe(true);
    expect(iovaDmaValid(l, 0xfedf_f000n, 0xfedf_ffffn)).toBe(true);
    expect(iovaDmaValid(l, 0xfedf_f000n, 0xfef0_0fffn)).toBe(false);
    expect(iovaDmaValid(l, 0x80_0000_0000n, 0x80_0000_0fffn)).toBe(false);
  });

  it("aperExpand widens the ends to the intersection of the remaining apertures", () => {
    const l = [
      { start: 0x1000n, end: 0x7fffn },
      { start: 0x9000n, end: 0xffffn },
    ];
    expect(aperExpand(l, [{ apertureStart: 0n, apertureEnd: (1n << 48n) - 1n }])).toEqual([
      { start: 0n, end: 0x7fffn },
      { start: 0x9000n, end: (1n << 48n) - 1n },
    ]);
    expect(aperExpand([], [])).toEqual([]);
  });

  it("findSwMsi: the SW_MSI base unless a hardware MSI region is present", () => {
    const sw = resvRegion(0x800_0000n, 0x10_0000n, 0, "sw-msi");
    const hw = resvRegion(0xfee0_0000n, 0x10_0000n, 0, "msi");
    expect(findSwMsi([sw])).toBe(0x800_0000n);
    expect(findSwMsi([sw, hw])).toBeNull();
    expect(findSwMsi([hw, sw])).toBeNull();
    expect(findSwMsi([])).toBeNull();
  });
});
