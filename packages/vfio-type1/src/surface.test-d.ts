// The public surface of @vfio/type1 (its root entry) is a contract: this pins the exported names. A name
// added or removed here is an API change and gets a changeset; internals go to another entry point.
import { expectTypeOf } from "vitest";
import type * as api from "./index.js";
import type * as internal from "./internal.js";

/** The runtime names (values: functions, classes, constants). */
type Values =
  | "IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE"
  | "PAGE_SIZE"
  | "Process"
  | "SZ_1G"
  | "SZ_2M"
  | "TYPE1_KERNEL_DEFAULTS"
  | "VFIO_API_VERSION"
  | "VFIO_CHECK_EXTENSION"
  | "VFIO_DMA_CC_IOMMU"
  | "VFIO_DMA_MAP_FLAG_READ"
  | "VFIO_DMA_MAP_FLAG_VADDR"
  | "VFIO_DMA_MAP_FLAG_WRITE"
  | "VFIO_DMA_UNMAP_FLAG_ALL"
  | "VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP"
  | "VFIO_DMA_UNMAP_FLAG_VADDR"
  | "VFIO_EEH"
  | "VFIO_GET_API_VERSION"
  | "VFIO_GROUP_FLAGS_CONTAINER_SET"
  | "VFIO_GROUP_FLAGS_VIABLE"
  | "VFIO_GROUP_GET_DEVICE_FD"
  | "VFIO_GROUP_GET_STATUS"
  | "VFIO_GROUP_SET_CONTAINER"
  | "VFIO_GROUP_UNSET_CONTAINER"
  | "VFIO_IOMMU_DIRTY_PAGES"
  | "VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP"
  | "VFIO_IOMMU_DIRTY_PAGES_FLAG_START"
  | "VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP"
  | "VFIO_IOMMU_GET_INFO"
  | "VFIO_IOMMU_INFO_CAPS"
  | "VFIO_IOMMU_INFO_PGSIZES"
  | "VFIO_IOMMU_MAP_DMA"
  | "VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE"
  | "VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION"
  | "VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL"
  | "VFIO_IOMMU_UNMAP_DMA"
  | "VFIO_NOIOMMU_IOMMU"
  | "VFIO_SET_IOMMU"
  | "VFIO_SPAPR_TCE_IOMMU"
  | "VFIO_SPAPR_TCE_v2_IOMMU"
  | "VFIO_TYPE1_IOMMU"
  | "VFIO_TYPE1_NESTING_IOMMU"
  | "VFIO_TYPE1v2_IOMMU"
  | "VFIO_UNMAP_ALL"
  | "VFIO_UPDATE_VADDR"
  | "Vfio"
  | "Vma"
  | "decodeInfo"
  | "infoBuffer"
  | "lazyPageSource"
  | "pageAllocatorSource"
  | "walkCaps";
expectTypeOf<keyof typeof api>().toEqualTypeOf<Values>();

/** The type-only names: each must stay exported (a missing one fails to compile here). */
export type TypeNames = [
  api.CapHeader,
  api.Container,
  api.ContainerHost,
  api.ContainerInfo,
  api.DmaTree,
  api.GroupHost,
  api.IoctlArg,
  api.IovaRange,
  api.MapDmaRequest,
  api.PageSource,
  api.PhysSegment,
  api.PinBatch,
  api.PinOptions,
  api.PinnedRun,
  api.ProcessInit,
  api.Type1Env,
  api.Type1Info,
  api.Type1KernelOptions,
  api.Type1Params,
  api.UnmapDmaRequest,
  api.VfioDma,
  api.VfioDomain,
  api.VfioGroup,
  api.VfioIommuType1,
  api.VfioOptions,
  api.VmaInit,
  api.VmaKind,
];

// Key signatures: the VFIO object takes its options; ioctls answer a number (>= 0, or -errno) from bytes.
expectTypeOf<ConstructorParameters<typeof api.Vfio>>().toEqualTypeOf<[api.VfioOptions]>();
expectTypeOf<api.Vfio["ioctl"]>().toEqualTypeOf<(fd: number, request: number, arg?: api.IoctlArg) => number>();
expectTypeOf<ReturnType<api.Container["ioctl"]>>().toEqualTypeOf<number>();
expectTypeOf<ConstructorParameters<typeof api.Process>>().toEqualTypeOf<[api.ProcessInit]>();

/** `./internal` is the root entry plus internals: every root name is there too. */
expectTypeOf<Exclude<keyof typeof api, keyof typeof internal>>().toEqualTypeOf<never>();
