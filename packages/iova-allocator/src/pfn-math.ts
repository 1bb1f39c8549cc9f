/**
 * Arithmetic on pfns and sizes held in JS numbers (exact up to 2^53). Powers of two stand in for the kernel's
 * shift/mask tricks (`fls_long`, `order_base_2`, `align_mask`).
 */

/** `roundup_pow_of_two(n)` for n >= 1; the alignment `alloc_iova` uses for `size_aligned`. */
export function nextPowerOfTwo(n: number): number {
  if (n <= 1) return 1;
  if (n <= 0x40000000) return 1 << (32 - Math.clz32(n - 1));
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** `order_base_2(n)`: ceil(log2 n), 0 for n <= 1; picks the range-cache bin. */
export function orderBase2(n: number): number {
  if (n <= 1) return 0;
  if (n <= 0x80000000) return 32 - Math.clz32(n - 1);
  let order = 0;
  let p = 1;
  while (p < n) {
    p *= 2;
    order++;
  }
  return order;
}

/** `x & ~(align - 1)` for a power-of-two `align` and 0 <= x <= 2^53. */
export function alignDown(x: number, align: number): number {
  return align === 1 ? x : x - (x % align);
}

/**
 * Largest `size` whose size-aligned placement fits in the free pfns [gapLo, gapEnd): the largest s such that some
 * multiple of nextPowerOfTwo(s) lies in [gapLo, gapEnd - s]. Fitting is downward closed in s (a smaller size has
 * a finer or equal alignment and a higher candidate start), which is what lets a subtree maximum answer
 * "does anything below fit?" — see DESIGN.md.
 */
export function alignedFit(gapLo: number, gapEnd: number): number {
  const gap = gapEnd - gapLo;
  if (gap <= 0) return 0;
  let best = 1;
  // Sizes in (A/2, A] share alignment A; try every A whose smallest size could fit.
  for (let align = 2; align / 2 < gap; align *= 2) {
    const start = Math.ceil(gapLo / align) * align;
    const room = gapEnd - start;
    const s = Math.min(room, align);
    if (s > align / 2 && s > best) best = s;
  }
  return best;
}
