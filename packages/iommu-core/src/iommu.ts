/**
 * The IOMMU subsystem of one host (drivers/iommu/iommu.c, Linux 6.1): probes devices into groups,
 * gives each group a default domain, attaches groups to domains, manages DMA ownership, and
 * forwards map/unmap/reserved-region/capability calls to the driver. Reference §2.
 */
import type { Iova, PhysAddr } from "./addr.js";
import type { Device } from "./device.js";
import { createDeviceDirectMappings } from "./direct-mappings.js";
import { IommuDomain } from "./domain.js";
import { ERRNO, ErrnoError, isErrno } from "./errno.js";
import { reportIommuFault } from "./fault.js";
import { groupAddDevice, groupRemoveDevice, IommuGroup } from "./group.js";
import type { DomainAllocContext, DomainType, IommuOps } from "./iommu-ops.js";
import { iommuIovaToPhys, iommuMap, iommuUnmap } from "./map.js";
import type { IommuCap } from "./prot.js";
import type { ResvRegion } from "./resv-region.js";
import { insertResvRegions } from "./resv-regions.js";

export interface IommuOptions {
  /**
   * `iommu_def_domain_type`: DMA (strict invalidation, arm64 Debian), DMA-FQ (lazy, x86 Debian) or
   * identity (`iommu.passthrough=1`). A driver's `defDomainType(dev)` overrides it per device.
   */
  defaultDomainType?: "DMA" | "DMA-FQ" | "identity";
  /** irq_domain_check_msi_remap(): an MSI controller that isolates (GICv3 ITS) */
  msiRemap?: boolean;
  /**
   * Called on every domain the core allocates, right after the driver did. Linux 6.1's
   * `__iommu_domain_alloc` gives DMA-API domains their dma-iommu cookie here
   * (`iommu_get_dma_cookie`); core cannot import msi-cookie, so the host wires it in. If the hook
   * throws an ErrnoError, the domain is freed and the allocation fails as the driver returning NULL
   * would (other exceptions propagate after the free).
   */
  onDomainAlloc?: (domain: IommuDomain) => void;
}

export class Iommu {
  /** True when the platform's MSI controller isolates devices (`irq_domain_check_msi_remap`). */
  msiRemap: boolean;
  readonly defaultDomainType: "DMA" | "DMA-FQ" | "identity";
  private readonly onDomainAlloc: ((domain: IommuDomain) => void) | undefined;
  private readonly groupsById = new Map<number, IommuGroup>();
  private readonly groupsByKey = new Map<IommuOps, Map<string, IommuGroup>>();
  private readonly groupKeys = new Map<IommuGroup, string>();
  private nextDomainId = 1;

  constructor(opts: IommuOptions = {}) {
    this.msiRemap = opts.msiRemap ?? false;
    this.defaultDomainType = opts.defaultDomainType ?? "DMA";
    this.onDomainAlloc = opts.onDomainAlloc;
  }

  // ---- devices and groups -------------------------------------------------------------------

  /**
   * `iommu_probe_device`: the driver claims the device (ENODEV if not its own), picks its group
   * (equal `deviceGroup` keys share one), the group gets a default domain if it has none (falling
   * back to DMA, as `iommu_group_alloc_default_domain`), the device is attached to the group's
   * current domain, and its direct regions are identity-mapped into the default domain.
   * Throws EEXIST if already probed, or the driver's error; a failure leaves no trace.
   */
  probeDevice(dev: Device, ops: IommuOps): IommuGroup {
    const op = "iommu_probe_device";
    if (dev.iommu) {
      throw new ErrnoError("EEXIST", op, `${dev.name} already probed`, { device: dev.name });
    }
    ops.probeDevice(dev);
    let key: string;
    try {
      key = ops.deviceGroup(dev);
    } catch (e) {
      ops.releaseDevice?.(dev);
      throw e;
    }
    let byKey = this.groupsByKey.get(ops);
    if (!byKey) {
      byKey = new Map();
      this.groupsByKey.set(ops, byKey);
    }
    const existing = byKey.get(key);
    const group = existing ?? new IommuGroup(this.allocGroupId(), ops, this);
    if (!existing) {
      this.groupsById.set(group.id, group);
      byKey.set(key, group);
      this.groupKeys.set(group, key);
    }
    dev.iommu = { ops, groupId: group.id, requireDirect: false };
    groupAddDevice(group, dev);

    const undo = (e: unknown): never => {
      groupRemoveDevice(group, dev);
      dev.iommu = null;
      if (!existing) this.releaseGroup(group);
      ops.releaseDevice?.(dev);
      throw e;
    };

    // iommu_group_add_device: join whatever domain the group is using now.
    try {
      if (group.domain) group.domain.driver.attachDev(dev);
    } catch (e) {
      return undo(e);
    }
    if (!group.defaultDomain) {
      const type = ops.defDomainType?.(dev) ?? this.defaultDomainType;
      let dom = this.tryDomainAlloc(ops, type);
      if (!dom && type !== "DMA") dom = this.tryDomainAlloc(ops, "DMA");
      if (dom) {
        group.defaultDomain = dom;
        if (!group.domain) {
          group.domain = dom;
          // A claimed group keeps its blocking domain; otherwise attach the new default domain.
          if (!group.owner) {
            try {
              dom.driver.attachDev(dev);
            } catch (e) {
              group.defaultDomain = null;
              group.domain = null;
              this.freeDriverDomain(dom);
              return undo(e);
            }
          }
        }
      }
    }
    // Errors here are ignored by Linux's probe path too.
    createDeviceDirectMappings(group.defaultDomain, dev, this.getResvRegions(dev));
    return group;
  }

  /** `iommu_release_device`: the driver forgets the device; an empty, unowned group is released. */
  releaseDevice(dev: Device): void {
    const state = dev.iommu;
    if (!state) return;
    const group = this.groupsById.get(state.groupId);
    state.ops.releaseDevice?.(dev);
    dev.iommu = null;
    if (!group) return;
    groupRemoveDevice(group, dev);
    if (group.devices.length === 0 && !group.owner) this.releaseGroup(group);
  }

  groupOf(dev: Device): IommuGroup | null {
    if (!dev.iommu) return null;
    return this.groupsById.get(dev.iommu.groupId) ?? null;
  }

  groupById(id: number): IommuGroup | undefined {
    return this.groupsById.get(id);
  }

  /** All groups, by id. */
  groups(): IommuGroup[] {
    return [...this.groupsById.values()].sort((a, b) => a.id - b.id);
  }

  // ---- domains ------------------------------------------------------------------------------

  /** `iommu_domain_alloc` (VFIO asks for "unmanaged"). Throws ENOMEM when the driver returns null. */
  domainAlloc(ops: IommuOps, type: DomainType): IommuDomain {
    const dom = this.tryDomainAlloc(ops, type);
    if (!dom) {
      throw new ErrnoError("ENOMEM", "iommu_domain_alloc", `${ops.name} cannot allocate a ${type} domain`, {
        type,
      });
    }
    return dom;
  }

  /** `iommu_domain_free`. Throws EBUSY while a group is still attached to the domain. */
  domainFree(domain: IommuDomain): void {
    if (domain.freed) return;
    for (const g of this.groupsById.values()) {
      if (g.domain === domain) {
        throw new ErrnoError("EBUSY", "iommu_domain_free", `domain ${domain.id} is attached to group ${g.id}`, {
          domain: domain.id,
          group: g.id,
        });
      }
    }
    for (const g of this.groupsById.values()) {
      if (g.defaultDomain === domain) g.defaultDomain = null;
      if (g.blockingDomain === domain) g.blockingDomain = null;
    }
    this.freeDriverDomain(domain);
  }

  /**
   * `iommu_attach_group`: EBUSY if the group already uses a domain other than its default or
   * blocking domain; EINVAL for a freed domain or one of another driver; else the driver's error.
   * Unlike 6.1 (which left earlier devices switched), a failure re-attaches the previous domain.
   */
  attachGroup(domain: IommuDomain, group: IommuGroup): void {
    const op = "__iommu_attach_group";
    if (group.domain && group.domain !== group.defaultDomain && group.domain !== group.blockingDomain) {
      throw new ErrnoError("EBUSY", op, `group ${group.id} is already attached to domain ${group.domain.id}`, {
        group: group.id,
        domain: group.domain.id,
      });
    }
    this.setGroupDomain(group, domain);
  }

  /**
   * `iommu_attach_device`: attach a single-device group. ENODEV for a device without a group,
   * EINVAL when its group has more than one device; otherwise as `attachGroup`.
   */
  attachDevice(domain: IommuDomain, dev: Device): void {
    const group = this.groupOf(dev);
    if (!group) throw new ErrnoError("ENODEV", "iommu_attach_device", `${dev.name} has no IOMMU group`, {});
    if (group.devices.length !== 1) {
      throw new ErrnoError("EINVAL", "iommu_attach_device", `group ${group.id} has ${group.devices.length} devices`, {
        group: group.id,
        devices: group.devices.length,
      });
    }
    this.attachGroup(domain, group);
  }

  /** `iommu_detach_device`: only for the domain of a single-device group (else a no-op, where Linux WARNs). */
  detachDevice(domain: IommuDomain, dev: Device): void {
    const group = this.groupOf(dev);
    if (!group || group.domain !== domain || group.devices.length !== 1) return;
    this.setCoreDomain(group);
  }

  /** `iommu_get_domain_for_dev`: the domain the device's group uses now (null without one). */
  domainForDev(dev: Device): IommuDomain | null {
    return this.groupOf(dev)?.domain ?? null;
  }

  /** `iommu_detach_group`: back to the core domain (blocking while owned, else the default domain). */
  detachGroup(_domain: IommuDomain, group: IommuGroup): void {
    this.setCoreDomain(group);
  }

  // ---- DMA ownership ------------------------------------------------------------------------

  /**
   * `iommu_group_claim_dma_owner`: EPERM if the group is already claimed (or used by a kernel
   * driver), EBUSY if it is attached to a non-default domain; else the group moves to its
   * blocking domain (BLOCKED, or an empty UNMANAGED one for drivers without BLOCKED; EINVAL if
   * neither) and `owner` holds it.
   */
  claimDmaOwner(group: IommuGroup, owner: object): void {
    const op = "iommu_group_claim_dma_owner";
    if (group.ownerCount > 0) {
      throw new ErrnoError("EPERM", op, `group ${group.id} DMA is already owned`, {
        group: group.id,
        ownerCount: group.ownerCount,
      });
    }
    if (group.domain && group.domain !== group.defaultDomain) {
      throw new ErrnoError("EBUSY", op, `group ${group.id} is attached to a non-default domain`, {
        group: group.id,
      });
    }
    let fresh: IommuDomain | null = null;
    if (!group.blockingDomain) {
      fresh = this.tryDomainAlloc(group.ops, "blocked") ?? this.tryDomainAlloc(group.ops, "unmanaged");
      if (!fresh) {
        throw new ErrnoError("EINVAL", "__iommu_group_alloc_blocking_domain", "driver gave no blocking domain", {
          group: group.id,
        });
      }
      group.blockingDomain = fresh;
    }
    try {
      this.setGroupDomain(group, group.blockingDomain as IommuDomain);
    } catch (e) {
      if (fresh) {
        group.blockingDomain = null;
        this.freeDriverDomain(fresh);
      }
      throw e;
    }
    group.owner = owner;
    group.ownerCount = 1;
  }

  /** `iommu_group_release_dma_owner`: back to the default domain; a no-op if not owned. */
  releaseDmaOwner(group: IommuGroup): void {
    if (!group.owner) return;
    group.owner = null;
    group.ownerCount = 0;
    if (group.defaultDomain) this.setGroupDomain(group, group.defaultDomain);
    if (group.devices.length === 0) this.releaseGroup(group);
  }

  /** `iommu_device_use_default_domain`: a kernel driver binds; EBUSY while a user owns the group. */
  useDefaultDomain(dev: Device): void {
    const group = this.groupOf(dev);
    if (!group) return;
    if (group.ownerCount > 0 && (group.owner || group.domain !== group.defaultDomain)) {
      throw new ErrnoError("EBUSY", "iommu_device_use_default_domain", `group ${group.id} is owned`, {
        group: group.id,
      });
    }
    group.ownerCount++;
  }

  /** `iommu_device_unuse_default_domain`. */
  unuseDefaultDomain(dev: Device): void {
    const group = this.groupOf(dev);
    if (group && group.ownerCount > 0 && !group.owner) group.ownerCount--;
  }

  // ---- map / unmap --------------------------------------------------------------------------

  /** `iommu_map` (see map.ts): throws ErrnoError and unwinds a partial map. */
  map(domain: IommuDomain, iova: Iova, paddr: PhysAddr, size: bigint, prot: number): void {
    iommuMap(domain, iova, paddr, size, prot);
  }

  /** `iommu_unmap`: bytes unmapped. */
  unmap(domain: IommuDomain, iova: Iova, size: bigint): bigint {
    return iommuUnmap(domain, iova, size);
  }

  /** `iommu_iova_to_phys`: 0n = not mapped. */
  iovaToPhys(domain: IommuDomain, iova: Iova): PhysAddr {
    return iommuIovaToPhys(domain, iova);
  }

  // ---- reserved regions and capabilities ----------------------------------------------------

  /** `iommu_get_resv_regions`: the driver's list for one device (empty for unprobed devices). */
  getResvRegions(dev: Device): ResvRegion[] {
    if (!dev.iommu) return [];
    return [...dev.iommu.ops.getResvRegions(dev)];
  }

  /** `iommu_get_group_resv_regions`: all member devices' regions, sorted and merged as Linux 6.1. */
  getGroupResvRegions(group: IommuGroup): ResvRegion[] {
    let list: ResvRegion[] = [];
    for (const dev of group.devices) {
      if (!dev.iommu) break;
      list = insertResvRegions(list, dev.iommu.ops.getResvRegions(dev));
    }
    return list;
  }

  /** `device_iommu_capable`: false for devices without an IOMMU. */
  capable(dev: Device, cap: IommuCap): boolean {
    if (!dev.iommu) return false;
    return dev.iommu.ops.capable(dev, cap);
  }

  /**
   * What VFIO type1 6.1 checks before allowing a group without `allow_unsafe_interrupts`:
   * the platform's MSI controller isolates, or any device of the group has IOMMU_CAP_INTR_REMAP.
   */
  groupHasIsolatedMsi(group: IommuGroup): boolean {
    if (this.msiRemap) return true;
    return group.devices.some((d) => this.capable(d, "INTR_REMAP"));
  }

  // ---- internals ----------------------------------------------------------------------------

  private allocGroupId(): number {
    let id = 0;
    while (this.groupsById.has(id)) id++;
    return id;
  }

  private releaseGroup(group: IommuGroup): void {
    if (this.groupsById.get(group.id) !== group) return;
    this.groupsById.delete(group.id);
    const key = this.groupKeys.get(group);
    if (key !== undefined) this.groupsByKey.get(group.ops)?.delete(key);
    this.groupKeys.delete(group);
    for (const d of [group.defaultDomain, group.blockingDomain]) {
      if (d && !d.freed) this.freeDriverDomain(d);
    }
    group.defaultDomain = null;
    group.blockingDomain = null;
    group.domain = null;
  }

  private tryDomainAlloc(ops: IommuOps, type: DomainType): IommuDomain | null {
    let domain: IommuDomain | null = null;
    const ctx: DomainAllocContext = {
      reportFault: (dev, iova, flags) => (domain ? reportIommuFault(domain, dev, iova, flags) : -ERRNO.ENOSYS),
    };
    const drv = ops.domainAlloc(type, ctx);
    if (!drv) return null;
    const dom = new IommuDomain(this.nextDomainId++, type, ops, drv);
    if (this.onDomainAlloc) {
      try {
        this.onDomainAlloc(dom);
      } catch (e) {
        this.freeDriverDomain(dom);
        if (!isErrno(e)) throw e;
        return null;
      }
    }
    domain = dom;
    return dom;
  }

  private freeDriverDomain(domain: IommuDomain): void {
    domain.freed = true;
    domain.driver.free();
  }

  /** `__iommu_group_set_core_domain`. */
  private setCoreDomain(group: IommuGroup): void {
    const target = group.owner ? group.blockingDomain : group.defaultDomain;
    if (target) this.setGroupDomain(group, target);
    else group.domain = null;
  }

  /**
   * `__iommu_group_set_domain`: attach every device to `domain`; on a failure put the devices
   * already switched back on the previous domain (attaching an attached domain cannot fail).
   */
  private setGroupDomain(group: IommuGroup, domain: IommuDomain): void {
    const op = "__iommu_attach_device";
    if (group.domain === domain) return;
    if (domain.freed) {
      throw new ErrnoError("EINVAL", op, `domain ${domain.id} was freed`, { domain: domain.id });
    }
    if (domain.ops !== group.ops) {
      throw new ErrnoError("EINVAL", op, `domain of ${domain.ops.name} cannot serve a ${group.ops.name} group`, {
        domain: domain.id,
        group: group.id,
      });
    }
    const done: Device[] = [];
    try {
      for (const dev of group.devices) {
        domain.driver.attachDev(dev);
        done.push(dev);
      }
    } catch (e) {
      const prev = group.domain;
      if (prev) for (const dev of done) prev.driver.attachDev(dev);
      throw e;
    }
    group.domain = domain;
  }
}
