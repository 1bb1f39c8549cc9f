/**
 * `iommu_dma_compose_msi_msg` (reference §3.3): when the irqchip writes an MSI message, the
 * doorbell's physical address is replaced by its IOVA in the device's domain, keeping the offset
 * inside the doorbell page.
 */
import type { MsiMsg } from "@iommu/core";
import type { MsiPage } from "./cookie.js";

/**
 * Rewrite `msg` for `msiPage` (from `prepareMsi`); a null page (no cookie: e.g. x86 with hardware
 * MSI) leaves the message as it is. Returns a new message.
 */
export function composeMsiMsg(msiPage: MsiPage | null, msg: MsiMsg): MsiMsg {
  if (!msiPage) return msg;
  const lo = BigInt(msg.addressLo >>> 0) & (msiPage.granule - 1n);
  return {
    addressHi: Number((msiPage.iova >> 32n) & 0xffff_ffffn),
    addressLo: Number((lo + (msiPage.iova & 0xffff_ffffn)) & 0xffff_ffffn),
    data: msg.data,
  };
}
