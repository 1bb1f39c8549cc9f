/**
 * A VFIO container: an open /dev/vfio/vfio (drivers/vfio/container.c, 6.1). Unprivileged until a group
 * joins it; then VFIO_SET_IOMMU picks the backend (type1 is the only IOMMU driver registered here, as on a
 * host without spapr and without `enable_unsafe_noiommu_mode`) and hands it every group. Requests it does
 * not handle go to the backend, or fail with EINVAL while there is none.
 */
import { ERRNO, ErrnoError, errnoName } from "@iommu/core";
import { walkCaps } from "./cap-chain.js";
import type { VfioGroup } from "./group.js";
import type { IovaRange } from "./iova-list.js";
import type { Type1KernelOptions } from "./kernel-options.js";
import type { MapDmaRequest } from "./map.js";
import type { Process } from "./process.js";
import type { Type1Env } from "./state.js";
import { type1CheckExtension, VfioIommuType1 } from "./type1.js";
import { errnoOf, type IoctlArg, type1Ioctl } from "./type1-ioctl.js";
import {
  CAP_IOVA_RANGE_BASE,
  INFO_SIZE,
  IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE,
  IOVA_RANGE_SIZE,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_SET_IOMMU,
  type VfioBitmap,
  view,
} from "./uapi.js";
import type { UnmapDmaRequest } from "./unmap.js";

/** GET_INFO decoded for the typed API. */
export interface ContainerInfo {
  readonly flags: number;
  readonly iovaPgsizes: bigint;
  /** MIGRATION cap: smallest page, max dirty bitmap bytes. */
  readonly migration: { readonly pgsizeBitmap: bigint; readonly maxDirtyBitmapSize: bigint; readonly flags: number };
  /** DMA_AVAIL cap. */
  readonly dmaAvail: number;
  /** IOVA_RANGE cap (empty when absent): the usable ranges, inclusive ends. */
  readonly iovaRanges: readonly IovaRange[];
  /** The seed's RESV_IOVA_RANGE caps (only with `seedResvCaps`). */
  readonly reservedRanges: readonly IovaRange[];
  /** The GET_INFO bytes (24 + chain) as the kernel writes them with a large enough argsz. */
  readonly raw: Uint8Array;
}

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
export function decodeInfo(buf: Uint8Array): ContainerInfo {
  const v = view(buf);
  const capOffset = v.getUint32(16, true);
  let migration = { pgsizeBitmap: 0n, maxDirtyBitmapSize: 0n, flags: 0 };
  let dmaAvail = 0;
  const iovaRanges: IovaRange[] = [];
  const reservedRanges: IovaRange[] = [];
  let end = INFO_SIZE;
  for (const h of walkCaps(buf, capOffset)) {
    const at = h.offset;
    if (h.id === VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
      migration = {
        flags: v.getUint32(at + 8, true),
        pgsizeBitmap: v.getBigUint64(at + 16, true),
        maxDirtyBitmapSize: v.getBigUint64(at + 24, true),
      };
      end = Math.max(end, at + 32);
    } else if (h.id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      dmaAvail = v.getUint32(at + 8, true);
      end = Math.max(end, at + 12);
    } else if (h.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      const n = v.getUint32(at + 8, true);
      for (let i = 0; i < n; i++) {
        const o = at + CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * i;
        iovaRanges.push({ start: v.getBigUint64(o, true), end: v.getBigUint64(o + 8, true) });
      }
      end = Math.max(end, at + CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * n);
    } else if (h.id === IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE) {
      reservedRanges.push({ start: v.getBigUint64(at + 8, true), end: v.getBigUint64(at + 16, true) });
      end = Math.max(end, at + 24);
    }
  }
  return {
    flags: v.getUint32(4, true),
    iovaPgsizes: v.getBigUint64(8, true),
    migration,
    dmaAvail,
    iovaRanges,
    reservedRanges,
    raw: buf.slice(0, end),
  };
}
