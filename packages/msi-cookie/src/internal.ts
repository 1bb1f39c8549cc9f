// Everything the package has, for tools that reach inside (`@dma-iommu/msi-cookie/internal`): the root entry plus
// the IOVA allocator calls, the flush queue, iommu_dma_init_domain and the host-bridge reservations. Not a stable
// contract; the root entry is.

export { allocIova, freeIova } from "./alloc-iova.js";
export { dmaInfoToProt } from "./dma-api.js";
export { FlushQueue, IOVA_FQ_SIZE } from "./flush-queue.js";
export { reservePciWindows } from "./host-bridge.js";
export * from "./index.js";
export { iommuDmaInitDomain } from "./init-domain.js";
export { MSI_DOORBELL_PROT } from "./msi-doorbell.js";
