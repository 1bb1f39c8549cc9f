/** The cookie's small numeric helpers (`U64_MAX` and `u64` themselves live in @iommu/core). */
import type { Pfn } from "@iova/allocator";

export const DMA_BIT_MASK_32 = 0xffff_ffffn;

/** `roundup_pow_of_two` for small positive counts. */
export function roundupPowOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** A pfn as a number: pfns above 2^53 cannot occur with granules >= 2 KiB on a 64-bit space; clamp defensively. */
export function pfnOf(addr: bigint, shift: number): Pfn {
  const p = addr >> BigInt(shift);
  return p > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(p);
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}
