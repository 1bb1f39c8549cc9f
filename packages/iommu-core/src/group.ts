/**
 * `struct iommu_group`: the smallest set of devices the IOMMU can isolate; every device of a group
 * is attached to the same domain. Ids come from an IDA starting at 0. Reference §2.1.
 */
import type { Device } from "./device.js";
import type { IommuDomain } from "./domain.js";
import type { IommuOps } from "./iommu-ops.js";
import type { ResvRegion } from "./resv-region.js";
import { resvRegionsText } from "./resv-regions.js";

/** What a group needs from its host subsystem (kept narrow so group.ts does not import iommu.ts). */
export interface GroupHost {
  getGroupResvRegions(group: IommuGroup): ResvRegion[];
}

export class IommuGroup {
  /** Member devices in the order they joined (`group->devices`); changed only by the core. */
  readonly devices: readonly Device[] = [];
  /** The core-owned DMA domain (DMA, DMA-FQ or identity); null if the driver gave none. */
  defaultDomain: IommuDomain | null = null;
  /** The domain every device of the group is attached to right now. */
  domain: IommuDomain | null = null;
  /** The domain used while a user (VFIO) owns the group's DMA; allocated on first claim. */
  blockingDomain: IommuDomain | null = null;
  /** `group->owner`: the DMA owner (VFIO container/iommufd) or null. */
  owner: object | null = null;
  /** `group->owner_cnt`: kernel drivers using the default domain, or 1 while an owner holds it. */
  ownerCount = 0;

  constructor(
    readonly id: number,
    readonly ops: IommuOps,
    private readonly host: GroupHost,
  ) {}

  /** sysfs `/sys/kernel/iommu_groups/<id>/reserved_regions`, byte for byte. */
  resvRegionsText(): string {
    return resvRegionsText(this.host.getGroupResvRegions(this));
  }

  /**
   * sysfs `/sys/kernel/iommu_groups/<id>/type`, byte for byte (with its newline): the *default*
   * domain's type, so a VFIO-owned group still reads `DMA` / `DMA-FQ`; `unknown` with no default domain.
   */
  typeText(): string {
    const d = this.defaultDomain;
    return `${d ? d.type : "unknown"}\n`;
  }
}

/** Core-only: append a device to a group's list (`iommu_group_add_device`). */
export function groupAddDevice(group: IommuGroup, dev: Device): void {
  (group.devices as Device[]).push(dev);
}

/** Core-only: drop a device from a group's list (`iommu_group_remove_device`). */
export function groupRemoveDevice(group: IommuGroup, dev: Device): void {
  const list = group.devices as Device[];
  const i = list.indexOf(dev);
  if (i >= 0) list.splice(i, 1);
}
