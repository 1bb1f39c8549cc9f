// The public surface of @iova/allocator (its root entry) is a contract: this pins the exported names. A name
// added or removed here is an API change and gets a changeset; internals go to another entry point.
import { expectTypeOf } from "vitest";
import type * as api from "./index.js";

/** The runtime names (values: functions, classes, constants). */
type Values =
  | "IOVA_DEPOT_DELAY_MS"
  | "IOVA_MAG_SIZE"
  | "IOVA_RANGE_CACHE_MAX_SIZE"
  | "IovaDomain"
  | "MAX_GLOBAL_MAGS"
  | "pfn"
  | "pfnCount";
expectTypeOf<keyof typeof api>().toEqualTypeOf<Values>();

/** The type-only names: each must stay exported (a missing one fails to compile here). */
export type TypeNames = [api.IovaDomainOptions, api.IovaHints, api.IovaRange, api.Pfn, api.PfnCount, api.RcacheDepot];
