/**
 * VFIO's iommufd side (drivers/vfio/{group.c,device_cdev.c,iommufd.c} in 6.12) and the module set that
 * decides which doors exist: `debian` (as Debian ships 6.12: no /dev/iommu, no device cdev), `iommufd`
 * (CONFIG_IOMMUFD + CONFIG_VFIO_DEVICE_CDEV; vfio's own container still serves /dev/vfio/vfio) and
 * `iommufd-compat` (/dev/vfio/vfio is iommufd's compat container). The iommufd objects themselves are
 * `@iommu/iommufd`'s; this file plays the calls VFIO makes into it: a group joining an iommufd (bind and
 * compat-IOAS attach at GET_DEVICE_FD), and the device cdev's BIND/ATTACH/DETACH.
 */
import { ErrnoError, type Iommu } from "@iommu/core";
import { IommufdCtx, type IommufdDevice, type UserMemory } from "@iommu/iommufd";
import type { Vfio } from "@vfio/type1";
import type { EduDevice } from "../devices/edu.js";
import type { DeviceAccessGate, VfioPciDevice, VfioPciHost } from "./vfio-pci.js";

export type Modset = "debian" | "iommufd" | "iommufd-compat";

export const MODSETS: readonly Modset[] = ["debian", "iommufd", "iommufd-compat"];

/** One open /dev/vfio/devices/vfioN (`struct vfio_device_file` of the cdev path). */
export class VfioCdev {
  /** The iommufd it is bound to (`df->iommufd`), null before BIND_IOMMUFD. */
  ctx: IommufdCtx | null = null;
  idev: IommufdDevice | null = null;
  /** The vfio-pci device opened at bind (`vfio_df_open`). */
  h: VfioPciDevice | null = null;
  /** `vdev->iommufd_attached`. */
  attached = false;

  constructor(
    readonly device: EduDevice,
    readonly groupId: number,
  ) {}

  /** `df->access_granted`: device ioctls, reads and mmaps answer EINVAL until bind. */
  get bound(): boolean {
    return this.h !== null;
  }
}

/** A device opened through a group that uses an iommufd (`df->iommufd` of the group path). */
interface GroupPathDevice {
  readonly ctx: IommufdCtx;
  readonly idev: IommufdDevice;
  readonly h: VfioPciDevice;
  /** `vfio_iommufd_compat_attach_ioas` attached it (the compat IOAS existed). */
  attached: boolean;
}

export interface VfioIommufdOptions {
  readonly modset: Modset;
  readonly iommu: Iommu;
  readonly vfio: Vfio;
  readonly devices: readonly EduDevice[];
  readonly groupIdOf: (dev: EduDevice) => number;
  /** vfio-pci (built after this object: its gate comes from here). */
  readonly vfioPci: () => VfioPciHost;
}

export class VfioIommufd {
  readonly modset: Modset;
  /** `group->iommufd` of each VFIO group that joined one. */
  private readonly groupCtx = new Map<number, IommufdCtx>();
  /** Group-path devices over an iommufd, by device name. */
  private readonly groupPath = new Map<string, GroupPathDevice>();
  /** Bound cdevs, by device name (`group->cdev_device_open_cnt` is the count per group). */
  private readonly cdevs = new Map<string, VfioCdev>();
  /** A device open on an iommufd path is under way: vfio-pci's gate lets it through. */
  private opening: number | null = null;

  constructor(private readonly opts: VfioIommufdOptions) {
    this.modset = opts.modset;
  }

  /** /dev/iommu and /dev/vfio/devices/ exist (CONFIG_IOMMUFD, CONFIG_VFIO_DEVICE_CDEV). */
  get hasIommufd(): boolean {
    return this.modset !== "debian";
  }

  /** /dev/vfio/vfio is iommufd's compat container (CONFIG_IOMMUFD_VFIO_CONTAINER). */
  get compatContainer(): boolean {
    return this.modset === "iommufd-compat";
  }

  /** open("/dev/iommu") (or /dev/vfio/vfio under iommufd-compat, `vfioCompat`) by a process. */
  openIommufd(mm: UserMemory, vfioCompat: boolean): IommufdCtx {
    if (!this.hasIommufd) throw new ErrnoError("ENOENT", "open", "no /dev/iommu without CONFIG_IOMMUFD", {});
    return new IommufdCtx({
      iommu: this.opts.iommu,
      mm,
      allowUnsafeInterrupts: this.opts.vfio.params.allowUnsafeInterrupts,
      vfioCompat,
    });
  }

  /** `vfioN` of a device: vfio devices are numbered in registration (probe) order. */
  cdevIndex(dev: EduDevice): number {
    return this.opts.devices.indexOf(dev);
  }

  /** The device behind /dev/vfio/devices/vfioN, if the cdev exists. */
  cdevDevice(index: number): EduDevice | undefined {
    return this.hasIommufd ? this.opts.devices[index] : undefined;
  }

  // ---- a group with an iommufd as its "container" (group.c) --------------------------------------

  /** `vfio_group_has_iommu` through an iommufd. */
  linked(groupId: number): boolean {
    return this.groupCtx.has(groupId);
  }

  /**
   * VFIO_GROUP_SET_CONTAINER with an iommufd file: EINVAL when the group already has a container or an
   * iommufd; the compat IOAS is made (`iommufd_vfio_compat_ioas_create`), the group holds the file.
   */
  groupSetIommufd(groupId: number, ctx: IommufdCtx): void {
    const g = this.opts.vfio.group(groupId);
    if (g?.container || this.linked(groupId)) {
      throw new ErrnoError("EINVAL", "vfio_group_ioctl_set_container", "group already has a container", {
        groupId,
      });
    }
    ctx.vfioCompatIoasCreate();
    ctx.get();
    this.groupCtx.set(groupId, ctx);
  }

  /** VFIO_GROUP_UNSET_CONTAINER of a group on an iommufd: drops the file, 0 even with an open device. */
  groupUnset(groupId: number): void {
    const ctx = this.groupCtx.get(groupId);
    if (!ctx) return;
    this.groupCtx.delete(groupId);
    ctx.put();
  }

  /**
   * VFIO_GROUP_GET_DEVICE_FD on a group using an iommufd (`vfio_df_group_open`): bind (DMA ownership),
   * vfio-pci's open_device, then attach to the compat IOAS (ENODEV-free: none yet means no attach). A
   * failed attach closes the device again and unbinds.
   */
  groupOpenDevice(groupId: number, name: string): VfioPciDevice {
    const ctx = this.groupCtx.get(groupId)!;
    const pci = this.opts.vfioPci();
    const dev = this.opts.devices.find((d) => d.name === name && this.opts.groupIdOf(d) === groupId);
    if (!dev) {
      throw new ErrnoError("ENODEV", "vfio_device_get_from_name", "no such device in the group", { groupId, name });
    }
    if (pci.handle(name)) throw new ErrnoError("EBUSY", "vfio_pci_core_open_device", "device already open", { name });
    const idev = ctx.bindDevice(dev);
    let h: VfioPciDevice;
    try {
      h = this.openThroughGate(groupId, name);
    } catch (e) {
      ctx.unbindDevice(idev);
      throw e;
    }
    const rec: GroupPathDevice = { ctx, idev, h, attached: false };
    this.groupPath.set(name, rec);
    if (ctx.vfioIoas) {
      try {
        ctx.attachDevice(idev, ctx.vfioIoas.id);
        rec.attached = true;
      } catch (e) {
        h.close();
        throw e;
      }
    }
    return h;
  }

  // ---- the device cdev (device_cdev.c, iommufd.c) ------------------------------------------------

  /** `vfio_device_block_group` fails while the group file is open; the group cannot be opened while bound. */
  groupBlocked(groupId: number): boolean {
    return [...this.cdevs.values()].some((c) => c.groupId === groupId);
  }

  /**
   * VFIO_DEVICE_BIND_IOMMUFD after its argument checks: EBUSY while the group file is open, EINVAL when
   * already bound or the device is open (the cdev path allows one opener), then bind and vfio-pci's
   * open_device. Returns the device id.
   */
  cdevBind(c: VfioCdev, ctxOf: () => IommufdCtx): number {
    const op = "vfio_df_ioctl_bind_iommufd";
    if (this.opts.vfio.group(c.groupId)) {
      throw new ErrnoError("EBUSY", "vfio_device_block_group", "the group file is open", { groupId: c.groupId });
    }
    if (c.bound) throw new ErrnoError("EINVAL", op, "already bound", {});
    const ctx = ctxOf();
    const pci = this.opts.vfioPci();
    if (pci.handle(c.device.name)) throw new ErrnoError("EINVAL", "vfio_df_open", "device already open", {});
    const idev = ctx.bindDevice(c.device);
    try {
      c.h = this.openThroughGate(c.groupId, c.device.name);
    } catch (e) {
      ctx.unbindDevice(idev);
      throw e;
    }
    c.ctx = ctx;
    c.idev = idev;
    this.cdevs.set(c.device.name, c);
    return idev.id;
  }

  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT (`vfio_iommufd_physical_attach_ioas`): attach, or replace once attached. */
  cdevAttach(c: VfioCdev, ptId: number): number {
    const hwpt = c.attached ? c.ctx!.replaceDevice(c.idev!, ptId) : c.ctx!.attachDevice(c.idev!, ptId);
    c.attached = true;
    return hwpt;
  }

  /** VFIO_DEVICE_DETACH_IOMMUFD_PT: nothing when not attached. */
  cdevDetach(c: VfioCdev): void {
    if (!c.attached) return;
    c.ctx!.detachDevice(c.idev!);
    c.attached = false;
  }

  /** close(2) of the cdev: vfio-pci's close_device, then unbind (the group is unblocked). */
  cdevClose(c: VfioCdev): void {
    c.h?.close();
  }

  // ---- vfio-pci's gate ---------------------------------------------------------------------------

  /**
   * The gate vfio-pci opens devices through: type1's container users, except for the iommufd paths,
   * which bind before the open and unbind after vfio-pci's close (`vfio_df_device_last_close`).
   */
  gate(inner: DeviceAccessGate): DeviceAccessGate {
    return {
      get: (g) => (this.opening === g ? 0 : inner.get(g)),
      put: (g) => {
        if (!this.releaseClosed(g)) inner.put(g);
      },
    };
  }

  private openThroughGate(groupId: number, name: string): VfioPciDevice {
    this.opening = groupId;
    try {
      return this.opts.vfioPci().openDevice(groupId, name);
    } finally {
      this.opening = null;
    }
  }

  /** Unbinds the iommufd-path devices of a group whose vfio-pci handle just closed; false if none. */
  private releaseClosed(groupId: number): boolean {
    for (const [name, rec] of this.groupPath) {
      if (rec.h.groupId !== groupId || rec.h.isOpen) continue;
      this.groupPath.delete(name);
      rec.ctx.unbindDevice(rec.idev);
      return true;
    }
    for (const [name, c] of this.cdevs) {
      if (c.groupId !== groupId || c.h?.isOpen) continue;
      this.cdevs.delete(name);
      c.ctx!.unbindDevice(c.idev!);
      c.attached = false;
      return true;
    }
    return false;
  }
}
