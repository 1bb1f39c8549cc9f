export type { Board, BoardInterrupt, BoardName, BoardOptions, BoardRegion } from "./boards/index.js";
export { BOARD_NAMES, createBoard } from "./boards/index.js";
export type { DeviceLock, EduDmaRecord, EduInit } from "./devices/edu.js";
export {
  EDU_BAR0_SIZE,
  EDU_BUF_SIZE,
  EDU_BUF_START,
  EDU_CLASS_CODE,
  EDU_DEVICE_ID,
  EDU_DMA_IRQ,
  EDU_DMA_IRQ_VALUE,
  EDU_DMA_MASK_28,
  EDU_DMA_RUN,
  EDU_DMA_TO_RAM,
  EDU_FACT_IRQ_VALUE,
  EDU_ID,
  EDU_REG,
  EDU_STATUS_COMPUTING,
  EDU_STATUS_IRQFACT,
  EDU_VENDOR_ID,
  EduDevice,
} from "./devices/edu.js";
export type { PciHeaderInit } from "./devices/pci-config.js";
export {
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PciConfigSpace,
} from "./devices/pci-config.js";
export { Bql } from "./irq/bql.js";
export type { ItsDrop } from "./irq/gicv3-its.js";
export { FIRST_LPI, GITS_TRANSLATER, Gicv3Its, ITS_FRAME_SIZE, VIRT_ITS_BASE } from "./irq/gicv3-its.js";
export type { InterruptHandler, InterruptRecord } from "./irq/interrupt-controller.js";
export { InterruptController } from "./irq/interrupt-controller.js";
export { EventFd } from "./kernel/eventfd.js";
export { KernelLog, kmsgEscape } from "./kernel/kernel-log.js";
export type { MsiGlue, MsiSetup } from "./kernel/msi-glue.js";
export type { Modset, VfioIommufdOptions } from "./kernel/vfio-iommufd.js";
export { MODSETS, VfioCdev, VfioIommufd } from "./kernel/vfio-iommufd.js";
export type {
  BarMapping,
  DeviceAccessGate,
  IrqInfo,
  RegionInfo,
  SetIrqs,
  VfioPciKernel,
} from "./kernel/vfio-pci.js";
export {
  regionOffset,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_REQ_IRQ_INDEX,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  VfioPciDevice,
  VfioPciHost,
} from "./kernel/vfio-pci.js";
export type { EventfdLookup, IoctlUserAccess } from "./kernel/vfio-pci-ioctl.js";
export { vfioPciIoctl } from "./kernel/vfio-pci-ioctl.js";
export type { HostKernelOptions, KernelProfile, KernelVersion } from "./kernel-profile.js";
export { DEFAULT_KERNEL, KERNEL_PROFILES, KERNEL_VERSIONS, kernelProfile } from "./kernel-profile.js";
export type { BoardSysOptions, DataResult, SysResult } from "./sys/board-sys.js";
export { BoardSys } from "./sys/board-sys.js";
export type { FdEntry } from "./sys/fd-table.js";
export { FdTable } from "./sys/fd-table.js";
export type { NodeKind, StatusText } from "./sys/sysfs.js";
export { modelStatus, SysFs, spliceStatus } from "./sys/sysfs.js";
export type { UserMemory } from "./sys/user-memory.js";
export { ProcessMemory } from "./sys/user-memory.js";
