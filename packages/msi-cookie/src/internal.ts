// Everything the package has, for its own tests, benches and tools that reach inside (`@dma-iommu/msi-cookie/internal`):
// the IOVA allocator calls, the flush queue, iommu_dma_init_domain and the host-bridge reservations. Not a stable contract.
/** `struct msi_msg` lives in @iommu/core; re-exported beside the cookie's rewrite of it. */
export type { MsiMsg } from "@iommu/core";
export { msiMsgAddress } from "@iommu/core";
export { allocIova, freeIova } from "./alloc-iova.js";
export type { CookieWarning, DmaIommuCookie, MsiCookieOptions, MsiPage, SacPolicy } from "./cookie.js";
export { cookieOf, DmaCookie, getDmaCookie, getMsiCookie, MsiCookie, putDmaCookie } from "./cookie.js";
export type { DeviceDmaState } from "./device-dma.js";
export { deviceDma, dmaGetMask, dmaSetMask, setBusDmaLimit } from "./device-dma.js";
export type { DmaDirection, DmaMapOptions } from "./dma-api.js";
export {
  DMA_MAPPING_ERROR,
  dmaInfoToProt,
  dmaMap,
  dmaMappingError,
  dmaUnmap,
  flushQueueTimeout,
} from "./dma-api.js";
export type { FlushQueueHooks, FqEntry } from "./flush-queue.js";
export { FlushQueue, IOVA_FQ_SIZE, IOVA_FQ_TIMEOUT_MS } from "./flush-queue.js";
export type { BridgeWindow, DmaRange, HostBridge } from "./host-bridge.js";
export { reservePciWindows } from "./host-bridge.js";
export type { DmaDomainInit } from "./init-domain.js";
export { iommuDmaInitDomain, setupDmaOps } from "./init-domain.js";
export { MSI_DOORBELL_PROT, msiPagesOf, prepareMsi } from "./msi-doorbell.js";
export { composeMsiMsg } from "./msi-msg.js";
