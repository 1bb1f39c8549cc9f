import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isErrno } from "./errno.js";
import { ffs64, fls64, iommuPgsize, minPageSize } from "./pgsize.js";

const K4 = 0x1000n;
const M2 = 0x20_0000n;
const G1 = 0x4000_0000n;
const X86 = K4 | M2 | G1; // VT-d and SMMUv3 4K granule: 0x40201000

/** Split [iova, iova+size) the way __iommu_map does: a list of (iova, paddr, pgsize, count). */
function split(bitmap: bigint, iova: bigint, paddr: bigint, size: bigint) {
  const out: { iova: bigint; paddr: bigint; pgsize: bigint; count: bigint }[] = [];
  while (size > 0n) {
    const { pgsize, count } = iommuPgsize(bitmap, iova, paddr, size);
    out.push({ iova, paddr, pgsize, count });
    iova += pgsize * count;
    paddr += pgsize * count;
    size -= pgsize * count;
  }
  return out;
}

/** The spec, page by page: the largest supported page that fits what is left and both alignments. */
function bestPage(bitmap: bigint, iova: bigint, paddr: bigint, left: bigint): bigint {
  let best = 0n;
  for (let b = 0; b < 64; b++) {
    const p = 1n << BigInt(b);
    if (bitmap & p && p <= left && ((iova | paddr) & (p - 1n)) === 0n) best = p;
  }
  return best;
}

// Bitmaps with 1-3 page sizes between 2 KiB and 1 GiB; ranges aligned to the smallest one.
const arbCase = fc
  .uniqueArray(fc.integer({ min: 11, max: 30 }), { minLength: 1, maxLength: 3 })
  .chain((bits) => {
    const bitmap = bits.reduce((m, b) => m | (1n << BigInt(b)), 0n);
    const minBit = Math.min(...bits);
    const maxBit = Math.max(...bits);
    const units = fc.bigInt({ min: 0n, max: (1n << BigInt(maxBit - minBit + 3)) - 1n });
    return fc.record({
      bitmap: fc.constant(bitmap),
      iova: units.map((u) => u << BigInt(minBit)),
      // Same offset as iova within big pages half of the time, so big pages really get used.
      paddr: fc.oneof(
        units.map((u) => u << BigInt(minBit)),
        fc.constant(-1n),
      ),
      size: units.map((u) => (u + 1n) << BigInt(minBit)),
    });
  })
  .map((c) => ({ ...c, paddr: c.paddr < 0n ? c.iova + (1n << 40n) : c.paddr }));

describe("iommu_pgsize", () => {
  it("covers exactly the range with legal, aligned pages (property)", () => {
    fc.assert(
      fc.property(arbCase, ({ bitmap, iova, paddr, size }) => {
        const chunks = split(bitmap, iova, paddr, size);
        let at = iova;
        let total = 0n;
        for (const c of chunks) {
          expect(c.iova).toBe(at);
          expect(bitmap & c.pgsize).toBe(c.pgsize);
          expect(c.count >= 1n).toBe(true);
          expect((c.iova | c.paddr) & (c.pgsize - 1n)).toBe(0n);
          at += c.pgsize * c.count;
          total += c.pgsize * c.count;
        }
        expect(total).toBe(size);
      }),
      { seed: 11, numRuns: 500 },
    );
  });

  it("uses, at every page, the largest page that fits what is left and the alignment (property)", () => {
    fc.assert(
      fc.property(arbCase, ({ bitmap, iova, paddr, size }) => {
        let left = size;
        for (const c of split(bitmap, iova, paddr, size)) {
          // The run's first page is the best one...
          expect(c.pgsize).toBe(bestPage(bitmap, c.iova, c.paddr, left));
          // ...and no later page of the run could have been a bigger one: for each bigger size, the
          // first page of the run aligned to it (in iova and paddr) has less than that size left.
          const runEnd = c.iova + c.pgsize * c.count;
          for (let b = 0; b < 64; b++) {
            const q = 1n << BigInt(b);
            if (!(bitmap & q) || q <= c.pgsize || ((c.iova ^ c.paddr) & (q - 1n)) !== 0n) continue;
            const a = (c.iova + q - 1n) & ~(q - 1n);
            if (a < runEnd) expect(left - (a - c.iova) < q).toBe(true);
          }
          left -= c.pgsize * c.count;
        }
      }),
      { seed: 12, numRuns: 500 },
    );
  });

  it("steps down to the next 2 MiB boundary, then uses a 2 MiB page", () => {
    // 0x1ff000 + 0x201000: one 4K page to reach 2 MiB, then one 2 MiB page.
    expect(split(X86, 0x1ff000n, 0x1ff000n, 0x201000n)).toEqual([
      { iova: 0x1ff000n, paddr: 0x1ff000n, pgsize: K4, count: 1n },
      { iova: 0x200000n, paddr: 0x200000n, pgsize: M2, count: 1n },
    ]);
  });

  it("maps everything with small pages when the range does not reach past the next boundary plus one big page", () => {
    expect(iommuPgsize(X86, 0x1ff000n, 0x1ff000n, 0x200000n)).toEqual({ pgsize: K4, count: 0x200n });
  });

  it("never uses a bigger page when iova and paddr have different offsets in it", () => {
    expect(split(X86, 0x200000n, 0x201000n, 0x400000n)).toEqual([
      { iova: 0x200000n, paddr: 0x201000n, pgsize: K4, count: 0x400n },
    ]);
  });

  it("allows any page size at address 0 (addr_merge == 0)", () => {
    expect(iommuPgsize(X86, 0n, 0n, 3n * G1)).toEqual({ pgsize: G1, count: 3n });
  });

  it("throws EINVAL where the kernel would BUG (no page fits)", () => {
    let caught: unknown;
    try {
      iommuPgsize(K4, 0x800n, 0n, 0x1000n);
    } catch (e) {
      caught = e;
    }
    expect(isErrno(caught, "EINVAL")).toBe(true);
  });

  it("has bit helpers that agree with __ffs/__fls", () => {
    expect(fls64(0x40201000n)).toBe(30);
    expect(ffs64(0x40201000n)).toBe(12);
    expect(minPageSize(0x40201000n)).toBe(K4);
    expect(minPageSize(0n)).toBe(0n);
    expect(fls64((1n << 64n) - 1n)).toBe(63);
  });

  it("computes __fls and __ffs exactly for every 64-bit value (property, both halves and the 2^32 edge)", () => {
    const u64 = fc.oneof(
      fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
      fc.integer({ min: 0, max: 63 }).map((b) => 1n << BigInt(b)),
      fc.integer({ min: 0, max: 63 }).map((b) => (1n << BigInt(b + 1)) - 1n),
    );
    fc.assert(
      fc.property(u64, (v) => {
        expect(fls64(v)).toBe(v.toString(2).length - 1);
        expect(ffs64(v)).toBe((v & -v).toString(2).length - 1);
      }),
      { seed: 0x1f5, numRuns: 2000 },
    );
  });
});

describe("iommu_pgsize for a single minimum page (map.ts skips the search for it)", () => {
  it("is always {min page, 1} when iova and paddr are aligned to it (property)", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }),
        (bitmap, i, p) => {
          const min = bitmap & -bitmap;
          const iova = (i * min) & ((1n << 64n) - 1n) & ~(min - 1n);
          const paddr = (p * min) & ((1n << 64n) - 1n) & ~(min - 1n);
          expect(iommuPgsize(bitmap, iova, paddr, min)).toEqual({ pgsize: min, count: 1n });
        },
      ),
    );
  });
});
