/**
 * `struct iommufd_ctx` (main.c, 6.12): one open `/dev/iommu` file — its object table, its rlimit
 * accounting mode, the groups its devices belong to, the compat IOAS VFIO uses, IOMMU_DESTROY,
 * IOMMU_OPTION's RLIMIT_MODE, and release at close. The typed API of every ioctl lives here; the byte
 * interface (`iommufd-ioctl.ts`) decodes into it.
 */
import { type Device, ErrnoError, type Iommu, type IommuGroup } from "@iommu/core";
import { IOMMU_HWPT_DATA_NONE } from "@vfio/uapi/iommufd";
import {
  deviceAttach,
  deviceBind,
  deviceDestroy,
  deviceDetach,
  deviceHwInfo,
  deviceReplace,
  deviceUnbind,
  type HwInfoAnswer,
  IommufdDevice,
  type IommufdGroup,
} from "./device.js";
import { HwptPaging, hwptPagingAlloc, hwptPagingDestroy } from "./hw-pagetable.js";
import type { IntervalNode, Span } from "./interval-tree.js";
import {
  Ioas,
  ioasAlloc,
  ioasAllowIovas,
  ioasCopy,
  ioasDestroy,
  ioasIovaRanges,
  ioasMap,
  ioasOptionHugePages,
  ioasUnmap,
  type MapFlags,
} from "./ioas.js";
import { ObjectTable } from "./object-table.js";
import type { UserMemory } from "./user-memory.js";

export interface IommufdOptions {
  /** The host's IOMMU subsystem. */
  readonly iommu: Iommu;
  /** The process that opened the file (`current->mm` of its ioctls). */
  readonly mm: UserMemory;
  /** Module parameter `allow_unsafe_interrupts` (default false). */
  readonly allowUnsafeInterrupts?: boolean;
  /** CAP_SYS_RESOURCE of the caller, needed to set the rlimit mode (default true: a root VMM). */
  readonly capSysResource?: boolean;
  /** Opened as `/dev/vfio/vfio` (the compat container): accounting starts in "mm" mode as VFIO's. */
  readonly vfioCompat?: boolean;
}

export class IommufdCtx {
  readonly iommu: Iommu;
  readonly mm: UserMemory;
  readonly objects = new ObjectTable();
  /** `ictx->groups`: per IOMMU group with a bound device. */
  readonly groups = new Map<IommuGroup, IommufdGroup>();
  /** `account_mode`: IOMMU_OPTION_RLIMIT_MODE 0 ("user") or 1 ("mm"). */
  accountMode: "user" | "mm";
  /** `vfio_ioas`: the IOAS VFIO's compat paths use. */
  vfioIoas: Ioas | null = null;
  readonly allowUnsafeInterrupts: boolean;
  capSysResource: boolean;
  /** Kernel log lines (dev_warn) produced on this file's behalf, oldest first. */
  readonly klog: string[] = [];
  /** The file was closed (the ctx lives on while bound devices hold it). */
  closed = false;
  /** `iommufd_fops_release` ran. */
  released = false;
  /** Kernel users holding the file besides its fd (`iommufd_ctx_get`). */
  private fileRefs = 0;

  constructor(opts: IommufdOptions) {
    this.iommu = opts.iommu;
    this.mm = opts.mm;
    this.allowUnsafeInterrupts = opts.allowUnsafeInterrupts ?? false;
    this.capSysResource = opts.capSysResource ?? true;
    this.accountMode = opts.vfioCompat ? "mm" : "user";
  }

  // ---- objects ------------------------------------------------------------------------------

  /** IOMMU_DESTROY: ENOENT for an unknown id, EBUSY while anything uses the object. */
  destroy(id: number): void {
    this.destroyObject(id);
  }

  /** `iommufd_object_remove` + the type's destroy. */
  destroyObject(id: number): void {
    const obj = this.objects.remove(id);
    if (this.vfioIoas === obj) this.vfioIoas = null;
    if (obj instanceof Ioas) ioasDestroy(obj);
    else if (obj instanceof HwptPaging) hwptPagingDestroy(this, obj);
    else if (obj instanceof IommufdDevice) deviceDestroy(this, obj);
  }

  /**
   * close(2) of the file. Bound devices and VFIO groups hold the file (`get`/`put`), so
   * `iommufd_fops_release` runs only once the file is closed and the last holder let go: then every
   * object goes, leaves first.
   */
  close(): void {
    this.closed = true;
    this.maybeRelease();
  }

  /** `iommufd_ctx_get`: a kernel user (a bound device, a VFIO group using this file as its container) holds the file. */
  get(): void {
    this.fileRefs++;
  }

  /** `iommufd_ctx_put`: the last put of a closed file releases it. */
  put(): void {
    this.fileRefs--;
    this.maybeRelease();
  }

  /** `iommufd_fops_release` when nothing holds the file any more. */
  maybeRelease(): void {
    if (!this.closed || this.released || this.fileRefs > 0) return;
    this.released = true;
    for (;;) {
      const leaves = this.objects.all().filter((o) => o.users === 1);
      if (leaves.length === 0) break;
      for (const o of leaves) if (o.users === 1) this.destroyObject(o.id);
    }
  }

  // ---- IOAS ---------------------------------------------------------------------------------

  /** The IOAS object with this id (ENOENT otherwise). */
  ioas(ioasId: number): Ioas {
    return this.objects.get<Ioas>(ioasId, "ioas");
  }

  /** The paging HWPT with this id (ENOENT otherwise). */
  hwpt(hwptId: number): HwptPaging {
    return this.objects.get<HwptPaging>(hwptId, "hwpt_paging");
  }

  /** IOMMU_IOAS_ALLOC: the new IOAS id. */
  ioasAlloc(): number {
    return ioasAlloc(this).id;
  }

  /** IOMMU_IOAS_IOVA_RANGES (unlimited array): usable ranges and `out_iova_alignment`. */
  ioasIovaRanges(ioasId: number): { ranges: Span[]; alignment: bigint } {
    return ioasIovaRanges(this, ioasId);
  }

  /** IOMMU_IOAS_ALLOW_IOVAS (inclusive ranges; empty = no restriction). */
  ioasAllowIovas(ioasId: number, ranges: readonly IntervalNode[]): void {
    ioasAllowIovas(this, ioasId, ranges);
  }

  /** IOMMU_IOAS_MAP: returns the IOVA (the kernel's pick unless `flags.fixed`). */
  ioasMap(ioasId: number, userVa: bigint, length: bigint, iova: bigint, flags: MapFlags): bigint {
    return ioasMap(this, ioasId, userVa, length, iova, flags);
  }

  /** IOMMU_IOAS_COPY: returns the destination IOVA. */
  ioasCopy(
    dstIoasId: number,
    srcIoasId: number,
    srcIova: bigint,
    length: bigint,
    dstIova: bigint,
    flags: MapFlags,
  ): bigint {
    return ioasCopy(this, dstIoasId, srcIoasId, srcIova, length, dstIova, flags);
  }

  /** IOMMU_IOAS_UNMAP: bytes unmapped. */
  ioasUnmap(ioasId: number, iova: bigint, length: bigint): bigint {
    return ioasUnmap(this, ioasId, iova, length);
  }

  // ---- IOMMU_OPTION -------------------------------------------------------------------------

  /**
   * `iommufd_option_rlimit_mode`: get (1 = "mm") or set 0/1. EOPNOTSUPP with an object id, EPERM
   * without CAP_SYS_RESOURCE, EBUSY while any object exists, EINVAL for other values.
   */
  optionRlimitMode(objectId: number, set: bigint | null): bigint {
    const op = "iommufd_option_rlimit_mode";
    if (objectId !== 0) throw new ErrnoError("EOPNOTSUPP", op, "the rlimit mode has no object", { objectId });
    if (set === null) return this.accountMode === "mm" ? 1n : 0n;
    if (!this.capSysResource) throw new ErrnoError("EPERM", op, "needs CAP_SYS_RESOURCE", {});
    if (!this.objects.isEmpty()) throw new ErrnoError("EBUSY", op, "objects exist", {});
    if (set === 0n) this.accountMode = "user";
    else if (set === 1n) this.accountMode = "mm";
    else throw new ErrnoError("EINVAL", op, "value must be 0 or 1", { value: set });
    return set;
  }

  /** IOMMU_OPTION_HUGE_PAGES of one IOAS: get (1 = allowed) or set 0/1. */
  optionHugePages(ioasId: number, set: bigint | null): bigint {
    return ioasOptionHugePages(this, ioasId, set);
  }

  // ---- devices and HWPTs (the kernel API VFIO calls) ----------------------------------------

  /** `iommufd_device_bind`: the device object (its id is what VFIO reports as `out_devid`). */
  bindDevice(dev: Device): IommufdDevice {
    return deviceBind(this, dev);
  }

  /** `iommufd_device_unbind` (detaching first, as VFIO does). */
  unbindDevice(idev: IommufdDevice): void {
    deviceUnbind(this, idev);
  }

  /** `iommufd_device_attach`: the HWPT id. */
  attachDevice(idev: IommufdDevice, ptId: number): number {
    return deviceAttach(this, idev, ptId);
  }

  /** `iommufd_device_replace`: the HWPT id. */
  replaceDevice(idev: IommufdDevice, ptId: number): number {
    return deviceReplace(this, idev, ptId);
  }

  /** `iommufd_device_detach`. */
  detachDevice(idev: IommufdDevice): void {
    deviceDetach(this, idev);
  }

  /** IOMMU_GET_HW_INFO for a device id. */
  hwInfo(devId: number): HwInfoAnswer {
    return deviceHwInfo(this, devId);
  }

  /**
   * IOMMU_HWPT_ALLOC: a paging HWPT for `devId` over the IOAS `ptId`. EINVAL when `dataType`/`dataLen`
   * disagree or `ptId` is no IOAS/HWPT; EOPNOTSUPP for driver data and nesting (no driver has
   * `domain_alloc_user`) and unsupported flags; ENOENT for unknown ids.
   */
  hwptAlloc(devId: number, ptId: number, flags: number, dataType = IOMMU_HWPT_DATA_NONE, dataLen = 0): number {
    const op = "iommufd_hwpt_alloc";
    if ((dataType === IOMMU_HWPT_DATA_NONE && dataLen !== 0) || (dataType !== IOMMU_HWPT_DATA_NONE && dataLen === 0)) {
      throw new ErrnoError("EINVAL", op, "data_type and data_len disagree", { dataType, dataLen });
    }
    const idev = this.objects.get<IommufdDevice>(devId, "device");
    // pt_id is looked up as IOMMUFD_OBJ_ANY, and a failed lookup is EINVAL (not the lookup's ENOENT).
    const pt = this.objects.find(ptId);
    if (pt === undefined) throw new ErrnoError("EINVAL", op, `no object with id ${ptId}`, { ptId });
    if (pt instanceof Ioas) {
      if (dataType !== IOMMU_HWPT_DATA_NONE) {
        throw new ErrnoError("EOPNOTSUPP", "iommufd_hwpt_paging_alloc", "driver has no domain_alloc_user", {});
      }
      // FAULT_ID_VALID never gets past hwptPagingAlloc (not in its valid_flags), so no fault id is looked up.
      const hwpt = hwptPagingAlloc(this, pt, idev, flags, false);
      this.objects.finalize(hwpt);
      return hwpt.id;
    }
    if (pt instanceof HwptPaging) {
      throw new ErrnoError("EOPNOTSUPP", "iommufd_hwpt_nested_alloc", "driver has no nested domains", {});
    }
    throw new ErrnoError("EINVAL", op, `object ${ptId} is not an IOAS or a HWPT`, { ptId });
  }

  // ---- the compat IOAS (vfio_compat.c) ------------------------------------------------------

  /** IOMMU_VFIO_IOAS GET: ENODEV without a compat IOAS. */
  vfioIoasGet(): number {
    if (!this.vfioIoas) throw new ErrnoError("ENODEV", "get_compat_ioas", "no compat IOAS", {});
    return this.vfioIoas.id;
  }

  /** IOMMU_VFIO_IOAS SET (ENOENT unless an IOAS). */
  vfioIoasSet(ioasId: number): void {
    this.vfioIoas = this.objects.get<Ioas>(ioasId, "ioas");
  }

  /** IOMMU_VFIO_IOAS CLEAR. */
  vfioIoasClear(): void {
    this.vfioIoas = null;
  }

  /** `iommufd_vfio_compat_ioas_create`: make the compat IOAS unless one exists (then the new one is aborted). */
  vfioCompatIoasCreate(): void {
    const id = this.objects.allocId();
    if (this.vfioIoas) {
      this.objects.abort(id);
      return;
    }
    const ioas = new Ioas(id);
    this.vfioIoas = ioas;
    this.objects.finalize(ioas);
  }
}
