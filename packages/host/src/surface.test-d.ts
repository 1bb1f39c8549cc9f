// The public surface of @iommu-sim/host (its root entry) is a contract: this pins the exported names. A name
// added or removed here is an API change and gets a changeset; internals go to another entry point.
import { expectTypeOf } from "vitest";
import type * as api from "./index.js";

/** The runtime names (values: functions, classes, constants). */
type Values =
  | "BOARD_NAMES"
  | "Bql"
  | "BoardSys"
  | "DEFAULT_KERNEL"
  | "EDU_BAR0_SIZE"
  | "EDU_BUF_SIZE"
  | "EDU_BUF_START"
  | "EDU_CLASS_CODE"
  | "EDU_DEVICE_ID"
  | "EDU_DMA_IRQ"
  | "EDU_DMA_IRQ_VALUE"
  | "EDU_DMA_MASK_28"
  | "EDU_DMA_RUN"
  | "EDU_DMA_TO_RAM"
  | "EDU_FACT_IRQ_VALUE"
  | "EDU_ID"
  | "EDU_REG"
  | "EDU_STATUS_COMPUTING"
  | "EDU_STATUS_IRQFACT"
  | "EDU_VENDOR_ID"
  | "EduDevice"
  | "EventFd"
  | "FIRST_LPI"
  | "FdTable"
  | "GITS_TRANSLATER"
  | "Gicv3Its"
  | "ITS_FRAME_SIZE"
  | "InterruptController"
  | "KERNEL_PROFILES"
  | "KERNEL_VERSIONS"
  | "KernelLog"
  | "MODSETS"
  | "PCI_COMMAND"
  | "PCI_COMMAND_IO"
  | "PCI_COMMAND_MASTER"
  | "PCI_COMMAND_MEMORY"
  | "PciConfigSpace"
  | "ProcessMemory"
  | "SysFs"
  | "VFIO_IRQ_INFO_AUTOMASKED"
  | "VFIO_IRQ_INFO_EVENTFD"
  | "VFIO_IRQ_INFO_MASKABLE"
  | "VFIO_IRQ_INFO_NORESIZE"
  | "VFIO_PCI_ERR_IRQ_INDEX"
  | "VFIO_PCI_NUM_IRQS"
  | "VFIO_PCI_NUM_REGIONS"
  | "VFIO_PCI_REQ_IRQ_INDEX"
  | "VFIO_REGION_INFO_FLAG_MMAP"
  | "VFIO_REGION_INFO_FLAG_READ"
  | "VFIO_REGION_INFO_FLAG_WRITE"
  | "VIRT_ITS_BASE"
  | "VfioCdev"
  | "VfioIommufd"
  | "VfioPciDevice"
  | "VfioPciHost"
  | "createBoard"
  | "kernelProfile"
  | "kmsgEscape"
  | "modelStatus"
  | "regionOffset"
  | "spliceStatus"
  | "vfioPciIoctl";
expectTypeOf<keyof typeof api>().toEqualTypeOf<Values>();

/** The type-only names: each must stay exported (a missing one fails to compile here). */
export type TypeNames = [
  api.BarMapping,
  api.Board,
  api.BoardInterrupt,
  api.BoardName,
  api.BoardOptions,
  api.BoardRegion,
  api.BoardSysOptions,
  api.DataResult,
  api.DeviceAccessGate,
  api.DeviceLock,
  api.EduDmaRecord,
  api.EduInit,
  api.EventfdLookup,
  api.FdEntry,
  api.HostKernelOptions,
  api.InterruptHandler,
  api.InterruptRecord,
  api.IoctlUserAccess,
  api.IrqInfo,
  api.ItsDrop,
  api.KernelProfile,
  api.KernelVersion,
  api.Modset,
  api.MsiGlue,
  api.MsiSetup,
  api.NodeKind,
  api.PciHeaderInit,
  api.RegionInfo,
  api.SetIrqs,
  api.StatusText,
  api.SysResult,
  api.UserMemory,
  api.VfioIommufdOptions,
  api.VfioPciKernel,
];
