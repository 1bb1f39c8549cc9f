// Everything the package has, for tools that reach inside (`@iommu/arm-smmu/internal`): the root entry plus register
// and structure tables, io-pgtable, the walker and the TLB. Not a stable contract; the root entry is.

// Architecture constants shared by both sides (the spec, not code of either).
export { DESC, granulePgsizeBitmap } from "./arch/lpae.js";
export { REG } from "./arch/regs.js";
export { CMD, EVT } from "./arch/structures.js";
// Driver (what Linux does) and hardware model (what QEMU emulates).
export { SmmuDomain } from "./driver/domain.js";
export { LpaePageTable } from "./driver/pgtable.js";
export { smmuResvRegions } from "./driver/resv-regions.js";
export { SmmuV2Domain } from "./driver/v2/domain.js";
export { SmmuV2Hardware } from "./hw/smmu-v2.js";
export { eventName, SmmuV3Hardware } from "./hw/smmu-v3.js";
export { Tlb } from "./hw/tlb.js";
export { walk } from "./hw/walker.js";
export * from "./index.js";
