// The package's public contract: the SMMUv3/v2 hardware models and the Linux arm-smmu drivers a board wires
// together, with the types of their options and results. Internals (register and structure tables, io-pgtable,
// the walker, the TLB): `@iommu/arm-smmu/internal`.
export type { GranuleShift } from "./arch/lpae.js";
export { SMMU_MMIO_SIZE } from "./arch/regs.js";
export { V2_MMIO_SIZE } from "./arch/smmu-v2-regs.js";
export type { SmmuDomain, SmmuMaster } from "./driver/domain.js";
export type { ArmSmmuV3Driver, ArmSmmuV3DriverOptions } from "./driver/ops.js";
export { createArmSmmuV3Driver } from "./driver/ops.js";
export type { LpaeConfig, LpaePageTable, LpaeTlbOps } from "./driver/pgtable.js";
export type { AddressRange, FirmwareRegions, ResvRegionOptions, RmrRegion } from "./driver/resv-regions.js";
export { MSI_IOVA_BASE, MSI_IOVA_LENGTH } from "./driver/resv-regions.js";
export type { SmmuFeatures } from "./driver/smmu-device.js";
export type { SmmuV2Domain, SmmuV2Master } from "./driver/v2/domain.js";
export type { ArmSmmuV2Driver, ArmSmmuV2DriverOptions } from "./driver/v2/ops.js";
export { createArmSmmuV2Driver } from "./driver/v2/ops.js";
export type { SmmuV2Features } from "./driver/v2/smmu-device.js";
export type { SmmuV2HardwareOptions } from "./hw/smmu-v2.js";
export { createSmmuV2Hardware, type SmmuV2Hardware } from "./hw/smmu-v2.js";
export type { SmmuV3HardwareOptions, SmmuV3Stats } from "./hw/smmu-v3.js";
export { createSmmuV3Hardware, type SmmuV3Hardware } from "./hw/smmu-v3.js";
export type { StreamConfig } from "./hw/stream-config.js";
export type { Tlb, TlbEntry } from "./hw/tlb.js";
export type { WalkConfig, WalkResult } from "./hw/walker.js";
