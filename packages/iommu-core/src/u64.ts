/**
 * C's fixed-width integers and the kernel's page constants, for every layer: `dma_addr_t`, `phys_addr_t` and
 * `size_t` wrap at 2^64 in C, so the model does too. The one home of these facts (ARCHITECTURE.md).
 */
export const U64_MAX = (1n << 64n) - 1n;
export const U32_MAX = 0xffff_ffff;

/** C's u64 arithmetic: wrap a bigint to 64 bits, as the kernel's `dma_addr_t`/`size_t` sums do. */
export function u64(x: bigint): bigint {
  return x & U64_MAX;
}

/** `PAGE_SHIFT` / `PAGE_SIZE` of the CPU (4 KiB on both modelled hosts). */
export const PAGE_SHIFT = 12n;
export const PAGE_SIZE = 1n << PAGE_SHIFT;
/** `PAGE_MASK`, as a u64. */
export const PAGE_MASK = U64_MAX & ~(PAGE_SIZE - 1n);
/** `SZ_4K`, `SZ_2M`, `SZ_1G` (linux/sizes.h). */
export const SZ_4K = 1n << 12n;
export const SZ_2M = 1n << 21n;
export const SZ_1G = 1n << 30n;
