/** u64 at the edges: C's unsigned 64-bit values (iova, phys_addr_t, dma_addr_t) as bigint, wrapping at 2^64. */
export const U64_MAX = (1n << 64n) - 1n;

/** The value as C's u64 holds it (wraps at 2^64). */
export function u64(v: bigint): bigint {
  return v & U64_MAX;
}
