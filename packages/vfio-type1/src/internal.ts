// Everything the package has, for tools that reach inside (`@vfio/type1/internal`): the root entry plus the DMA
// tree, pinning, the IOVA-list helpers and the ioctl dispatcher. Not a stable contract; the root entry is.
// The uapi codecs are `@vfio/uapi`'s (their one home); import them from there.

export { PAGE_MASK } from "@iommu/core";
export { Container } from "./container.js";
export { DmaTree } from "./dma-tree.js";
export { VfioGroup } from "./group.js";
export * from "./index.js";
export { aperExpand, aperResize, findSwMsi, iovaDmaValid, resvExclude } from "./iova-list.js";
export { pinRun, unpinRun, VFIO_BATCH_MAX_CAPACITY } from "./pin.js";
export { minPageSize, type1CheckExtension, VfioIommuType1 } from "./type1.js";
export { accessOk, type1Ioctl, verifyBitmapSize } from "./type1-ioctl.js";
