/**
 * `struct iommufd_device` and `struct iommufd_group` (device.c, 6.12): binding a device to an iommufd
 * (DMA ownership of its group), attaching it to an IOAS (auto HWPT) or a HWPT, replacing and detaching,
 * the device's reserved regions in the IOAS, the SW_MSI cookie, and IOMMU_GET_HW_INFO.
 */

import { getMsiCookie } from "@dma-iommu/msi-cookie";
import { type Device, ErrnoError, type IommuGroup, isErrno } from "@iommu/core";
import { HwptPaging, hwptPagingAlloc, hwptPagingDestroy, hwptPut } from "./hw-pagetable.js";
import type { Ioas } from "./ioas.js";
import type { IommufdCtx } from "./iommufd-ctx.js";
import type { IommufdObject } from "./object-table.js";

/** `struct iommufd_group`: per iommufd and IOMMU group, the HWPT its devices use. */
export class IommufdGroup {
  /** Attached devices (`device_list`), in attach order. */
  readonly devices: IommufdDevice[] = [];
  hwpt: HwptPaging | null = null;
  /** `sw_msi_start`: the SW_MSI window a device's reserved regions named, null = none (PHYS_ADDR_MAX). */
  swMsiStart: bigint | null = null;
  /** Bound devices (the group's kref and the DMA-owner count this iommufd holds). */
  bound = 0;

  constructor(readonly group: IommuGroup) {}
}

export class IommufdDevice implements IommufdObject {
  readonly type = "device" as const;
  /** The table's reference plus the binding driver's (so IOMMU_DESTROY answers EBUSY). */
  users = 2;

  constructor(
    readonly id: number,
    readonly dev: Device,
    readonly igroup: IommufdGroup,
  ) {}

  /** The HWPT the device is attached to, or null. */
  get hwpt(): HwptPaging | null {
    return this.igroup.devices.includes(this) ? this.igroup.hwpt : null;
  }
}

/**
 * `iommufd_device_bind`: EINVAL without IOMMU_CAP_CACHE_COHERENCY, ENODEV without a group, EPERM when
 * MSIs are not isolated (unless allow_unsafe_interrupts), the DMA-ownership claim's EPERM/EBUSY.
 */
export function deviceBind(ctx: IommufdCtx, dev: Device): IommufdDevice {
  const op = "iommufd_device_bind";
  if (!ctx.iommu.capable(dev, "CACHE_COHERENCY")) {
    throw new ErrnoError("EINVAL", op, "IOMMU cannot enforce cache coherency for this device", { dev: dev.name });
  }
  const group = ctx.iommu.groupOf(dev);
  if (!group) throw new ErrnoError("ENODEV", "iommufd_get_group", `${dev.name} has no IOMMU group`, {});
  if (!ctx.iommu.groupHasIsolatedMsi(group)) {
    if (!ctx.allowUnsafeInterrupts) {
      throw new ErrnoError("EPERM", op, "MSI interrupts cannot be isolated by the platform", { dev: dev.name });
    }
    ctx.klog.push(
      `${dev.name}: MSI interrupts are not secure, they cannot be isolated by the platform. Check that platform features like interrupt remapping are enabled. Use the "allow_unsafe_interrupts" module parameter to override`,
    );
  }
  const igroup = ctx.groups.get(group) ?? new IommufdGroup(group);
  // iommu_device_claim_dma_owner: the first device of the group takes ownership, later ones share it.
  if (igroup.bound === 0) ctx.iommu.claimDmaOwner(group, ctx);
  igroup.bound++;
  ctx.groups.set(group, igroup);
  const idev = new IommufdDevice(ctx.objects.allocId(), dev, igroup);
  ctx.objects.finalize(idev);
  ctx.get();
  return idev;
}

/** `iommufd_device_unbind` as VFIO does it: detach if attached, then destroy the device object. */
export function deviceUnbind(ctx: IommufdCtx, idev: IommufdDevice): void {
  if (idev.hwpt) deviceDetach(ctx, idev);
  idev.users--;
  ctx.destroyObject(idev.id);
  // The device's reference on the file goes: a closed file is released with its last holder.
  ctx.put();
}

/** `iommufd_device_destroy`: release DMA ownership with the group's last bound device. */
export function deviceDestroy(ctx: IommufdCtx, idev: IommufdDevice): void {
  const ig = idev.igroup;
  ig.bound--;
  if (ig.bound === 0) {
    ctx.iommu.releaseDmaOwner(ig.group);
    ctx.groups.delete(ig.group);
  }
}

/** `iommufd_group_setup_msi`: the first paging HWPT of a group with a SW_MSI window gets the MSI cookie. */
function groupSetupMsi(igroup: IommufdGroup, hwpt: HwptPaging): void {
  if (igroup.swMsiStart !== null && !hwpt.msiCookie) {
    getMsiCookie(hwpt.domain, igroup.swMsiStart);
    hwpt.msiCookie = true;
  }
}

/** The device's reserved regions into an IOAS, owned by the device (`iopt_table_enforce_dev_resv_regions`). */
function enforceResv(ctx: IommufdCtx, ioas: Ioas, idev: IommufdDevice, recordSwMsi: boolean): void {
  const swMsi = ioas.iopt.enforceDevResvRegions(ctx.iommu.getResvRegions(idev.dev), idev);
  if (recordSwMsi && swMsi !== null) idev.igroup.swMsiStart = swMsi;
}

/**
 * `iommufd_hw_pagetable_attach`: EINVAL if the group uses another HWPT; the device's reserved regions go
 * into the IOAS (EADDRINUSE over a mapping or an allowed range); the group's first device sets up MSI and
 * attaches the group. No trace on failure.
 */
export function hwptAttach(ctx: IommufdCtx, hwpt: HwptPaging, idev: IommufdDevice): void {
  const ig = idev.igroup;
  if (ig.hwpt !== null && ig.hwpt !== hwpt) {
    throw new ErrnoError("EINVAL", "iommufd_hw_pagetable_attach", "the group is attached to another HWPT", {
      hwpt: ig.hwpt.id,
    });
  }
  const savedSwMsi = ig.swMsiStart;
  enforceResv(ctx, hwpt.ioas, idev, true);
  try {
    if (ig.devices.length === 0) {
      groupSetupMsi(ig, hwpt);
      ctx.iommu.attachGroup(hwpt.domain, ig.group);
      ig.hwpt = hwpt;
    }
  } catch (e) {
    hwpt.ioas.iopt.removeReserved(idev);
    ig.swMsiStart = savedSwMsi;
    throw e;
  }
  hwpt.users++;
  ig.devices.push(idev);
}

/** `iommufd_hw_pagetable_detach`: the group's last device detaches the group (back to blocking DMA). */
export function hwptDetach(ctx: IommufdCtx, idev: IommufdDevice): HwptPaging {
  const ig = idev.igroup;
  const hwpt = ig.hwpt as HwptPaging;
  ig.devices.splice(ig.devices.indexOf(idev), 1);
  if (ig.devices.length === 0) {
    ctx.iommu.detachGroup(hwpt.domain, ig.group);
    ig.hwpt = null;
  }
  hwpt.ioas.iopt.removeReserved(idev);
  return hwpt;
}

/**
 * `iommufd_device_do_replace`: move an attached device's group to another HWPT (the same one: nothing).
 * Returns the old HWPT for the caller to put, or null.
 */
function doReplace(ctx: IommufdCtx, idev: IommufdDevice, hwpt: HwptPaging): HwptPaging | null {
  const op = "iommufd_device_do_replace";
  const ig = idev.igroup;
  const old = ig.hwpt;
  if (!old || !ig.devices.includes(idev)) throw new ErrnoError("EINVAL", op, "the device is not attached", {});
  if (hwpt === old) return null;
  const otherIoas = hwpt.ioas !== old.ioas;
  const done: IommufdDevice[] = [];
  const unresv = () => {
    for (const d of done) hwpt.ioas.iopt.removeReserved(d);
  };
  try {
    if (otherIoas) {
      for (const d of ig.devices) {
        enforceResv(ctx, hwpt.ioas, d, false);
        done.push(d);
      }
    }
    groupSetupMsi(ig, hwpt);
  } catch (e) {
    unresv();
    throw e;
  }
  // iommu_group_replace_domain: on failure the group keeps the old domain.
  ctx.iommu.detachGroup(old.domain, ig.group);
  try {
    ctx.iommu.attachGroup(hwpt.domain, ig.group);
  } catch (e) {
    ctx.iommu.attachGroup(old.domain, ig.group);
    unresv();
    throw e;
  }
  if (otherIoas) for (const d of ig.devices) old.ioas.iopt.removeReserved(d);
  ig.hwpt = hwpt;
  const n = ig.devices.length;
  hwpt.users += n;
  old.users -= n - 1;
  return old;
}

type AttachFn = (ctx: IommufdCtx, idev: IommufdDevice, hwpt: HwptPaging) => HwptPaging | null;

const doAttach: AttachFn = (ctx, idev, hwpt) => {
  hwptAttach(ctx, hwpt, idev);
  return null;
};

/**
 * `iommufd_device_auto_get_domain`: reuse an auto HWPT of the IOAS that accepts the device (EINVAL from
 * one means "incompatible, try the next"), else allocate one. Returns [HWPT id, HWPT to put].
 */
function autoGetDomain(ctx: IommufdCtx, idev: IommufdDevice, ioas: Ioas, fn: AttachFn): [number, HwptPaging | null] {
  for (const hwpt of [...ioas.hwpts]) {
    if (!hwpt.autoDomain) continue;
    try {
      return [hwpt.id, fn(ctx, idev, hwpt)];
    } catch (e) {
      if (isErrno(e, "EINVAL")) continue;
      throw e;
    }
  }
  const immediate = fn === doAttach;
  const hwpt = hwptPagingAlloc(ctx, ioas, idev, 0, immediate);
  let destroy: HwptPaging | null = null;
  if (!immediate) {
    try {
      destroy = fn(ctx, idev, hwpt);
    } catch (e) {
      hwptPagingDestroy(ctx, hwpt);
      ctx.objects.abort(hwpt.id);
      throw e;
    }
  }
  hwpt.autoDomain = true;
  ctx.objects.finalize(hwpt);
  return [hwpt.id, destroy];
}

/** `iommufd_device_change_pt`: `ptId` names an IOAS (auto HWPT) or a paging HWPT; ENOENT / EINVAL otherwise. */
function changePt(ctx: IommufdCtx, idev: IommufdDevice, ptId: number, fn: AttachFn): number {
  const obj = ctx.objects.get(ptId);
  let out = ptId;
  let destroy: HwptPaging | null;
  if (obj instanceof HwptPaging) destroy = fn(ctx, idev, obj);
  else if (obj.type === "ioas") [out, destroy] = autoGetDomain(ctx, idev, obj as Ioas, fn);
  else throw new ErrnoError("EINVAL", "iommufd_device_change_pt", `object ${ptId} is not an IOAS or a HWPT`, {});
  if (destroy) hwptPut(ctx, destroy);
  return out;
}

/** `iommufd_device_attach`: returns the HWPT id (what VFIO writes back as `pt_id`). */
export function deviceAttach(ctx: IommufdCtx, idev: IommufdDevice, ptId: number): number {
  const out = changePt(ctx, idev, ptId, doAttach);
  idev.users++;
  return out;
}

/** `iommufd_device_replace`: as attach for an attached device, without a window of blocked DMA. */
export function deviceReplace(ctx: IommufdCtx, idev: IommufdDevice, ptId: number): number {
  return changePt(ctx, idev, ptId, doReplace);
}

/** `iommufd_device_detach`: back to blocked DMA; an auto HWPT goes with its last device. */
export function deviceDetach(ctx: IommufdCtx, idev: IommufdDevice): void {
  const hwpt = hwptDetach(ctx, idev);
  hwptPut(ctx, hwpt);
  idev.users--;
}

/** IOMMU_GET_HW_INFO's answer: the driver's `hw_info` (type NONE and no data without one). */
export interface HwInfoAnswer {
  readonly type: number;
  readonly data: Uint8Array;
  /** `out_capabilities`: IOMMU_HW_CAP_DIRTY_TRACKING when the device's IOMMU can track dirty pages. */
  readonly capabilities: bigint;
}

/** `iommufd_get_hw_info` for a bound device id (ENOENT otherwise). */
export function deviceHwInfo(ctx: IommufdCtx, devId: number): HwInfoAnswer {
  const idev = ctx.objects.get<IommufdDevice>(devId, "device");
  const info = idev.dev.iommu?.ops.hwInfo?.(idev.dev);
  return { type: info?.type ?? 0, data: info?.data ?? new Uint8Array(0), capabilities: 0n };
}
