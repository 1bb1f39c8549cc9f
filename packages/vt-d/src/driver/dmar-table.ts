/**
 * The firmware's description of the remapping hardware, shaped like ACPI DMAR: DRHD units (register
 * base, device scopes or INCLUDE_PCI_ALL) and RMRRs (reserved memory that listed devices keep using).
 * Scope entries name PCI functions; a bridge entry covers everything behind it (Linux's
 * `is_downstream_to_pci_bridge`, reference §5.1).
 */
import { type Device, PciDevice } from "@iommu/core";

export interface DeviceScope {
  readonly bus: number;
  /** slot << 3 | function */
  readonly devfn: number;
  /** ACPI scope type: an endpoint, or a PCI bridge (covers its subordinate devices). */
  readonly kind: "endpoint" | "bridge";
}

export interface Drhd {
  readonly segment?: number;
  /** Physical base of the unit's registers (where the hardware model is mapped). */
  readonly registerBase: bigint;
  /** INCLUDE_PCI_ALL: the unit serves every device of its segment not listed under another unit. */
  readonly includeAll?: boolean;
  readonly scopes?: readonly DeviceScope[];
  /**
   * IOAPIC device scope entries (ACPI_DMAR_SCOPE_TYPE_IOAPIC): the IOAPICs whose interrupts this unit
   * remaps, with the requester id their interrupt messages carry (`ir_parse_ioapic_hpet_scope`).
   */
  readonly ioapics?: readonly IoapicScope[];
}

/** An IOAPIC under a DRHD: its APIC id and the bus/devfn its messages are tagged with (QEMU q35: 0xff:00.0). */
export interface IoapicScope {
  readonly ioapicId: number;
  readonly bus: number;
  readonly devfn: number;
}

export interface Rmrr {
  readonly segment?: number;
  /** First byte of the reserved range. */
  readonly base: bigint;
  /** Last byte (inclusive), as ACPI's end address. */
  readonly end: bigint;
  /** Device scope entries. */
  readonly scopes?: readonly DeviceScope[];
  /** Shorthand for endpoint scopes: the PCI functions themselves. */
  readonly devices?: readonly PciDevice[];
}

/** An RMRR's scope entries, with `devices` turned into endpoint entries. */
export function rmrrScopes(r: Rmrr): DeviceScope[] {
  return [
    ...(r.scopes ?? []),
    ...(r.devices ?? []).map((d) => ({ bus: d.busNr, devfn: d.devfn, kind: "endpoint" as const })),
  ];
}

export interface DmarTable {
  /** DMAR host address width (HAW + 1 bits). */
  readonly hostAddressWidth?: number;
  /** Remapping units. Omitted: one INCLUDE_PCI_ALL unit at the driver's `mmioBase`. */
  readonly drhds?: readonly Drhd[];
  readonly rmrrs?: readonly Rmrr[];
}

function scopeMatches(s: DeviceScope, d: PciDevice): boolean {
  return s.bus === d.busNr && s.devfn === d.devfn;
}

/** True if `scope` names `dev` itself or a bridge `dev` sits behind. */
export function scopeCovers(scope: DeviceScope, dev: Device): boolean {
  if (!(dev instanceof PciDevice)) return false;
  if (scopeMatches(scope, dev)) return true;
  if (scope.kind !== "bridge") return false;
  for (let p = dev.parent; p; p = p.parent) if (scopeMatches(scope, p)) return true;
  return false;
}

/** `dmar_find_matched_drhd_unit`: the unit whose scope lists the device, else the include-all unit. */
export function findDrhd(table: DmarTable, dev: Device): number {
  if (!(dev instanceof PciDevice)) return -1;
  const drhds = table.drhds ?? [];
  for (const [i, u] of drhds.entries()) {
    if ((u.segment ?? 0) !== dev.segment || u.includeAll) continue;
    if ((u.scopes ?? []).some((s) => scopeCovers(s, dev))) return i;
  }
  return drhds.findIndex((u) => u.includeAll && (u.segment ?? 0) === dev.segment);
}
