/**
 * Per-device DMA-API parameters Linux keeps in `struct device` / `dev->iommu`: the streaming DMA
 * mask (`dma_mask`, 32 bits until the driver raises it, as `pci_setup_device` leaves it), the bus
 * limit from firmware (`bus_dma_limit`, 0 = none), whether the device's DMA ops go through
 * dma-iommu, and the ≥6.4 SAC latch (`pci_32bit_workaround`).
 */
import type { Device } from "@iommu/core";
import { ErrnoError, U64_MAX } from "@iommu/core";
import { DMA_BIT_MASK_32, hex } from "./u64.js";

export interface DeviceDmaState {
  dmaMask: bigint;
  busDmaLimit: bigint;
  /** `dev->dma_ops == &iommu_dma_ops` after `iommu_setup_dma_ops`. */
  iommuDmaOps: boolean;
  /** 6.4+ only: try 32-bit IOVAs first until that fails once. */
  pci32bitWorkaround: boolean;
}

const states = new WeakMap<Device, DeviceDmaState>();

/** The device's DMA state, created with Linux's defaults on first use. */
export function deviceDma(dev: Device): DeviceDmaState {
  let s = states.get(dev);
  if (!s) {
    s = { dmaMask: DMA_BIT_MASK_32, busDmaLimit: 0n, iommuDmaOps: false, pci32bitWorkaround: dev.bus === "pci" };
    states.set(dev, s);
  }
  return s;
}

/** `dma_set_mask(dev, mask)`: iommu_dma_ops has no dma_supported hook, so any u64 mask is taken (0 is EIO). */
export function dmaSetMask(dev: Device, mask: bigint): void {
  if (mask <= 0n || mask > U64_MAX) {
    throw new ErrnoError("EIO", "dma_set_mask", "unsupported DMA mask", { mask: hex(mask) });
  }
  deviceDma(dev).dmaMask = mask;
}

/** `dma_get_mask(dev)`. */
export function dmaGetMask(dev: Device): bigint {
  return deviceDma(dev).dmaMask;
}

/** Firmware's bus limit (`bus_dma_limit`, from dma-ranges / _DMA); 0n clears it. */
export function setBusDmaLimit(dev: Device, limit: bigint): void {
  deviceDma(dev).busDmaLimit = limit;
}
