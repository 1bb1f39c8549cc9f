/**
 * VFIO_IOMMU_GET_INFO (`vfio_iommu_type1_get_info`, type1 6.1): flags, the page-size bitmap and the capability
 * chain (MIGRATION, DMA_AVAIL, IOVA_RANGE; the seed's RESV_IOVA_RANGE as a named option), then the copies out
 * exactly as the kernel makes them for the caller's argsz. Reference §6.2.
 */
import { ERRNO, minPageSize } from "@iommu/core";
import {
  CAP_DMA_AVAIL_SIZE,
  CAP_IOVA_RANGE_BASE,
  CAP_MIGRATION_SIZE,
  CAP_RESV_IOVA_RANGE_SIZE,
  CapChain,
  DIRTY_BITMAP_SIZE_MAX,
  INFO_CAPSZ,
  INFO_MINSZ,
  INFO_SIZE,
  IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE,
  IOVA_RANGE_SIZE,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  view,
} from "@vfio/uapi";

import type { IovaRange } from "./iova-list.js";
import type { VfioIommu } from "./state.js";

/** What GET_INFO computes before it is copied out. */
export interface Type1Info {
  readonly flags: number;
  readonly iovaPgsizes: bigint;
  /** The capability chain with buffer-relative `next` offsets (not yet shifted). */
  readonly caps: CapChain;
}

/** `vfio_iommu_type1_get_info` minus the copies: flags, page sizes and the (unshifted) cap chain. */
export function getInfo(s: VfioIommu): Type1Info {
  const caps = new CapChain({ align8: s.env.kernel.alignCapabilities });
  const mig = caps.add(CAP_MIGRATION_SIZE, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1);
  mig.setUint32(8, 0, true);
  mig.setBigUint64(16, minPageSize(s.pgsizeBitmap), true);
  mig.setBigUint64(24, DIRTY_BITMAP_SIZE_MAX, true);
  const avail = caps.add(CAP_DMA_AVAIL_SIZE, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1);
  avail.setUint32(8, s.dmaAvail >>> 0, true);
  if (s.iovaList.length > 0) {
    const n = s.iovaList.length;
    const c = caps.add(CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * n, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1);
    c.setUint32(8, n, true);
    s.iovaList.forEach((r, i) => {
      c.setBigUint64(CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * i, r.start, true);
      c.setBigUint64(CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * i + 8, r.end, true);
    });
  }
  if (s.env.seedResvCaps) {
    for (const r of reservedRanges(s)) {
      const c = caps.add(CAP_RESV_IOVA_RANGE_SIZE, IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE, 1);
      c.setBigUint64(8, r.start, true);
      c.setBigUint64(16, r.end, true);
    }
  }
  return {
    flags: VFIO_IOMMU_INFO_PGSIZES | (caps.size > 0 ? VFIO_IOMMU_INFO_CAPS : 0),
    iovaPgsizes: s.pgsizeBitmap,
    caps,
  };
}

/**
 * The seed's view (not upstream): every reserved range of the attached groups that type1 keeps out of the
 * IOVA list (DIRECT_RELAXABLE is usable, so not listed), by start, duplicates folded.
 */
export function reservedRanges(s: VfioIommu): IovaRange[] {
  const all = s
    .groups()
    .flatMap((g) => s.env.iommu.getGroupResvRegions(g))
    .filter((r) => r.type !== "direct-relaxable")
    .map((r) => ({ start: r.start, end: r.start + r.length - 1n }))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0));
  return all.filter((r, i) => i === 0 || r.start !== all[i - 1]!.start || r.end !== all[i - 1]!.end);
}

/**
 * VFIO_IOMMU_GET_INFO on bytes: `arg` is the user buffer. EFAULT when the buffer is shorter than what the
 * kernel copies in or out (nothing written then), EINVAL for argsz below 16; an argsz too small for the chain
 * gets the size needed, no caps and `cap_offset` 0. 6.1 copies 16 bytes back (20 once argsz reaches
 * `cap_offset`); with aligned capabilities the zeroed struct goes back up to min(argsz, 24), `pad` included.
 */
export function getInfoIoctl(s: VfioIommu, arg: Uint8Array | number | bigint): number {
  if (!(arg instanceof Uint8Array) || arg.length < INFO_MINSZ) return -ERRNO.EFAULT;
  const v = view(arg);
  const argsz = v.getUint32(0, true);
  if (argsz < INFO_MINSZ) return -ERRNO.EINVAL;
  const minsz = s.env.kernel.alignCapabilities
    ? Math.min(argsz, INFO_SIZE)
    : argsz >= INFO_CAPSZ
      ? INFO_CAPSZ
      : INFO_MINSZ;
  const info = getInfo(s);
  let argszOut = argsz;
  let capOffset = 0;
  let chain: Uint8Array | null = null;
  if (info.caps.size > 0) {
    if (argsz < INFO_SIZE + info.caps.size) {
      argszOut = INFO_SIZE + info.caps.size; // the size needed; success, no caps copied
    } else {
      info.caps.shift(INFO_SIZE);
      chain = info.caps.bytes;
      capOffset = INFO_SIZE;
    }
  }
  if ((chain && arg.length < INFO_SIZE + chain.length) || arg.length < minsz) return -ERRNO.EFAULT;
  if (chain) arg.set(chain, INFO_SIZE);
  const out = new Uint8Array(INFO_SIZE); // the kernel's struct (zeroed from 6.6: `pad` goes back as 0)
  const o = view(out);
  o.setUint32(0, argszOut, true);
  o.setUint32(4, info.flags, true);
  o.setBigUint64(8, info.iovaPgsizes, true);
  o.setUint32(16, capOffset, true);
  arg.set(out.subarray(0, minsz), 0);
  return 0;
}
