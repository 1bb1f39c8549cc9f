// The generator's number facts, one home each: u64/u32 edges, the 4 KiB page and 2 MiB huge page, hex text.
export const U64_MAX = (1n << 64n) - 1n;
export const U32_MAX = 0xffff_ffffn;
export const PAGE = 0x1000n;
export const HUGE = 0x20_0000n;
/** `0x…` lower-case, as the probe prints and parses. */
export const hex = (v) => `0x${v.toString(16)}`;
