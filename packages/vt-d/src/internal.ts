// Everything the package has, for its own tests, benches and tools that reach inside (`@iommu/vt-d/internal`):
// register tables, the DMAR unit, page-table and cache internals. Not a stable contract; the root entry is.
/** `struct msi_msg` is core's `MsiMsg`; the old name stays for users of this package. */
export type { MsiMsg as MsiMessage } from "@iommu/core";
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
  INTERRUPT_WINDOW_END,
  INTERRUPT_WINDOW_START,
  IOTLB,
  IRTA,
  PTE,
  QEMU_FRCD_OFFSET,
  QEMU_IOTLB_OFFSET,
  QI,
  REG,
} from "./arch/regs.js";
export type { DeviceScope, DmarTable, Drhd, IoapicScope, Rmrr } from "./driver/dmar-table.js";
export { findDrhd, rmrrScopes, scopeCovers } from "./driver/dmar-table.js";
export type { DmarFault, DmarUnitOptions } from "./driver/dmar-unit.js";
export { DmarUnit, formatFault } from "./driver/dmar-unit.js";
export type { DeviceDomainInfo, PgsizeBitmapMode, SecondLevelPteFormat } from "./driver/domain.js";
export { ALL_SIZES_PGSIZE_BITMAP, pgsizeBitmapFor, VtdDomain } from "./driver/domain.js";
export type { IrteTarget, MsiAllocation } from "./driver/irq-remapping.js";
export { composeRemappableMsi, IrqRemapping, MSI_ADDR_BASE } from "./driver/irq-remapping.js";
export type { IntelIommuDriver, IntelIommuDriverOptions, IrqRemapper } from "./driver/ops.js";
export { createIntelIommuDriver } from "./driver/ops.js";
export type { PteRef, SuperpageUnmap } from "./driver/pgtable.js";
export { SecondLevelTable } from "./driver/pgtable.js";
export { deviceHasRmrr, intelResvRegions, rmrrIsRelaxable } from "./driver/resv-regions.js";
export type { FaultRecord } from "./hw/fault-recording.js";
export { FaultRecorder } from "./hw/fault-recording.js";
export type { DeliveredInterrupt, InterruptDecode, IrState } from "./hw/interrupt-remapping.js";
export { decodeInterrupt } from "./hw/interrupt-remapping.js";
export type { CachedContext, IotlbEntry } from "./hw/tlb.js";
export { ContextCache, Iotlb } from "./hw/tlb.js";
export type { VtdHardwareOptions, VtdStats } from "./hw/vtd-hardware.js";
export { createVtdHardware, VtdHardware } from "./hw/vtd-hardware.js";
