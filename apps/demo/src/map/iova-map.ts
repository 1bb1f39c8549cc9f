/**
 * The IOVA space of one VFIO container as a data model for `iommu-demo map`: the aperture, the
 * group's reserved regions (sysfs types), the valid ranges GET_INFO reports, the VMM's DMA mappings
 * and the MSI doorbell pages the host mapped. Renderers (text, SVG, HTML) only read this.
 */
import type { Vmm } from "../vmm/vmm.js";

export type MapRegionKind =
  | "valid"
  | "reserved"
  | "msi"
  | "sw-msi"
  | "direct"
  | "direct-relaxable"
  | "mapping"
  | "doorbell";

export interface MapRegion {
  readonly kind: MapRegionKind;
  readonly start: bigint;
  /** Inclusive. */
  readonly end: bigint;
  readonly label: string;
}

export interface IovaMap {
  readonly board: string;
  /** The Linux the host models (kernel profile), when known. */
  readonly kernel?: string;
  readonly device: string;
  readonly group: number;
  readonly apertureEnd: bigint;
  readonly regions: readonly MapRegion[];
  /** Every IOMMU group of the host: sysfs `type` and `reserved_regions` (RMRRs show up here). */
  readonly hostGroups?: readonly { id: number; devices: string[]; type: string; reservedRegions: string[] }[];
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Build the map from a VMM that has opened its container (and possibly mapped RAM and armed MSI). */
export function iovaMapOf(vmm: Vmm): IovaMap {
  const regions: MapRegion[] = [];
  const valid = vmm.info?.iovaRanges ?? [];
  for (const r of valid) regions.push({ kind: "valid", start: r.start, end: r.end, label: "valid IOVA range" });
  const group = vmm.board.iommu.groupById(vmm.groupId);
  const resv = group ? vmm.board.iommu.getGroupResvRegions(group) : [];
  for (const r of resv) {
    const kind: MapRegionKind = r.type;
    const what =
      r.type === "sw-msi" ? "software MSI window" : r.type === "msi" ? "MSI window (hardware)" : `${r.type} region`;
    regions.push({ kind, start: r.start, end: r.start + r.length - 1n, label: what });
  }
  for (const m of vmm.mappings) {
    if (m.ret !== 0) continue;
    regions.push({ kind: "mapping", start: m.iova, end: m.iova + m.size - 1n, label: `guest RAM ${m.name}` });
  }
  const msi = vmm.board.vfioPci.msiSetupOf(vmm.device);
  if (msi?.doorbellIova != null) {
    const phys = vmm.board.msiDoorbell & ~0xfffn;
    regions.push({
      kind: "doorbell",
      start: msi.doorbellIova,
      end: msi.doorbellIova + 0xfffn,
      label: `ITS doorbell page (phys ${hex(phys)})`,
    });
  }
  const last = valid.at(-1);
  const apertureEnd = last ? last.end : (1n << 48n) - 1n;
  regions.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const hostGroups = vmm.board.iommu.groups().map((g) => ({
    id: g.id,
    devices: g.devices.map((d) => d.name),
    type: g.typeText().trim(),
    reservedRegions: g.resvRegionsText().split("\n").filter(Boolean),
  }));
  return {
    board: vmm.board.name,
    kernel: vmm.board.kernel.version,
    device: vmm.device.name,
    group: vmm.groupId,
    apertureEnd,
    regions,
    hostGroups,
  };
}
