// The package's public contract: what a VFIO user (a host, a VMM, the demo) needs. Internals: `./internal`.
/** Page constants live in core; re-exported for type1's users who read them here. */
export { PAGE_SIZE, SZ_1G, SZ_2M } from "@iommu/core";
export type { CapHeader } from "@vfio/uapi";
export {
  IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE,
  infoBuffer,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_EEH,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  walkCaps,
} from "@vfio/uapi";
export type { ContainerHost, ContainerInfo } from "./container.js";
export { type Container, decodeInfo } from "./container.js";
export type { DmaTree, VfioDma } from "./dma-tree.js";
export type { Type1Info } from "./get-info.js";
export type { GroupHost, VfioGroup } from "./group.js";
export type { IovaRange } from "./iova-list.js";
export type { Type1KernelOptions } from "./kernel-options.js";
export { TYPE1_KERNEL_DEFAULTS } from "./kernel-options.js";
export type { MapDmaRequest } from "./map.js";
export type { PinBatch, PinnedRun, PinOptions } from "./pin.js";
export type { PageSource, PhysSegment, ProcessInit, VmaInit, VmaKind } from "./process.js";
export { lazyPageSource, Process, pageAllocatorSource, Vma } from "./process.js";
export type { Type1Env, Type1Params, VfioDomain } from "./state.js";
export type { VfioIommuType1 } from "./type1.js";
export type { IoctlArg } from "./type1-ioctl.js";
export type { UnmapDmaRequest } from "./unmap.js";
export type { VfioOptions } from "./vfio.js";
export { Vfio } from "./vfio.js";
