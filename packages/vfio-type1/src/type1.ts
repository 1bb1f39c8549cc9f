/**
 * The VFIO type1 IOMMU backend (drivers/vfio/vfio_iommu_type1.c, Linux 6.1): one per container after
 * VFIO_SET_IOMMU. Its state (`struct vfio_iommu`, state.ts) is private; the kernel functions live in files
 * named for them: attach.ts (attach/detach/release), map.ts (`vfio_dma_do_map`), unmap.ts
 * (`vfio_dma_do_unmap`), dirty.ts (dirty bitmaps), get-info.ts (`vfio_iommu_type1_get_info`). The typed
 * methods throw ErrnoError with `op` = the kernel function whose rule failed; the byte ioctls
 * (type1-ioctl.ts) turn those into negative errnos. Reference §6.
 */
import { ErrnoError, type IommuGroup, minPageSize } from "@iommu/core";
import {
  VFIO_DMA_CC_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  type VfioBitmap,
} from "@vfio/uapi";
import { attachGroup, detachGroup, release } from "./attach.js";
import { dirtyGetBitmap, dirtyStart, dirtyStop } from "./dirty.js";
import { getInfo, getInfoIoctl, reservedRanges, type Type1Info } from "./get-info.js";
import type { IovaRange } from "./iova-list.js";
import { TYPE1_KERNEL_DEFAULTS, type Type1KernelOptions } from "./kernel-options.js";
import { type MapDmaRequest, mapDma } from "./map.js";
import type { Process } from "./process.js";
import { type Type1Env, VfioIommu } from "./state.js";
import { type UnmapDmaRequest, unmapDma } from "./unmap.js";

/** Smallest page of a bitmap (`1 << __ffs(bitmap)`): core's helper, re-exported for this package's users. */
export { minPageSize };

/**
 * `vfio_iommu_type1_check_extension` (no backend instance: `iommu` NULL in Linux). UPDATE_VADDR needs a backend
 * with no emulated (mdev) groups — this model has none — so a container without a backend (no SET_IOMMU yet, or
 * its last group left) answers 0. (6.1 stable carries "vfio/type1: exclude mdevs from VFIO_UPDATE_VADDR"; a real
 * 6.1.192 kernel answers 0 there.) Without `kernel.nestingIommu` (6.13+) VFIO_TYPE1_NESTING_IOMMU answers 0.
 */
export function type1CheckExtension(
  backend: VfioIommuType1 | null,
  ext: number,
  kernel: Type1KernelOptions = TYPE1_KERNEL_DEFAULTS,
): number {
  switch (ext) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
      return 1;
    case VFIO_TYPE1_NESTING_IOMMU:
      return kernel.nestingIommu ? 1 : 0;
    case VFIO_UPDATE_VADDR:
      return backend ? 1 : 0;
    case VFIO_DMA_CC_IOMMU:
      return backend ? backend.domainsEnforceCacheCoherency() : 0;
    default:
      return 0;
  }
}

export class VfioIommuType1 {
  /** `struct vfio_iommu`: only this package's type1 files see it (tests: `@vfio/type1/testing`). */
  private readonly state: VfioIommu;

  /** `vfio_iommu_type1_open(type)`: EINVAL for a type this backend does not implement. */
  constructor(env: Type1Env, type: number) {
    if (type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU && type !== VFIO_TYPE1_NESTING_IOMMU) {
      throw new ErrnoError("EINVAL", "vfio_iommu_type1_open", "not a type1 IOMMU type", { type });
    }
    this.state = new VfioIommu(env, type !== VFIO_TYPE1_IOMMU, type === VFIO_TYPE1_NESTING_IOMMU);
  }

  /** Opened as type1v2 (or nesting): v2 unmap rules, dirty tracking. */
  get v2(): boolean {
    return this.state.v2;
  }

  get nesting(): boolean {
    return this.state.nesting;
  }

  get process(): Process {
    return this.state.process;
  }

  /** The kernel's type1 rules this backend follows (frozen). */
  get kernel(): Type1KernelOptions {
    return this.state.env.kernel;
  }

  /** `vfio_domains_have_enforce_cache_coherency` as CHECK_EXTENSION(VFIO_DMA_CC_IOMMU) answers it. */
  domainsEnforceCacheCoherency(): number {
    return this.state.domains.every((d) => d.enforceCacheCoherency) ? 1 : 0;
  }

  /** `vfio_iommu_type1_attach_group` */
  attachGroup(group: IommuGroup): void {
    attachGroup(this.state, group);
  }

  /** `vfio_iommu_type1_detach_group` */
  detachGroup(group: IommuGroup): void {
    detachGroup(this.state, group);
  }

  /** `vfio_iommu_type1_release`: the container let go of the backend. */
  release(): void {
    release(this.state);
  }

  /** `vfio_iommu_type1_map_dma` + `vfio_dma_do_map`. */
  mapDma(req: MapDmaRequest): void {
    mapDma(this.state, req);
  }

  /** `vfio_dma_do_unmap`: returns the bytes unmapped. */
  unmapDma(req: UnmapDmaRequest): bigint {
    return unmapDma(this.state, req);
  }

  /** VFIO_IOMMU_DIRTY_PAGES_FLAG_START */
  dirtyStart(): void {
    dirtyStart(this.state);
  }

  /** VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP */
  dirtyStop(): void {
    dirtyStop(this.state);
  }

  /** VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP after the ioctl-level checks. */
  dirtyGetBitmap(iova: bigint, size: bigint, bitmap: VfioBitmap): void {
    dirtyGetBitmap(this.state, iova, size, bitmap);
  }

  /** `vfio_iommu_type1_get_info` minus the copies. */
  getInfo(): Type1Info {
    return getInfo(this.state);
  }

  /** VFIO_IOMMU_GET_INFO on the caller's bytes: 0 or a negative errno. */
  getInfoIoctl(arg: Uint8Array | number | bigint): number {
    return getInfoIoctl(this.state, arg);
  }

  /** The seed's view: every reserved range of the attached groups kept out of the IOVA list. */
  reservedRanges(): IovaRange[] {
    return reservedRanges(this.state);
  }
}
