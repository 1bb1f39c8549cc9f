/**
 * `struct msi_msg` (include/linux/msi.h): what the irqchip composes and the device's MSI capability holds.
 * One type for every layer that builds or rewrites one (the dma-iommu cookie, interrupt remapping, boards).
 */
export interface MsiMsg {
  readonly addressHi: number;
  readonly addressLo: number;
  readonly data: number;
}

/** The full 64-bit address of a message. */
export function msiMsgAddress(msg: MsiMsg): bigint {
  return (BigInt(msg.addressHi >>> 0) << 32n) | BigInt(msg.addressLo >>> 0);
}
