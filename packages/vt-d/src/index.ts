// The package's public contract: the VT-d hardware model and the Linux intel-iommu driver a board wires
// together, with the types of their options and results. Internals (register tables, DMAR unit, caches,
// page-table walkers): `@iommu/vt-d/internal`.
/** `struct msi_msg` is core's `MsiMsg`; the old name stays for users of this package. */
export type { MsiMsg as MsiMessage } from "@iommu/core";
export { INTERRUPT_WINDOW_END, INTERRUPT_WINDOW_START } from "./arch/regs.js";
export type { DeviceScope, DmarTable, Drhd, IoapicScope, Rmrr } from "./driver/dmar-table.js";
export type { DmarFault, DmarUnit, DmarUnitOptions } from "./driver/dmar-unit.js";
export type { DeviceDomainInfo, PgsizeBitmapMode, SecondLevelPteFormat, VtdDomain } from "./driver/domain.js";
export type { IrqRemapping, IrteTarget, MsiAllocation } from "./driver/irq-remapping.js";
export { MSI_ADDR_BASE } from "./driver/irq-remapping.js";
export type { IntelIommuDriver, IntelIommuDriverOptions, IrqRemapper } from "./driver/ops.js";
export { createIntelIommuDriver } from "./driver/ops.js";
export type { PteRef, SecondLevelTable, SuperpageUnmap } from "./driver/pgtable.js";
export type { FaultRecord, FaultRecorder } from "./hw/fault-recording.js";
export type { DeliveredInterrupt, InterruptDecode, IrState } from "./hw/interrupt-remapping.js";
export type { CachedContext, ContextCache, Iotlb, IotlbEntry } from "./hw/tlb.js";
export type { VtdHardwareOptions, VtdStats } from "./hw/vtd-hardware.js";
export { createVtdHardware, type VtdHardware } from "./hw/vtd-hardware.js";
