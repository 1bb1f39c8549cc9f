/**
 * The two kinds of number the allocator's API takes (`iova.c` passes both as `unsigned long`): a page frame
 * number in units of the domain granule, and a size counted in granules. The brand is optional, so plain numbers
 * (and arithmetic on pfns) are still accepted, but a `Pfn` (every pfn the allocator hands out is one) cannot be
 * passed where a `PfnCount` is expected, or the other way round: `freeFast(size, pfn)` is a type error.
 */

declare const PFN_KIND: unique symbol;

/** A page frame number: an IOVA shifted right by the granule's order. */
export type Pfn = number & { readonly [PFN_KIND]?: "pfn" };
/** A number of granules: the `size` of `alloc_iova`, `alloc_iova_fast` and `free_iova_fast`. */
export type PfnCount = number & { readonly [PFN_KIND]?: "count" };

function checkWhole(kind: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${kind} must be a non-negative safe integer (got ${v})`);
}

/** A pfn; RangeError unless a non-negative integer below 2^53 (the domain checks its own upper bound). */
export function pfn(v: number): Pfn {
  checkWhole("pfn", v);
  return v as Pfn;
}

/** A size in granules; RangeError unless a non-negative integer below 2^53 (the domain checks its own bounds). */
export function pfnCount(v: number): PfnCount {
  checkWhole("pfnCount", v);
  return v as PfnCount;
}
