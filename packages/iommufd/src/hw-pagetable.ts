/**
 * `struct iommufd_hwpt_paging` (hw_pagetable.c, 6.12): an IOMMU paging domain loaded with one IOAS.
 * Auto-allocated on attach to an IOAS (and destroyed with its last device) or made by IOMMU_HWPT_ALLOC.
 */
import { ErrnoError, type IommuDomain } from "@iommu/core";
import { IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_HWPT_ALLOC_NEST_PARENT } from "@vfio/uapi/iommufd";
import type { IommufdDevice } from "./device.js";
import { hwptAttach, hwptDetach } from "./device.js";
import type { Ioas } from "./ioas.js";
import type { IommufdCtx } from "./iommufd-ctx.js";
import type { IommufdObject } from "./object-table.js";

export class HwptPaging implements IommufdObject {
  readonly type = "hwpt_paging" as const;
  users = 1;
  /** Made by an attach to an IOAS: reused by later attaches there, destroyed with its last device. */
  autoDomain = false;
  /** `iommu_get_msi_cookie` done on the domain (once per domain). */
  msiCookie = false;

  constructor(
    readonly id: number,
    readonly ioas: Ioas,
    readonly domain: IommuDomain,
  ) {}
}

/**
 * `iommufd_hwpt_paging_alloc`: reserve an id, allocate an UNMANAGED domain from the device's driver,
 * attach the device first if `immediateAttach` (the auto path of an attach), then load the IOAS into it.
 * EOPNOTSUPP for flags this model's drivers cannot honour (nesting, dirty tracking: no driver has them);
 * ENOMEM without a domain; the attach's and `iopt_table_add_domain`'s errors. Not finalized: the caller
 * finalizes or aborts. No trace on failure.
 */
export function hwptPagingAlloc(
  ctx: IommufdCtx,
  ioas: Ioas,
  idev: IommufdDevice,
  flags: number,
  immediateAttach: boolean,
): HwptPaging {
  const op = "iommufd_hwpt_paging_alloc";
  // 6.12.117's valid_flags: IOMMU_HWPT_FAULT_ID_VALID is not among them, so a paging HWPT never takes a fault id.
  const valid = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
  if (flags & ~valid) throw new ErrnoError("EOPNOTSUPP", op, "flags outside valid_flags", { flags });
  if (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) {
    throw new ErrnoError("EOPNOTSUPP", op, "the IOMMU has no dirty tracking (IOMMU_CAP_DIRTY_TRACKING)", { flags });
  }
  if (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) {
    throw new ErrnoError("EOPNOTSUPP", op, "the driver has no nesting parent domains (domain_alloc_user)", { flags });
  }
  const group = idev.igroup.group;
  const id = ctx.objects.allocId();
  let domain: IommuDomain;
  try {
    domain = ctx.iommu.domainAlloc(group.ops, "unmanaged");
  } catch (e) {
    ctx.objects.abort(id);
    throw e;
  }
  const hwpt = new HwptPaging(id, ioas, domain);
  ioas.users++;
  try {
    if (immediateAttach) hwptAttach(ctx, hwpt, idev);
    try {
      ioas.iopt.addDomain(domain);
    } catch (e) {
      if (immediateAttach) hwptDetach(ctx, idev);
      throw e;
    }
  } catch (e) {
    ioas.users--;
    ctx.iommu.domainFree(domain);
    ctx.objects.abort(id);
    throw e;
  }
  ioas.hwpts.push(hwpt);
  return hwpt;
}

/** `iommufd_hwpt_paging_destroy` / `_abort`: unload the IOAS, free the domain, drop the IOAS. */
export function hwptPagingDestroy(ctx: IommufdCtx, hwpt: HwptPaging): void {
  const i = hwpt.ioas.hwpts.indexOf(hwpt);
  if (i >= 0) {
    hwpt.ioas.hwpts.splice(i, 1);
    hwpt.ioas.iopt.removeDomain(hwpt.domain);
  }
  ctx.iommu.domainFree(hwpt.domain);
  hwpt.ioas.users--;
}

/** `iommufd_hw_pagetable_put`: drop a device's reference; an auto domain goes with its last user. */
export function hwptPut(ctx: IommufdCtx, hwpt: HwptPaging): void {
  hwpt.users--;
  if (hwpt.autoDomain && hwpt.users === 1) ctx.destroyObject(hwpt.id);
}
