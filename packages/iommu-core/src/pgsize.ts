/**
 * `iommu_pgsize` (iommu.c 6.1, the version with `count`): the page size and page count for the
 * next chunk of a map or unmap. Reference §2.3.
 */
import { ErrnoError } from "./errno.js";

export interface PgsizeChoice {
  /** Page size in bytes (a power of two from the bitmap). */
  readonly pgsize: bigint;
  /** Number of such pages to hand to the driver in one call. */
  readonly count: bigint;
}

/** Index of the highest set bit (`__fls`); v > 0. */
export function fls64(v: bigint): number {
  // clz32 on 32-bit halves: map/unmap call this per chunk, and toString(2) was most of its cost.
  if (v < 0x1_0000_0000n) return 31 - Math.clz32(Number(v));
  if (v < 0x1_0000_0000_0000_0000n) return 63 - Math.clz32(Number(v >> 32n));
  return v.toString(2).length - 1;
}

/** Index of the lowest set bit (`__ffs`); v > 0. */
export function ffs64(v: bigint): number {
  return fls64(v & -v);
}

/** Bits 0..h set (`GENMASK(h, 0)`). */
function genmask(h: number): bigint {
  return (1n << BigInt(h + 1)) - 1n;
}

/** Smallest page size of a bitmap (`1 << __ffs(pgsize_bitmap)`); 0n for an empty bitmap. */
export function minPageSize(bitmap: bigint): bigint {
  return bitmap === 0n ? 0n : bitmap & -bitmap;
}

/**
 * Largest supported page not bigger than `size` and aligned like `iova | paddr`; then, if a bigger
 * supported page exists, iova and paddr share its offset and the range reaches one bigger page past
 * the next bigger boundary, stop at that boundary so the next call can use the bigger page.
 * Throws EINVAL (the kernel BUG()s) if no page size fits.
 */
export function iommuPgsize(bitmap: bigint, iova: bigint, paddr: bigint, size: bigint): PgsizeChoice {
  const addrMerge = iova | paddr;
  let pgsizes = size > 0n ? bitmap & genmask(fls64(size)) : 0n;
  if (addrMerge !== 0n) pgsizes &= genmask(ffs64(addrMerge));
  if (pgsizes === 0n) {
    throw new ErrnoError("EINVAL", "iommu_pgsize", "no supported page size fits the range", {
      bitmap,
      iova,
      paddr,
      size,
    });
  }
  const idx = fls64(pgsizes);
  const pgsize = 1n << BigInt(idx);
  const bigger = bitmap & ~genmask(idx);
  let span = size;
  if (bigger !== 0n) {
    const next = bigger & -bigger;
    if (((iova ^ paddr) & (next - 1n)) === 0n) {
      const offset = next - (addrMerge & (next - 1n));
      if (offset + next <= size) span = offset;
    }
  }
  return { pgsize, count: span >> BigInt(idx) };
}
