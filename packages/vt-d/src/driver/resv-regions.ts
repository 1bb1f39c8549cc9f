/**
 * `intel_iommu_get_resv_regions` (Linux 6.1, reference §5.1): RMRRs whose scope covers the device (or a
 * bridge above it), direct — or direct-relaxable for USB and graphics devices —; the ISA-bridge floppy
 * workaround [0, 16 MiB) as direct-relaxable (CONFIG_INTEL_IOMMU_FLOPPY_WA, on in Debian's 6.1); and always
 * the interrupt window [0xfee00000, 0xfeefffff] as msi with prot 0. Order: RMRRs, ISA, MSI.
 */
import { type Device, IOMMU_READ, IOMMU_WRITE, PciDevice, type ResvRegion, resvRegion } from "@iommu/core";
import { INTERRUPT_WINDOW_END, INTERRUPT_WINDOW_START } from "../arch/regs.js";
import { type DmarTable, rmrrScopes, scopeCovers } from "./dmar-table.js";

/** PCI class codes (class << 8 | subclass) Linux tests. */
const PCI_CLASS_SERIAL_USB = 0x0c03;
const PCI_CLASS_BRIDGE_ISA = 0x0601;
const PCI_BASE_CLASS_DISPLAY = 0x03;

/** `device_rmrr_is_relaxable`: USB controllers and graphics devices may lose their RMRR mapping. */
export function rmrrIsRelaxable(dev: Device): boolean {
  if (!(dev instanceof PciDevice)) return false;
  return dev.classCode >> 8 === PCI_CLASS_SERIAL_USB || dev.classCode >> 16 === PCI_BASE_CLASS_DISPLAY;
}

/** True when an RMRR names this device (`device_has_rmrr`). */
export function deviceHasRmrr(table: DmarTable, dev: Device): boolean {
  return (table.rmrrs ?? []).some((r) => rmrrScopes(r).some((s) => scopeCovers(s, dev)));
}

export interface ResvOptions {
  /** CONFIG_INTEL_IOMMU_FLOPPY_WA (default true, as Debian builds it). */
  readonly floppyWorkaround?: boolean;
}

export function intelResvRegions(table: DmarTable, dev: Device, opts: ResvOptions = {}): ResvRegion[] {
  const prot = IOMMU_READ | IOMMU_WRITE;
  const out: ResvRegion[] = [];
  for (const rmrr of table.rmrrs ?? []) {
    if (dev instanceof PciDevice && (rmrr.segment ?? 0) !== dev.segment) continue;
    for (const s of rmrrScopes(rmrr)) {
      if (!scopeCovers(s, dev)) continue;
      const type = rmrrIsRelaxable(dev) ? "direct-relaxable" : "direct";
      out.push(resvRegion(rmrr.base, rmrr.end - rmrr.base + 1n, prot, type));
    }
  }
  if ((opts.floppyWorkaround ?? true) && dev instanceof PciDevice && dev.classCode >> 8 === PCI_CLASS_BRIDGE_ISA) {
    out.push(resvRegion(0n, 1n << 24n, prot, "direct-relaxable"));
  }
  out.push(resvRegion(INTERRUPT_WINDOW_START, INTERRUPT_WINDOW_END - INTERRUPT_WINDOW_START + 1n, 0, "msi"));
  return out;
}
