export { IOVA_DEPOT_DELAY_MS, IOVA_MAG_SIZE, IOVA_RANGE_CACHE_MAX_SIZE, MAX_GLOBAL_MAGS } from "./constants.js";
export { IovaDomain } from "./iova-domain.js";
export type { IovaDomainOptions, IovaHints, IovaRange } from "./iova-range.js";
export { type Pfn, type PfnCount, pfn, pfnCount } from "./pfn.js";
export type { RcacheDepot } from "./range-cache.js";
