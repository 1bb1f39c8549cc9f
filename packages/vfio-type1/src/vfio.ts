/**
 * The host's /dev/vfio: containers (/dev/vfio/vfio) and groups (/dev/vfio/N, one per IOMMU group of the
 * core), the fd table that VFIO_GROUP_SET_CONTAINER resolves, and vfio_iommu_type1's module parameters.
 */

import { getMsiCookie } from "@dma-iommu/msi-cookie";
import { ERRNO, ErrnoError, type Iommu, type IommuDomain } from "@iommu/core";
import { Container } from "./container.js";
import { VfioGroup } from "./group.js";
import { TYPE1_KERNEL_DEFAULTS, type Type1KernelOptions } from "./kernel-options.js";
import type { PageSource, Process } from "./process.js";
import type { Type1Env, Type1Params } from "./state.js";
import type { IoctlArg } from "./type1-ioctl.js";

export interface VfioOptions {
  readonly iommu: Iommu;
  /** vfio_iommu_type1 module parameters (defaults: false, false, 65535). */
  readonly params?: Partial<Type1Params>;
  /** The type1 rules that changed after Linux 6.1 (default: 6.1's answers). */
  readonly kernel?: Partial<Type1KernelOptions>;
  /** The seed's named option: GET_INFO adds one RESV_IOVA_RANGE cap (id 0x8001) per reserved range. */
  readonly seedResvCaps?: boolean;
  /** Kernel pages for type1's fine-grained-superpage probe (skipped without). */
  readonly kernelPages?: PageSource;
  /** `iommu_get_msi_cookie`; default @dma-iommu/msi-cookie's `getMsiCookie`. */
  readonly getMsiCookie?: (domain: IommuDomain, base: bigint) => void;
}

type File = Container | VfioGroup;

export class Vfio {
  readonly iommu: Iommu;
  /** Live module parameters (`/sys/module/vfio_iommu_type1/parameters/*`). */
  readonly params: Type1Params;
  readonly seedResvCaps: boolean;
  /** The kernel's type1 rules, fixed when the host is built. */
  readonly kernel: Type1KernelOptions;
  private readonly files = new Map<number, File>();
  private readonly openGroups = new Map<number, VfioGroup>();
  private readonly kernelPages: PageSource | undefined;
  private readonly msiCookie: (domain: IommuDomain, base: bigint) => void;

  constructor(opts: VfioOptions) {
    this.iommu = opts.iommu;
    this.params = {
      allowUnsafeInterrupts: opts.params?.allowUnsafeInterrupts ?? false,
      disableHugepages: opts.params?.disableHugepages ?? false,
      dmaEntryLimit: opts.params?.dmaEntryLimit ?? 65535,
    };
    this.seedResvCaps = opts.seedResvCaps ?? false;
    this.kernel = Object.freeze({ ...TYPE1_KERNEL_DEFAULTS, ...opts.kernel });
    this.kernelPages = opts.kernelPages;
    this.msiCookie = opts.getMsiCookie ?? ((d, b) => getMsiCookie(d, b));
  }

  /** open("/dev/vfio/vfio") by `process`. */
  openContainer(process: Process): Container {
    const fd = this.allocFd();
    const c = new Container(
      {
        backendEnv: (p) => this.backendEnv(p),
        kernel: this.kernel,
        closeFile: (n) => this.files.delete(n),
      },
      fd,
      process,
    );
    this.files.set(fd, c);
    return c;
  }

  /** open("/dev/vfio/N"): ENOENT for no such IOMMU group, EBUSY if it is already open. */
  openGroup(groupId: number): VfioGroup {
    const g = this.iommu.groupById(groupId);
    if (!g || g.devices.length === 0) {
      throw new ErrnoError("ENOENT", "vfio_group_fops_open", `no /dev/vfio/${groupId}`, { group: groupId });
    }
    if (this.openGroups.has(groupId)) {
      throw new ErrnoError("EBUSY", "vfio_group_fops_open", "group is already open", { group: groupId });
    }
    const fd = this.allocFd();
    const vg = new VfioGroup(
      {
        iommu: this.iommu,
        fileOf: (n) => this.files.get(n),
        closeFile: (n) => this.files.delete(n),
        released: () => this.openGroups.delete(groupId),
      },
      fd,
      g,
    );
    this.files.set(fd, vg);
    this.openGroups.set(groupId, vg);
    return vg;
  }

  /** The open file behind an fd. */
  fileOf(fd: number): Container | VfioGroup | undefined {
    return this.files.get(fd);
  }

  /** ioctl(2) on an fd: EBADF when it is not open. */
  ioctl(fd: number, request: number, arg: IoctlArg = 0): number {
    const f = this.files.get(fd);
    return f ? f.ioctl(request, arg) : -ERRNO.EBADF;
  }

  /** close(2) */
  close(fd: number): number {
    const f = this.files.get(fd);
    if (!f) return -ERRNO.EBADF;
    f.close();
    return 0;
  }

  /** The open group of an IOMMU group id. */
  group(groupId: number): VfioGroup | undefined {
    return this.openGroups.get(groupId);
  }

  /**
   * Gate for VFIO_GROUP_GET_DEVICE_FD (the demo's vfio-pci): 0 when the group is open, in a container and
   * the container has an IOMMU backend; else -EINVAL (6.1 `vfio_device_assign_container`).
   */
  deviceAccess(groupId: number): number {
    return this.openGroups.get(groupId)?.deviceAccess() ?? -ERRNO.EINVAL;
  }

  /** A device fd was opened: counts as a container user (UNSET_CONTAINER then fails with EBUSY). */
  deviceGet(groupId: number): number {
    const g = this.openGroups.get(groupId);
    if (!g) return -ERRNO.EINVAL;
    const r = g.deviceAccess();
    if (r === 0) g.deviceGet();
    return r;
  }

  /** A device fd was closed. */
  devicePut(groupId: number): void {
    this.openGroups.get(groupId)?.devicePut();
  }

  private backendEnv(process: Process): Type1Env {
    return {
      iommu: this.iommu,
      // dma_entry_limit is read once, at open; the others are read when used.
      params: liveParams(this.params),
      process,
      seedResvCaps: this.seedResvCaps,
      kernel: this.kernel,
      getMsiCookie: this.msiCookie,
      ...(this.kernelPages ? { kernelPages: this.kernelPages } : {}),
    };
  }

  /** Lowest free fd from 3 (0–2 are stdio). */
  private allocFd(): number {
    let fd = 3;
    while (this.files.has(fd)) fd++;
    return fd;
  }
}

/** A view of the params whose flags follow the live object while dma_entry_limit stays as read at open. */
function liveParams(p: Type1Params): Type1Params {
  const limit = p.dmaEntryLimit;
  return {
    get allowUnsafeInterrupts() {
      return p.allowUnsafeInterrupts;
    },
    get disableHugepages() {
      return p.disableHugepages;
    },
    dmaEntryLimit: limit,
  };
}
