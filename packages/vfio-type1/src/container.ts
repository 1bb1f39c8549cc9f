/**
 * A VFIO container: an open /dev/vfio/vfio (drivers/vfio/container.c, 6.1). Unprivileged until a group
 * joins it; then VFIO_SET_IOMMU picks the backend (type1 is the only IOMMU driver registered here, as on a
 * host without spapr and without `enable_unsafe_noiommu_mode`) and hands it every group. Requests it does
 * not handle go to the backend, or fail with EINVAL while there is none.
 */
import { ERRNO, ErrnoError, errnoName } from "@iommu/core";
import {
  decodeIommuInfo,
  INFO_SIZE,
  type IommuType1Info,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_SET_IOMMU,
  type VfioBitmap,
  view,
} from "@vfio/uapi";
import type { VfioGroup } from "./group.js";
import type { Type1KernelOptions } from "./kernel-options.js";
import type { MapDmaRequest } from "./map.js";
import type { Process } from "./process.js";
import type { Type1Env } from "./state.js";
import { type1CheckExtension, VfioIommuType1 } from "./type1.js";
import { errnoOf, type IoctlArg, type1Ioctl } from "./type1-ioctl.js";
import type { UnmapDmaRequest } from "./unmap.js";

/** GET_INFO decoded for the typed API (`@vfio/uapi`'s one decoder of these bytes). */
export type ContainerInfo = IommuType1Info;

/** What a container needs from its host (the Vfio object). */
export interface ContainerHost {
  /** Environment for a new type1 backend (module params are read now: dma_entry_limit at open). */
  backendEnv(process: Process): Type1Env;
  /** The kernel's type1 rules (CHECK_EXTENSION answers them before any backend exists). */
  readonly kernel: Type1KernelOptions;
  closeFile(fd: number): void;
}

export class Container {
  readonly groups: VfioGroup[] = [];
  private iommuBackend: VfioIommuType1 | null = null;
  /** The fd is closed; the container lives on while groups hold it. */
  closed = false;

  constructor(
    private readonly host: ContainerHost,
    readonly fd: number,
    /** The process that opened /dev/vfio/vfio and issues its ioctls. */
    readonly process: Process,
  ) {}

  /** The IOMMU backend VFIO_SET_IOMMU chose; null before it and after the last group left. */
  get backend(): VfioIommuType1 | null {
    return this.iommuBackend;
  }

  /** `vfio_fops_unl_ioctl`: returns ≥ 0 or a negative errno; writes back into `arg` what Linux copies back. */
  ioctl(request: number, arg: IoctlArg = 0): number {
    if (this.closed) return -ERRNO.EBADF;
    switch (request) {
      case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
      case VFIO_CHECK_EXTENSION:
        return this.checkExtension(intArg(arg));
      case VFIO_SET_IOMMU:
        return errnoOf(() => {
          this.setIommu(intArg(arg));
          return 0;
        });
      default:
        // No backend: the generic -EINVAL; a backend answers (ENOTTY for what it does not know).
        return this.backend ? type1Ioctl(this.backend, request, arg) : -ERRNO.EINVAL;
    }
  }

  // ---- typed API (throws ErrnoError) -----------------------------------------------------------

  /** VFIO_GET_API_VERSION */
  apiVersion(): number {
    return VFIO_API_VERSION;
  }

  /** `vfio_container_ioctl_check_extension`: the backend's answer, or type1's with no instance. */
  checkExtension(ext: number): number {
    return type1CheckExtension(this.backend, ext, this.host.kernel);
  }

  /**
   * `vfio_ioctl_set_iommu`: EINVAL without a group or with a backend already set; ENODEV when no driver
   * claims `type`; EINVAL from type1 for an extension that is not an IOMMU type (e.g. UNMAP_ALL); else an
   * attach error of a group (every group attached before it is detached again).
   */
  setIommu(type: number): void {
    const op = "vfio_ioctl_set_iommu";
    if (this.groups.length === 0 || this.backend) {
      throw new ErrnoError("EINVAL", op, this.backend ? "IOMMU already set" : "no group in the container", { type });
    }
    if (type1CheckExtension(null, type, this.host.kernel) <= 0) {
      throw new ErrnoError("ENODEV", op, "no IOMMU driver supports this type", { type });
    }
    const backend = new VfioIommuType1(this.host.backendEnv(this.process), type);
    const done: VfioGroup[] = [];
    try {
      for (const g of this.groups) {
        backend.attachGroup(g.iommuGroup);
        done.push(g);
      }
    } catch (e) {
      for (const g of done.reverse()) backend.detachGroup(g.iommuGroup);
      backend.release();
      throw e;
    }
    this.iommuBackend = backend;
  }

  /** VFIO_IOMMU_GET_INFO, decoded. */
  getInfo(): ContainerInfo {
    const buf = new Uint8Array(INFO_SIZE);
    view(buf).setUint32(0, INFO_SIZE, true);
    this.check(this.ioctl(VFIO_IOMMU_GET_INFO, buf), "vfio_iommu_type1_get_info");
    const need = view(buf).getUint32(0, true);
    const full = new Uint8Array(Math.max(need, INFO_SIZE));
    view(full).setUint32(0, full.length, true);
    this.check(this.ioctl(VFIO_IOMMU_GET_INFO, full), "vfio_iommu_type1_get_info");
    return decodeInfo(full);
  }

  /** VFIO_IOMMU_MAP_DMA (flags VFIO_DMA_MAP_FLAG_*). */
  mapDma(req: MapDmaRequest): void {
    this.need().mapDma(req);
  }

  /** VFIO_IOMMU_UNMAP_DMA: bytes unmapped. */
  unmapDma(req: UnmapDmaRequest): bigint {
    return this.need().unmapDma(req);
  }

  /** VFIO_IOMMU_DIRTY_PAGES START / STOP / GET_BITMAP. */
  dirtyStart(): void {
    this.needV2().dirtyStart();
  }

  dirtyStop(): void {
    this.needV2().dirtyStop();
  }

  dirtyGetBitmap(iova: bigint, size: bigint, bitmap: VfioBitmap): void {
    this.needV2().dirtyGetBitmap(iova, size, bitmap);
  }

  /** close(2) of the container fd. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.closeFile(this.fd);
  }

  /** Called by a group leaving: the last group takes the backend with it (the container is deprivileged). */
  groupLeft(group: VfioGroup): void {
    const i = this.groups.indexOf(group);
    if (i >= 0) this.groups.splice(i, 1);
    if (this.backend && this.groups.length === 0) {
      this.backend.release();
      this.iommuBackend = null;
    }
  }

  private need(): VfioIommuType1 {
    if (!this.backend) throw new ErrnoError("EINVAL", "vfio_fops_unl_ioctl", "no IOMMU backend set", {});
    return this.backend;
  }

  private needV2(): VfioIommuType1 {
    const b = this.need();
    if (!b.v2) throw new ErrnoError("EACCES", "vfio_iommu_type1_dirty_pages", "dirty tracking needs type1v2", {});
    return b;
  }

  private check(ret: number, op: string): void {
    if (ret < 0) throw new ErrnoError(errnoName(ret) ?? "EINVAL", op, "ioctl failed", { ret });
  }
}

/** An integer ioctl argument (`unsigned long arg`). */
function intArg(arg: IoctlArg): number {
  if (typeof arg === "number") return arg;
  if (typeof arg === "bigint") return arg >= 0n && arg < 1n << 32n ? Number(arg) : -1;
  return -1;
}

/** Decode GET_INFO bytes (a buffer whose argsz covered the whole chain). */
export const decodeInfo = decodeIommuInfo;
