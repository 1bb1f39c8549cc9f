// The public surface of @iommu/vt-d (its root entry) is a contract: this pins the exported names. A name
// added or removed here is an API change and gets a changeset; internals go to another entry point.

import type { IommuDriver, IommuHardware } from "@iommu/core";
import { expectTypeOf } from "vitest";
import type * as api from "./index.js";
import type * as internal from "./internal.js";

/** The runtime names (values: functions, classes, constants). */
type Values =
  | "INTERRUPT_WINDOW_END"
  | "INTERRUPT_WINDOW_START"
  | "MSI_ADDR_BASE"
  | "createIntelIommuDriver"
  | "createVtdHardware";
expectTypeOf<keyof typeof api>().toEqualTypeOf<Values>();

/** The type-only names: each must stay exported (a missing one fails to compile here). */
export type TypeNames = [
  api.CachedContext,
  api.ContextCache,
  api.DeliveredInterrupt,
  api.DeviceDomainInfo,
  api.DeviceScope,
  api.DmarFault,
  api.DmarTable,
  api.DmarUnit,
  api.DmarUnitOptions,
  api.Drhd,
  api.FaultRecord,
  api.FaultRecorder,
  api.IntelIommuDriver,
  api.IntelIommuDriverOptions,
  api.InterruptDecode,
  api.IoapicScope,
  api.Iotlb,
  api.IotlbEntry,
  api.IrState,
  api.IrqRemapper,
  api.IrqRemapping,
  api.IrteTarget,
  api.MsiAllocation,
  api.MsiMessage,
  api.PgsizeBitmapMode,
  api.PteRef,
  api.Rmrr,
  api.SecondLevelPteFormat,
  api.SecondLevelTable,
  api.SuperpageUnmap,
  api.VtdDomain,
  api.VtdHardware,
  api.VtdHardwareOptions,
  api.VtdStats,
];

// Key signatures: each factory takes its options and returns its own type; the driver has core's IommuDriver
// shape, the hardware model is the core's IommuHardware door.
expectTypeOf<Parameters<typeof api.createIntelIommuDriver>>().toEqualTypeOf<[api.IntelIommuDriverOptions]>();
expectTypeOf<ReturnType<typeof api.createIntelIommuDriver>>().toEqualTypeOf<api.IntelIommuDriver>();
expectTypeOf<api.IntelIommuDriver>().toExtend<IommuDriver>();
expectTypeOf<Parameters<typeof api.createVtdHardware>>().toEqualTypeOf<[api.VtdHardwareOptions]>();
expectTypeOf<ReturnType<typeof api.createVtdHardware>>().toExtend<IommuHardware>();

/** `./internal` is the root entry plus internals: every root name is there too. */
expectTypeOf<Exclude<keyof typeof api, keyof typeof internal>>().toEqualTypeOf<never>();
