/** Linux 6.1 `drivers/iommu/iova.c` sizing constants (reference §1.7). */

/** Requests of up to 2^(6-1) = 32 granules are cached, in 6 power-of-two bins. */
export const IOVA_RANGE_CACHE_MAX_SIZE = 6;
/**
 * Entries per magazine: 127 since 6.0 ("change IOVA_MAG_SIZE to 127 to save memory": with its size word a magazine
 * is exactly 1 KiB), so 6.1 rotates magazines every 127 frees. The one home of this fact: engine and test model.
 */
export const IOVA_MAG_SIZE = 127;
/** Full magazines kept per bin in the global depot (a fixed array up to 6.6; a trimmed list from 6.7). */
export const MAX_GLOBAL_MAGS = 32;
/** Smallest granule we accept: below 2 KiB a 64-bit IOVA's pfn would not fit in 2^53. */
export const MIN_GRANULE = 2048;
/** Largest granule: Linux BUGs when the granule exceeds PAGE_SIZE (64 KiB on arm64). */
export const MAX_GRANULE = 65536;
/** Period of the 6.7+ depot trim work (`IOVA_DEPOT_DELAY`, msecs_to_jiffies(100)), in model milliseconds. */
export const IOVA_DEPOT_DELAY_MS = 100;
