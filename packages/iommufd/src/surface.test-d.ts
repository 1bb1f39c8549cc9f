// The public surface of @iommu/iommufd (its root entry) is a contract: this pins the exported names. A name
// added or removed here is an API change and gets a changeset; internals go to another entry point.
import { expectTypeOf } from "vitest";
import type * as api from "./index.js";

/** The runtime names (values: functions, classes, constants). */
type Values =
  | "HPAGE_SIZE"
  | "HwptPaging"
  | "IoPagetable"
  | "Ioas"
  | "IommufdCtx"
  | "IommufdDevice"
  | "IommufdGroup"
  | "IoptPages"
  | "ObjectTable"
  | "iommufdIoctl"
  | "userOf"
  | "vfioCompatIoctl";
expectTypeOf<keyof typeof api>().toEqualTypeOf<Values>();

/** The type-only names: each must stay exported (a missing one fails to compile here). */
export type TypeNames = [
  api.AccountMode,
  api.CompatArg,
  api.HwInfoAnswer,
  api.IntervalNode,
  api.IommufdObject,
  api.IommufdOptions,
  api.IoptArea,
  api.MapFlags,
  api.ObjectType,
  api.PagesSlice,
  api.Span,
  api.UserMemory,
  api.UserSegment,
];
