// The package's public contract: cookies, the DMA API, MSI doorbells and the DMA-ops setup a host calls.
// Internals (the IOVA allocator calls, the flush queue, iommu_dma_init_domain, host-bridge reservations):
// `@dma-iommu/msi-cookie/internal`.
/** `struct msi_msg` lives in @iommu/core; re-exported beside the cookie's rewrite of it. */
export type { MsiMsg } from "@iommu/core";
export type { CookieWarning, DmaIommuCookie, MsiCookieOptions, MsiPage, SacPolicy } from "./cookie.js";
export { cookieOf, DmaCookie, getDmaCookie, getMsiCookie, MsiCookie, putDmaCookie } from "./cookie.js";
export type { DeviceDmaState } from "./device-dma.js";
export { deviceDma, dmaGetMask, dmaSetMask, setBusDmaLimit } from "./device-dma.js";
export type { DmaDirection, DmaMapOptions } from "./dma-api.js";
export {
  DMA_MAPPING_ERROR,
  dmaMap,
  dmaMappingError,
  dmaUnmap,
  flushQueueTimeout,
} from "./dma-api.js";
export type { FlushQueueHooks, FqEntry } from "./flush-queue.js";
export { type FlushQueue, IOVA_FQ_TIMEOUT_MS } from "./flush-queue.js";
export type { BridgeWindow, DmaRange, HostBridge } from "./host-bridge.js";
export type { DmaDomainInit } from "./init-domain.js";
export { setupDmaOps } from "./init-domain.js";
export { msiPagesOf, prepareMsi } from "./msi-doorbell.js";
export { composeMsiMsg } from "./msi-msg.js";
