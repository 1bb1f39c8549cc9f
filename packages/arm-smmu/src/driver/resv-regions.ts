/**
 * Reserved regions of a device behind an SMMU (reference §4.1): the software-managed MSI window
 * every arm-smmu reports, then what `iommu_dma_get_resv_regions` adds from firmware (IORT ITS
 * doorbells as hardware MSI, RMRs as direct), and the seed RFC's PCI host-bridge windows.
 */
import {
  type Device,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_READ,
  IOMMU_WRITE,
  type ResvRegion,
  resvRegion,
} from "@iommu/core";

/** MSI_IOVA_BASE / MSI_IOVA_LENGTH of arm-smmu(-v3).c: [0x8000000, 0x80fffff]. */
export const MSI_IOVA_BASE = 0x8000000n;
export const MSI_IOVA_LENGTH = 0x100000n;

export interface AddressRange {
  readonly start: bigint;
  readonly length: bigint;
}

/** An IORT RMR node: a range the firmware keeps DMA-mapped for some stream ids. */
export interface RmrRegion extends AddressRange {
  /** Stream ids the RMR applies to. */
  readonly streamIds: readonly number[];
  /** IOMMU_* prot; default READ|WRITE (Linux adds MMIO or CACHE from the RMR's attributes). */
  readonly prot?: number;
  /** RMR flag "remapping permitted": reported as direct-relaxable instead of direct. */
  readonly relaxable?: boolean;
}

/** Firmware-described regions (ACPI IORT). */
export interface FirmwareRegions {
  /** GICv3 ITS doorbell windows that must not be translated: hardware `msi` regions. */
  readonly itsDoorbells?: readonly AddressRange[];
  readonly rmrs?: readonly RmrRegion[];
}

export interface ResvRegionOptions {
  readonly firmware?: FirmwareRegions;
  /**
   * The seed RFC's variant (Linux 4.12–4.17 `iommu_dma_get_resv_regions`): the PCI host bridge's
   * memory windows reported as `reserved` (prot 0) for PCI devices, so no IOVA aliases a BAR.
   */
  readonly seedHostBridgeWindows?: readonly AddressRange[];
}

/** `arm_smmu_get_resv_regions` for `dev` with stream id `sid`, in the driver's order. */
export function smmuResvRegions(dev: Device, sid: number, opts: ResvRegionOptions): ResvRegion[] {
  const out = [resvRegion(MSI_IOVA_BASE, MSI_IOVA_LENGTH, IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO, "sw-msi")];
  for (const its of opts.firmware?.itsDoorbells ?? []) {
    out.push(resvRegion(its.start, its.length, IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO, "msi"));
  }
  for (const rmr of opts.firmware?.rmrs ?? []) {
    if (!rmr.streamIds.includes(sid)) continue;
    out.push(
      resvRegion(
        rmr.start,
        rmr.length,
        rmr.prot ?? IOMMU_READ | IOMMU_WRITE,
        rmr.relaxable ? "direct-relaxable" : "direct",
      ),
    );
  }
  if (dev.bus === "pci") {
    for (const w of opts.seedHostBridgeWindows ?? []) out.push(resvRegion(w.start, w.length, 0, "reserved"));
  }
  return out;
}
