// Everything the package has, for tools that reach inside (`@iommu/vt-d/internal`): the root entry plus register
// tables, the DMAR unit, page-table and cache internals. Not a stable contract; the root entry is.

export {
  CAP,
  CCMD,
  CTX,
  ECAP,
  FAULT,
  FECTL,
  FRCD,
  FSTS,
  faultReasonText,
  GCMD,
  GSTS,
  IOTLB,
  IRTA,
  PTE,
  QEMU_FRCD_OFFSET,
  QEMU_IOTLB_OFFSET,
  QI,
  REG,
} from "./arch/regs.js";
export { findDrhd, rmrrScopes, scopeCovers } from "./driver/dmar-table.js";
export { DmarUnit, formatFault } from "./driver/dmar-unit.js";
export { ALL_SIZES_PGSIZE_BITMAP, pgsizeBitmapFor, VtdDomain } from "./driver/domain.js";
export { composeRemappableMsi, IrqRemapping } from "./driver/irq-remapping.js";
export { SecondLevelTable } from "./driver/pgtable.js";
export { deviceHasRmrr, intelResvRegions, rmrrIsRelaxable } from "./driver/resv-regions.js";
export { FaultRecorder } from "./hw/fault-recording.js";
export { decodeInterrupt } from "./hw/interrupt-remapping.js";
export { ContextCache, Iotlb } from "./hw/tlb.js";
export { VtdHardware } from "./hw/vtd-hardware.js";
export * from "./index.js";
