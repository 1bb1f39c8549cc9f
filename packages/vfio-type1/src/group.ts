/**
 * A VFIO group: an open /dev/vfio/N for IOMMU group N (drivers/vfio/vfio_main.c + container.c, 6.1).
 * Joining a container claims the group's DMA ownership (the core parks it on its blocking domain) and, once
 * the container has a backend, attaches it there. Open device fds count as container users: while one is
 * open the group cannot leave (EBUSY).
 */
import { ERRNO, ErrnoError, type Iommu, type IommuGroup } from "@iommu/core";
import {
  GROUP_STATUS_SIZE,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  view,
} from "@vfio/uapi";
import type { Container } from "./container.js";
import { errnoOf, type IoctlArg } from "./type1-ioctl.js";

/** What a group needs from its host (the Vfio object). */
export interface GroupHost {
  readonly iommu: Iommu;
  /** The open file behind an fd (EBADF when none). */
  fileOf(fd: number): unknown;
  closeFile(fd: number): void;
  /** The group file is released (`vfio_group_fops_release` ran): /dev/vfio/N can be opened again. */
  released(): void;
}

export class VfioGroup {
  container: Container | null = null;
  /** `group->container_users`: 1 for the container link, +1 per open device. */
  containerUsers = 0;
  closed = false;

  constructor(
    private readonly host: GroupHost,
    readonly fd: number,
    readonly iommuGroup: IommuGroup,
  ) {}

  get id(): number {
    return this.iommuGroup.id;
  }

  /** The group's ioctls; returns ≥ 0 or a negative errno (ENOTTY for unknown requests). */
  ioctl(request: number, arg: IoctlArg = 0): number {
    if (this.closed) return -ERRNO.EBADF;
    switch (request) {
      case VFIO_GROUP_GET_STATUS: {
        if (!(arg instanceof Uint8Array) || arg.length < GROUP_STATUS_SIZE) return -ERRNO.EFAULT;
        const v = view(arg);
        if (v.getUint32(0, true) < GROUP_STATUS_SIZE) return -ERRNO.EINVAL;
        v.setUint32(4, this.status(), true);
        return 0;
      }
      case VFIO_GROUP_SET_CONTAINER: {
        if (!(arg instanceof Uint8Array) || arg.length < 4) return -ERRNO.EFAULT;
        const fd = view(arg).getInt32(0, true);
        return errnoOf(() => {
          const file = fd < 0 ? undefined : this.host.fileOf(fd);
          if (file === undefined) throw new ErrnoError("EBADF", "vfio_group_ioctl_set_container", "bad fd", { fd });
          this.setContainer(file as Container, true);
          return 0;
        });
      }
      case VFIO_GROUP_UNSET_CONTAINER:
        return errnoOf(() => {
          this.unsetContainer();
          return 0;
        });
      default:
        return -ERRNO.ENOTTY;
    }
  }

  /** VFIO_GROUP_GET_STATUS flags: VIABLE (nobody else owns its DMA) and CONTAINER_SET. */
  status(): number {
    if (this.container) return VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET;
    return this.iommuGroup.ownerCount === 0 ? VFIO_GROUP_FLAGS_VIABLE : 0;
  }

  /**
   * VFIO_GROUP_SET_CONTAINER (`vfio_container_attach_group`): EINVAL if already in a container (or `file`
   * is not a container); EPERM/EBUSY from claiming DMA ownership; the backend's attach error.
   */
  setContainer(container: Container, fromFd = false): void {
    const op = "vfio_group_ioctl_set_container";
    if (this.container || this.containerUsers > 0) {
      throw new ErrnoError("EINVAL", op, "group already in a container", { group: this.id });
    }
    if (fromFd && !isContainer(container)) throw new ErrnoError("EINVAL", op, "fd is not a container", {});
    const { iommu } = this.host;
    iommu.claimDmaOwner(this.iommuGroup, this);
    if (container.backend) {
      try {
        container.backend.attachGroup(this.iommuGroup);
      } catch (e) {
        iommu.releaseDmaOwner(this.iommuGroup);
        throw e;
      }
    }
    this.container = container;
    this.containerUsers = 1;
    container.groups.push(this);
  }

  /** VFIO_GROUP_UNSET_CONTAINER: EINVAL when not in one, EBUSY while a device is open. */
  unsetContainer(): void {
    const op = "vfio_group_ioctl_unset_container";
    if (!this.container) throw new ErrnoError("EINVAL", op, "group is not in a container", { group: this.id });
    if (this.containerUsers !== 1) {
      throw new ErrnoError("EBUSY", op, "a device of the group is open", { users: this.containerUsers });
    }
    this.detachContainer();
  }

  /** `vfio_device_assign_container` check: 0, or -EINVAL without a container that has a backend. */
  deviceAccess(): number {
    return this.container?.backend && this.containerUsers > 0 ? 0 : -ERRNO.EINVAL;
  }

  /** A device fd of this group was opened (VFIO_GROUP_GET_DEVICE_FD succeeded): EINVAL as `deviceAccess`. */
  deviceGet(): void {
    if (this.deviceAccess() !== 0) {
      throw new ErrnoError("EINVAL", "vfio_device_assign_container", "group has no container with an IOMMU", {
        group: this.id,
      });
    }
    this.containerUsers++;
  }

  /** A device fd of this group was closed (the last one lets a closed group file go). */
  devicePut(): void {
    if (this.containerUsers > 1) this.containerUsers--;
    if (this.closed && this.containerUsers === 1 && this.container) {
      this.detachContainer();
      this.host.released();
    }
  }

  /**
   * close(2). Device fds hold a reference on the group file, so `vfio_group_fops_release` (which takes the
   * group out of its container) runs only once no device is open: until then the group stays attached.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.closeFile(this.fd);
    if (this.container && this.containerUsers > 1) return;
    if (this.container) this.detachContainer();
    this.host.released();
  }

  /** `vfio_group_detach_container` */
  private detachContainer(): void {
    const c = this.container!;
    c.backend?.detachGroup(this.iommuGroup);
    this.host.iommu.releaseDmaOwner(this.iommuGroup);
    this.container = null;
    this.containerUsers = 0;
    c.groupLeft(this);
  }
}

function isContainer(x: unknown): boolean {
  return typeof x === "object" && x !== null && "groupLeft" in x && "process" in x;
}
