/**
 * A process's file descriptor table as the simulated kernel sees it: what each number designates (a VFIO
 * container or group, a vfio-pci device, an eventfd, an open sysfs/procfs file, /dev/kmsg). Containers
 * and groups carry the number of `@vfio/type1`'s own table, which resolves VFIO_GROUP_SET_CONTAINER.
 */
import { ErrnoError } from "@iommu/core";
import type { IommufdCtx } from "@iommu/iommufd";
import type { EventFd } from "../kernel/eventfd.js";
import type { VfioCdev } from "../kernel/vfio-iommufd.js";
import type { VfioPciDevice } from "../kernel/vfio-pci.js";

export type FdEntry =
  | { readonly kind: "container"; readonly vfioFd: number }
  | { readonly kind: "group"; readonly vfioFd: number; readonly groupId: number }
  | { readonly kind: "device"; readonly h: VfioPciDevice; readonly groupId: number }
  | { readonly kind: "eventfd"; readonly e: EventFd }
  /** An iommufd file: /dev/iommu, or /dev/vfio/vfio under the iommufd-compat module set (`compat`). */
  | { readonly kind: "iommufd"; readonly ctx: IommufdCtx; readonly compat: boolean }
  /** /dev/vfio/devices/vfioN: a VFIO device file of the cdev path. */
  | { readonly kind: "cdev"; readonly c: VfioCdev }
  /** A regular file: its contents are rendered at open (sysfs's seq_file shows one snapshot per open). */
  | { readonly kind: "file"; readonly path: string; readonly data: Uint8Array; pos: number }
  /** /dev/kmsg: one record per read. */
  | { readonly kind: "kmsg"; seq: number };

export class FdTable {
  private readonly entries = new Map<number, FdEntry>();
  private next: number;

  /** Numbers the table picks itself start at `first` (the model process's numbers never collide with type1's). */
  constructor(first = 1000) {
    this.next = first;
  }

  get(fd: number): FdEntry | undefined {
    return this.entries.get(fd);
  }

  /** Installs `e` at `fd` (a number the caller owns, e.g. the client's placeholder descriptor). EBADF if taken. */
  install(fd: number, e: FdEntry): number {
    if (fd < 0 || this.entries.has(fd)) throw new ErrnoError("EBADF", "fd_install", "descriptor in use", { fd });
    this.entries.set(fd, e);
    return fd;
  }

  /** The next free number the table picks itself. */
  alloc(e: FdEntry): number {
    while (this.entries.has(this.next)) this.next++;
    return this.install(this.next++, e);
  }

  /** Removes and returns the entry (close(2)); undefined for a closed or never-open number. */
  take(fd: number): FdEntry | undefined {
    const e = this.entries.get(fd);
    this.entries.delete(fd);
    return e;
  }

  /** Every open number, lowest first (exit closes them in this order). */
  numbers(): number[] {
    return [...this.entries.keys()].sort((a, b) => a - b);
  }
}
