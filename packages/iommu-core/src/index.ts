export type { Iova, PhysAddr } from "./addr.js";
export { iova, physAddr } from "./addr.js";
export type { DeviceIommuState, DmaResult, PciDeviceInit } from "./device.js";
export { Device, PciDevice, PlatformDevice, pciName } from "./device.js";
export { createDeviceDirectMappings } from "./direct-mappings.js";
export type { FaultHandler, IovaCookie } from "./domain.js";
export { IommuDomain } from "./domain.js";
export type { Errno } from "./errno.js";
export { ERRNO, ErrnoError, errnoName, isErrno } from "./errno.js";
export { reportIommuFault } from "./fault.js";
export type { GroupHost } from "./group.js";
export { IommuGroup } from "./group.js";
export type { IommuOptions } from "./iommu.js";
export { Iommu } from "./iommu.js";
export type {
  DmaAccess,
  DomainAllocContext,
  DomainGeometry,
  DomainType,
  DriverDomain,
  HwInfo,
  IommuDriver,
  IommuHardware,
  IommuOps,
  IotlbGather,
  MapPagesResult,
  TranslateRequest,
  Translation,
} from "./iommu-ops.js";
export { DOMAIN_TYPE_BITS, emptyGather, isDmaApiDomain, isPagingDomain } from "./iommu-ops.js";
export { gatherAddPage, gatherAddRange, gatherIsEmpty } from "./iotlb-gather.js";
export { LogBuffer } from "./log-buffer.js";
export { iommuIovaToPhys, iommuMap, iommuUnmap, iommuUnmapFast } from "./map.js";
export type { MsiMsg } from "./msi-msg.js";
export { msiMsgAddress } from "./msi-msg.js";
export type { PgsizeChoice } from "./pgsize.js";
export { ffs64, fls64, iommuPgsize, minPageSize } from "./pgsize.js";
export type { AccessTarget, MemRegion, MemTxAttrs, MmioHandler } from "./phys-mem.js";
export { FRAME_SHIFT, FRAME_SIZE, PageAllocator, PhysicalMemory } from "./phys-mem.js";
export type { IommuCap } from "./prot.js";
export {
  IOMMU_CACHE,
  IOMMU_FAULT_READ,
  IOMMU_FAULT_WRITE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_SYS_CACHE,
  IOMMU_SYS_CACHE_NWA,
  IOMMU_WRITE,
} from "./prot.js";
export { DEFAULT_RATELIMIT_BURST, DEFAULT_RATELIMIT_INTERVAL_MS, Ratelimit } from "./ratelimit.js";
export type { ResvRegion, ResvType } from "./resv-region.js";
export { RESV_TYPES, resvEnd, resvRegion, resvTypeOrder } from "./resv-region.js";
export {
  insertResvRegion,
  insertResvRegions,
  resvRegionLine,
  resvRegionsText,
  resvTypeString,
} from "./resv-regions.js";
export { PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, SZ_1G, SZ_2M, SZ_4K, U32_MAX, U64_MAX, u64 } from "./u64.js";
