/**
 * iommufd's VFIO container compatibility (vfio_compat.c, 6.12): the type1 container ioctls an iommufd
 * file answers — `/dev/vfio/vfio` in the `iommufd-compat` module set, and any `/dev/iommu` for numbers
 * outside iommufd's own — on the compat IOAS (`vfio_ioas`). It is not type1: no MIGRATION capability, a
 * 2^64 range and every page size until a device's domain arrives, no dma_entry_limit, no UPDATE_VADDR,
 * no dirty tracking (ENOTTY), and partial unmaps answer ENOENT with the size written back as 0.
 */
import { ErrnoError, IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, PAGE_MASK, PAGE_SIZE, U32_MAX, U64_MAX } from "@iommu/core";
import {
  CAP_IOVA_RANGE_BASE,
  DMA_MAP_SIZE,
  DMA_UNMAP_SIZE,
  decodeDmaMap,
  decodeDmaUnmap,
  INFO_MINSZ,
  INFO_SIZE,
  IOVA_RANGE_SIZE,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  view,
} from "@vfio/uapi";
import type { Ioas } from "./ioas.js";
import type { IommufdCtx } from "./iommufd-ctx.js";

/** A VFIO ioctl argument: the user's struct bytes, or an integer (SET_IOMMU, CHECK_EXTENSION). */
export type CompatArg = Uint8Array | number | bigint;

/** DMA_AVAIL's 12 bytes take 16 in 6.12's chain (the next capability starts 8-aligned). */
const CAP_DMA_AVAIL_BYTES = 12;
const CAP_DMA_AVAIL_SLOT = 16;

function bytesOf(arg: CompatArg, minsz: number, op: string): Uint8Array {
  if (!(arg instanceof Uint8Array) || arg.length < minsz) {
    throw new ErrnoError("EFAULT", op, "cannot copy the struct from user memory", { minsz });
  }
  return arg;
}

/** copy_to_user into the caller's buffer: EFAULT past its end. */
function put(arg: Uint8Array, off: number, bytes: Uint8Array): void {
  if (off + bytes.length > arg.length) throw new ErrnoError("EFAULT", "copy_to_user", "past the user buffer", { off });
  arg.set(bytes, off);
}

/** `get_compat_ioas`: ENODEV until a group joined (or IOMMU_VFIO_IOAS set one). */
function compatIoas(ctx: IommufdCtx): Ioas {
  if (!ctx.vfioIoas) throw new ErrnoError("ENODEV", "get_compat_ioas", "no compat IOAS", {});
  return ctx.vfioIoas;
}

/** `iommufd_vfio_check_extension`. */
function checkExtension(ctx: IommufdCtx, type: number): number {
  if (type === VFIO_TYPE1_IOMMU || type === VFIO_TYPE1v2_IOMMU || type === VFIO_UNMAP_ALL) return 1;
  if (type === VFIO_DMA_CC_IOMMU) {
    // iommufd_vfio_cc_iommu: 1 unless a HWPT of the compat IOAS does not enforce coherency (none here does).
    return compatIoas(ctx).hwpts.length === 0 ? 1 : 0;
  }
  return 0;
}

/** `iommufd_vfio_set_iommu`: TYPE1 (v1) disables huge pages so any range can be cut; setting twice is fine. */
function setIommu(ctx: IommufdCtx, type: number): number {
  if (type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU) {
    throw new ErrnoError("EINVAL", "iommufd_vfio_set_iommu", "only TYPE1 and TYPE1v2", { type });
  }
  const ioas = compatIoas(ctx);
  if (type === VFIO_TYPE1_IOMMU) ioas.iopt.disableHugePages();
  return 0;
}

/** `iommufd_get_pagesizes`: the domains' common sizes (all of them without a domain), at least PAGE_SIZE-based. */
function pageSizes(ioas: Ioas): bigint {
  let bitmap = U64_MAX;
  for (const d of ioas.iopt.domains) bitmap &= d.pgsizeBitmap;
  if (bitmap & ~PAGE_MASK) bitmap = (bitmap & PAGE_MASK) | PAGE_SIZE;
  // max(bitmap, iova_alignment), in bigints.
  if (ioas.iopt.iovaAlignment > bitmap) return ioas.iopt.iovaAlignment;
  return bitmap;
}

/** `iommufd_vfio_iommu_get_info`: DMA_AVAIL then IOVA_RANGE, each written only where the user's argsz has room. */
function getInfo(ctx: IommufdCtx, arg: CompatArg): number {
  const op = "iommufd_vfio_iommu_get_info";
  const b = bytesOf(arg, INFO_MINSZ, op);
  const argsz = view(b).getUint32(0, true);
  if (argsz < INFO_MINSZ) throw new ErrnoError("EINVAL", op, "argsz below the struct's minimum", { argsz });
  const ioas = compatIoas(ctx);
  const ranges = ioas.iopt.iovaRanges();
  let total = INFO_SIZE;
  let lastCap = -1;
  const fills: ((at: number, avail: number) => number)[] = [
    (at, avail) => {
      if (avail >= CAP_DMA_AVAIL_BYTES) {
        const c = new Uint8Array(CAP_DMA_AVAIL_BYTES);
        const v = view(c);
        v.setUint16(0, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, true);
        v.setUint16(2, 1, true);
        v.setUint32(8, U32_MAX, true);
        put(b, at, c);
      }
      return CAP_DMA_AVAIL_SLOT;
    },
    (at, avail) => {
      const size = (n: number) => CAP_IOVA_RANGE_BASE + n * IOVA_RANGE_SIZE;
      ranges.forEach((r, i) => {
        if (avail >= size(i + 1)) {
          const e = new Uint8Array(IOVA_RANGE_SIZE);
          view(e).setBigUint64(0, r.start, true);
          view(e).setBigUint64(8, r.last, true);
          put(b, at + size(i), e);
        }
      });
      if (avail >= size(ranges.length)) {
        const h = new Uint8Array(CAP_IOVA_RANGE_BASE);
        const v = view(h);
        v.setUint16(0, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, true);
        v.setUint16(2, 1, true);
        v.setUint32(8, ranges.length, true);
        put(b, at, h);
      }
      return size(ranges.length);
    },
  ];
  for (const fill of fills) {
    const size = argsz > total ? fill(total, argsz - total) : fill(-1, 0);
    if (lastCap >= 0 && argsz >= total) {
      const next = new Uint8Array(4);
      view(next).setUint32(0, total, true);
      put(b, lastCap + 4, next);
    }
    lastCap = total;
    total += size;
  }
  const info = new Uint8Array(INFO_SIZE);
  const v = view(info);
  v.setUint32(0, total, true);
  v.setUint32(4, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, true);
  v.setBigUint64(8, pageSizes(ioas), true);
  v.setUint32(16, argsz >= total ? INFO_SIZE : 0, true);
  put(b, 0, info.subarray(0, Math.min(argsz, INFO_SIZE)));
  return 0;
}

/** `iommufd_vfio_map_dma`: READ/WRITE only (VADDR EINVAL), always at the given IOVA, on the compat IOAS. */
function mapDma(ctx: IommufdCtx, arg: CompatArg): number {
  const op = "iommufd_vfio_map_dma";
  const m = decodeDmaMap(bytesOf(arg, DMA_MAP_SIZE, op));
  if (m.argsz < DMA_MAP_SIZE || m.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) {
    throw new ErrnoError("EINVAL", op, "argsz too small or unsupported flags", { argsz: m.argsz, flags: m.flags });
  }
  const prot =
    IOMMU_CACHE |
    (m.flags & VFIO_DMA_MAP_FLAG_READ ? IOMMU_READ : 0) |
    (m.flags & VFIO_DMA_MAP_FLAG_WRITE ? IOMMU_WRITE : 0);
  compatIoas(ctx).iopt.mapUser(ctx.mm, m.vaddr, m.size, m.iova, prot, ctx.accountMode === "mm");
  return 0;
}

/**
 * `iommufd_vfio_unmap_dma`: ALL (iova and size 0) or whole mappings (type1 v1 cuts first); the size field
 * is written back with the bytes unmapped even when the unmap fails (0 for a partial one).
 */
function unmapDma(ctx: IommufdCtx, arg: CompatArg): number {
  const op = "iommufd_vfio_unmap_dma";
  const b = bytesOf(arg, DMA_UNMAP_SIZE, op);
  const u = decodeDmaUnmap(b);
  if (u.argsz < DMA_UNMAP_SIZE || u.flags & ~VFIO_DMA_UNMAP_FLAG_ALL) {
    throw new ErrnoError("EINVAL", op, "argsz too small or unsupported flags", { argsz: u.argsz, flags: u.flags });
  }
  const iopt = compatIoas(ctx).iopt;
  let unmapped = 0n;
  let err: unknown = null;
  if (u.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
    if (u.iova !== 0n || u.size !== 0n) throw new ErrnoError("EINVAL", op, "UNMAP_ALL with a range", {});
    unmapped = iopt.unmapAll();
  } else {
    if (iopt.disableLargePages) {
      const last = BigInt.asUintN(64, u.iova + u.size - 1n);
      iopt.cutIova(u.iova !== 0n ? [last, u.iova - 1n] : [last]);
    }
    try {
      unmapped = iopt.unmapIova(u.iova, u.size);
    } catch (e) {
      err = e;
      const partial = e instanceof ErrnoError ? e.detail.unmapped : undefined;
      unmapped = typeof partial === "bigint" ? partial : 0n;
    }
  }
  const out = new Uint8Array(8);
  view(out).setBigUint64(0, unmapped, true);
  put(b, 16, out);
  if (err) throw err;
  return 0;
}

/**
 * `iommufd_vfio_ioctl`: the VFIO container ioctls on an iommufd file. Returns the ioctl's value or -errno
 * (unknown numbers and VFIO_IOMMU_DIRTY_PAGES: -ENOTTY).
 */
export function vfioCompatIoctl(ctx: IommufdCtx, cmd: number, arg: CompatArg): number {
  try {
    switch (cmd) {
      case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
      case VFIO_SET_IOMMU:
        return setIommu(ctx, Number(arg));
      case VFIO_CHECK_EXTENSION:
        return checkExtension(ctx, Number(arg));
      case VFIO_IOMMU_GET_INFO:
        return getInfo(ctx, arg);
      case VFIO_IOMMU_MAP_DMA:
        return mapDma(ctx, arg);
      case VFIO_IOMMU_UNMAP_DMA:
        return unmapDma(ctx, arg);
      default:
        throw new ErrnoError("ENOTTY", "iommufd_vfio_ioctl", "not a VFIO container ioctl iommufd serves", { cmd });
    }
  } catch (e) {
    if (e instanceof ErrnoError) return e.errno;
    throw e;
  }
}
