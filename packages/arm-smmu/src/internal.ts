// Everything the package has, for its own tests, benches and tools that reach inside (`@iommu/arm-smmu/internal`):
// register and structure tables, io-pgtable, the walker and TLB. Not a stable contract; the root entry is.
// Hardware model (what QEMU emulates): registers, stream table, walker, TLB, queues.

// Architecture constants shared by both sides (the spec, not code of either).
export type { GranuleShift } from "./arch/lpae.js";
export { DESC, granulePgsizeBitmap } from "./arch/lpae.js";
export { REG, SMMU_MMIO_SIZE } from "./arch/regs.js";
export { V2_MMIO_SIZE } from "./arch/smmu-v2-regs.js";
export { CMD, EVT } from "./arch/structures.js";
export type { SmmuMaster } from "./driver/domain.js";
export { SmmuDomain } from "./driver/domain.js";
// Driver (what Linux does): probe, stream table, CDs, io-pgtable, command queue, events.
export type { ArmSmmuV3Driver, ArmSmmuV3DriverOptions } from "./driver/ops.js";
export { createArmSmmuV3Driver } from "./driver/ops.js";
export type { LpaeConfig, LpaeTlbOps } from "./driver/pgtable.js";
export { LpaePageTable } from "./driver/pgtable.js";
export type { AddressRange, FirmwareRegions, ResvRegionOptions, RmrRegion } from "./driver/resv-regions.js";
export { MSI_IOVA_BASE, MSI_IOVA_LENGTH, smmuResvRegions } from "./driver/resv-regions.js";
export type { SmmuFeatures } from "./driver/smmu-device.js";
export type { SmmuV2Master } from "./driver/v2/domain.js";
export { SmmuV2Domain } from "./driver/v2/domain.js";
export type { ArmSmmuV2Driver, ArmSmmuV2DriverOptions } from "./driver/v2/ops.js";
export { createArmSmmuV2Driver } from "./driver/v2/ops.js";
export type { SmmuV2Features } from "./driver/v2/smmu-device.js";
export type { SmmuV2HardwareOptions } from "./hw/smmu-v2.js";
export { createSmmuV2Hardware, SmmuV2Hardware } from "./hw/smmu-v2.js";
export type { SmmuV3HardwareOptions, SmmuV3Stats } from "./hw/smmu-v3.js";
export { createSmmuV3Hardware, eventName, SmmuV3Hardware } from "./hw/smmu-v3.js";
export type { StreamConfig } from "./hw/stream-config.js";
export type { TlbEntry } from "./hw/tlb.js";
export { Tlb } from "./hw/tlb.js";
export type { WalkConfig, WalkResult } from "./hw/walker.js";
export { walk } from "./hw/walker.js";
