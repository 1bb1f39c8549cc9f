/**
 * lpae.ts is shared by the walker (hw) and io-pgtable (driver), so a mistake in it would make both sides
 * agree on a wrong answer and the walker-vs-driver property test could not see it. These tests pin it to
 * the Arm ARM's own tables (DDI 0487, VMSAv8-64 translation: "Translation granule size and associated
 * block/page sizes" and the stage 1 initial lookup level by TnSZ), written out here as data, not derived.
 */
import { describe, expect, it } from "vitest";
import {
  bitsPerLevel,
  blockAllowed,
  descAddrMask,
  type GranuleShift,
  granulePgsizeBitmap,
  levelShift,
  stage1StartLevel,
} from "./lpae.js";

const KiB = 1n << 10n;
const MiB = 1n << 20n;
const GiB = 1n << 30n;
const TiB = 1n << 40n;

/**
 * The Arm ARM's granule table for 48-bit output addresses (no FEAT_LPA/LPA2): the size one descriptor maps
 * at each level, and whether a block descriptor is permitted there (level 3 holds pages, not blocks).
 */
const ARM_ARM: Record<GranuleShift, { level: number; size: bigint; block: boolean }[]> = {
  12: [
    { level: 0, size: 512n * GiB, block: false },
    { level: 1, size: 1n * GiB, block: true },
    { level: 2, size: 2n * MiB, block: true },
    { level: 3, size: 4n * KiB, block: false },
  ],
  14: [
    { level: 0, size: 128n * TiB, block: false },
    { level: 1, size: 64n * GiB, block: false },
    { level: 2, size: 32n * MiB, block: true },
    { level: 3, size: 16n * KiB, block: false },
  ],
  16: [
    { level: 1, size: 4n * TiB, block: false },
    { level: 2, size: 512n * MiB, block: true },
    { level: 3, size: 64n * KiB, block: false },
  ],
};

/** Stage 1 initial lookup level by input size (64 - T0SZ), per granule: [first IAS, last IAS, level]. */
const START_LEVEL: Record<GranuleShift, [number, number, number][]> = {
  12: [
    [40, 48, 0],
    [31, 39, 1],
    [22, 30, 2],
  ],
  14: [
    [48, 48, 0],
    [37, 47, 1],
    [26, 36, 2],
  ],
  16: [
    [43, 48, 1],
    [30, 42, 2],
  ],
};

describe("lpae.ts against the Arm ARM's tables", () => {
  for (const g of [12, 14, 16] as const) {
    it(`granule ${1 << (g - 10)} KiB: the size each level maps, and where blocks are allowed`, () => {
      for (const row of ARM_ARM[g]) {
        expect(1n << BigInt(levelShift(g, row.level))).toBe(row.size);
        if (row.level < 3) expect(blockAllowed(g, row.level)).toBe(row.block);
      }
      // A table is one granule of 8-byte descriptors.
      expect(2 ** bitsPerLevel(g) * 8).toBe(1 << g);
    });

    it(`granule ${1 << (g - 10)} KiB: the stage 1 start level for every input size`, () => {
      for (const [lo, hi, level] of START_LEVEL[g]) {
        for (let ias = lo; ias <= hi; ias++) expect([ias, stage1StartLevel(g, ias)]).toEqual([ias, level]);
      }
    });
  }

  it("page sizes: the leaf sizes of each granule (4K: 0x40201000, 16K: 0x2004000, 64K: 0x20010000)", () => {
    for (const g of [12, 14, 16] as const) {
      const leaves = ARM_ARM[g].filter((r) => r.block || r.level === 3).reduce((bm, r) => bm | r.size, 0n);
      expect(granulePgsizeBitmap(g)).toBe(leaves);
    }
    expect(granulePgsizeBitmap(12)).toBe(0x40201000n);
    expect(granulePgsizeBitmap(14)).toBe(0x2004000n);
    expect(granulePgsizeBitmap(16)).toBe(0x20010000n);
  });

  it("descriptor output address: bits [47:granule]", () => {
    expect(descAddrMask(12)).toBe(0x0000_ffff_ffff_f000n);
    expect(descAddrMask(14)).toBe(0x0000_ffff_ffff_c000n);
    expect(descAddrMask(16)).toBe(0x0000_ffff_ffff_0000n);
  });
});
