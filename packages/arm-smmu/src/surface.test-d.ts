// The public surface of @iommu/arm-smmu (its root entry) is a contract: this pins the exported names. A name
// added or removed here is an API change and gets a changeset; internals go to another entry point.

import type { IommuDriver, IommuHardware } from "@iommu/core";
import { expectTypeOf } from "vitest";
import type * as api from "./index.js";
import type * as internal from "./internal.js";

/** The runtime names (values: functions, classes, constants). */
type Values =
  | "MSI_IOVA_BASE"
  | "MSI_IOVA_LENGTH"
  | "SMMU_MMIO_SIZE"
  | "V2_MMIO_SIZE"
  | "createArmSmmuV2Driver"
  | "createArmSmmuV3Driver"
  | "createSmmuV2Hardware"
  | "createSmmuV3Hardware";
expectTypeOf<keyof typeof api>().toEqualTypeOf<Values>();

/** The type-only names: each must stay exported (a missing one fails to compile here). */
export type TypeNames = [
  api.AddressRange,
  api.ArmSmmuV2Driver,
  api.ArmSmmuV2DriverOptions,
  api.ArmSmmuV3Driver,
  api.ArmSmmuV3DriverOptions,
  api.FirmwareRegions,
  api.GranuleShift,
  api.LpaeConfig,
  api.LpaePageTable,
  api.LpaeTlbOps,
  api.ResvRegionOptions,
  api.RmrRegion,
  api.SmmuDomain,
  api.SmmuFeatures,
  api.SmmuMaster,
  api.SmmuV2Domain,
  api.SmmuV2Features,
  api.SmmuV2Hardware,
  api.SmmuV2HardwareOptions,
  api.SmmuV2Master,
  api.SmmuV3Hardware,
  api.SmmuV3HardwareOptions,
  api.SmmuV3Stats,
  api.StreamConfig,
  api.Tlb,
  api.TlbEntry,
  api.WalkConfig,
  api.WalkResult,
];

// Key signatures: each factory takes its options and returns its own type; drivers have core's IommuDriver shape,
// hardware models are the core's IommuHardware door.
expectTypeOf<Parameters<typeof api.createArmSmmuV3Driver>>().toEqualTypeOf<[api.ArmSmmuV3DriverOptions]>();
expectTypeOf<ReturnType<typeof api.createArmSmmuV3Driver>>().toEqualTypeOf<api.ArmSmmuV3Driver>();
expectTypeOf<api.ArmSmmuV3Driver>().toExtend<IommuDriver>();
expectTypeOf<Parameters<typeof api.createArmSmmuV2Driver>>().toEqualTypeOf<[api.ArmSmmuV2DriverOptions]>();
expectTypeOf<ReturnType<typeof api.createArmSmmuV2Driver>>().toEqualTypeOf<api.ArmSmmuV2Driver>();
expectTypeOf<api.ArmSmmuV2Driver>().toExtend<IommuDriver>();
expectTypeOf<Parameters<typeof api.createSmmuV3Hardware>>().toEqualTypeOf<[api.SmmuV3HardwareOptions]>();
expectTypeOf<ReturnType<typeof api.createSmmuV3Hardware>>().toExtend<IommuHardware>();
expectTypeOf<Parameters<typeof api.createSmmuV2Hardware>>().toEqualTypeOf<[api.SmmuV2HardwareOptions]>();
expectTypeOf<ReturnType<typeof api.createSmmuV2Hardware>>().toExtend<IommuHardware>();

/** `./internal` is the root entry plus internals: every root name is there too. */
expectTypeOf<Exclude<keyof typeof api, keyof typeof internal>>().toEqualTypeOf<never>();
