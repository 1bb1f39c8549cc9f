// The public surface of @iommu/core (its root entry) is a contract: this pins the exported names. A name
// added or removed here is an API change and gets a changeset; internals go to another entry point.
import { expectTypeOf } from "vitest";
import type * as api from "./index.js";

/** The runtime names (values: functions, classes, constants). */
type Values =
  | "DEFAULT_RATELIMIT_BURST"
  | "DEFAULT_RATELIMIT_INTERVAL_MS"
  | "DOMAIN_TYPE_BITS"
  | "Device"
  | "ERRNO"
  | "ErrnoError"
  | "FRAME_SHIFT"
  | "FRAME_SIZE"
  | "IOMMU_CACHE"
  | "IOMMU_FAULT_READ"
  | "IOMMU_FAULT_WRITE"
  | "IOMMU_MMIO"
  | "IOMMU_NOEXEC"
  | "IOMMU_PRIV"
  | "IOMMU_READ"
  | "IOMMU_SYS_CACHE"
  | "IOMMU_SYS_CACHE_NWA"
  | "IOMMU_WRITE"
  | "Iommu"
  | "IommuDomain"
  | "IommuGroup"
  | "LogBuffer"
  | "PAGE_MASK"
  | "PAGE_SHIFT"
  | "PAGE_SIZE"
  | "PageAllocator"
  | "PciDevice"
  | "PhysicalMemory"
  | "PlatformDevice"
  | "RESV_TYPES"
  | "Ratelimit"
  | "SZ_1G"
  | "SZ_2M"
  | "SZ_4K"
  | "U32_MAX"
  | "U64_MAX"
  | "createDeviceDirectMappings"
  | "emptyGather"
  | "errnoName"
  | "ffs64"
  | "fls64"
  | "gatherAddPage"
  | "gatherAddRange"
  | "gatherIsEmpty"
  | "insertResvRegion"
  | "insertResvRegions"
  | "iommuIovaToPhys"
  | "iommuMap"
  | "iommuPgsize"
  | "iommuUnmap"
  | "iommuUnmapFast"
  | "iova"
  | "isDmaApiDomain"
  | "isErrno"
  | "isPagingDomain"
  | "minPageSize"
  | "msiMsgAddress"
  | "pciName"
  | "physAddr"
  | "reportIommuFault"
  | "resvEnd"
  | "resvRegion"
  | "resvRegionLine"
  | "resvRegionsText"
  | "resvTypeOrder"
  | "resvTypeString"
  | "u64";
expectTypeOf<keyof typeof api>().toEqualTypeOf<Values>();

/** The type-only names: each must stay exported (a missing one fails to compile here). */
export type TypeNames = [
  api.AccessTarget,
  api.DeviceIommuState,
  api.DmaAccess,
  api.DmaResult,
  api.DomainAllocContext,
  api.DomainGeometry,
  api.DomainType,
  api.DriverDomain,
  api.Errno,
  api.FaultHandler,
  api.GroupHost,
  api.HwInfo,
  api.IommuCap,
  api.IommuDriver,
  api.IommuHardware,
  api.IommuOps,
  api.IommuOptions,
  api.IotlbGather,
  api.Iova,
  api.IovaCookie,
  api.MapPagesResult,
  api.MemRegion,
  api.MemTxAttrs,
  api.MmioHandler,
  api.MsiMsg,
  api.PciDeviceInit,
  api.PgsizeChoice,
  api.PhysAddr,
  api.ResvRegion,
  api.ResvType,
  api.TranslateRequest,
  api.Translation,
];
