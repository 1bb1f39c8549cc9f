/**
 * type1's ioctls on bytes (`vfio_iommu_type1_ioctl`, 6.1): copy the struct in from the caller's buffer, run
 * the ioctl-level checks in the kernel's order, call the backend, and copy back exactly what the kernel
 * copies back. `arg` is the user buffer the pointer designates: reading past its end is a copy_from_user
 * fault (EFAULT), as is writing past it. Copies are all-or-nothing (a real copy_to_user may write a prefix
 * before faulting). Errors come back as negative errnos; only a bug throws.
 */
import { ERRNO, isErrno, U64_MAX, u64 } from "@iommu/core";
import {
  BITMAP_SIZE,
  DIRTY_BITMAP_GET_SIZE,
  DIRTY_BITMAP_MINSZ,
  DIRTY_BITMAP_SIZE_MAX,
  DMA_MAP_SIZE,
  DMA_UNMAP_SIZE,
  decodeBitmap,
  decodeDmaMap,
  decodeDmaUnmap,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  view,
} from "@vfio/uapi";
import type { Process } from "./process.js";
import type { VfioIommuType1 } from "./type1.js";

/** An ioctl argument: the user buffer a pointer designates, or the integer itself for integer requests. */
export type IoctlArg = Uint8Array | number | bigint;

const EFAULT = -ERRNO.EFAULT;
const EINVAL = -ERRNO.EINVAL;

/** Run `fn`, turning an ErrnoError into its negative errno. */
export function errnoOf(fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    if (isErrno(e)) return e.errno;
    throw e;
  }
}

/** `access_ok(addr, size)`: the range lies below the user address-space limit. */
export function accessOk(proc: Process, addr: bigint, size: bigint): boolean {
  return size <= proc.taskSize && addr <= proc.taskSize - size;
}

/** `verify_bitmap_size(npages, bitmap_size)` with C's u64 wrap in DIRTY_BITMAP_BYTES. */
export function verifyBitmapSize(npages: bigint, bitmapSize: bigint): boolean {
  if (npages === 0n || bitmapSize === 0n || bitmapSize > DIRTY_BITMAP_SIZE_MAX) return false;
  const needed = (u64(npages + 63n) & ~63n) / 8n;
  return bitmapSize >= needed;
}

/** `__ffs` of a bitmap's page size; 0 for 0 (undefined in C, and the page-size check rejects it anyway). */
function ffs64(x: bigint): bigint {
  if (x === 0n) return 0n;
  return BigInt((x & -x).toString(2).length - 1);
}

/** `vfio_iommu_type1_ioctl`: ENOTTY for requests it does not know. */
export function type1Ioctl(t: VfioIommuType1, cmd: number, arg: IoctlArg): number {
  switch (cmd) {
    case VFIO_IOMMU_GET_INFO:
      return errnoOf(() => t.getInfoIoctl(arg));
    case VFIO_IOMMU_MAP_DMA:
      return mapDmaIoctl(t, arg);
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDmaIoctl(t, arg);
    case VFIO_IOMMU_DIRTY_PAGES:
      return dirtyPagesIoctl(t, arg);
    default:
      return -ERRNO.ENOTTY;
  }
}

/** VFIO_IOMMU_MAP_DMA (`vfio_iommu_type1_map_dma`): nothing is copied back. */
export function mapDmaIoctl(t: VfioIommuType1, arg: IoctlArg): number {
  if (!(arg instanceof Uint8Array) || arg.length < DMA_MAP_SIZE) return EFAULT;
  const m = decodeDmaMap(arg);
  const mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
  if (m.argsz < DMA_MAP_SIZE || (m.flags & ~mask) !== 0) return EINVAL;
  return errnoOf(() => {
    t.mapDma(m);
    return 0;
  });
}

/** VFIO_IOMMU_UNMAP_DMA (`vfio_iommu_type1_unmap_dma`): on success the 24-byte struct comes back with `size` = bytes unmapped. */
export function unmapDmaIoctl(t: VfioIommuType1, arg: IoctlArg): number {
  if (!(arg instanceof Uint8Array) || arg.length < DMA_UNMAP_SIZE) return EFAULT;
  const u = decodeDmaUnmap(arg);
  const mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR;
  if (u.argsz < DMA_UNMAP_SIZE || (u.flags & ~mask) !== 0) return EINVAL;
  const dirty = (u.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
  if (dirty && (u.flags & (VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)) !== 0) return EINVAL;
  let bitmap: ReturnType<typeof decodeBitmap> | undefined;
  if (dirty) {
    if (u.argsz < DMA_UNMAP_SIZE + BITMAP_SIZE) return EINVAL;
    if (arg.length < DMA_UNMAP_SIZE + BITMAP_SIZE) return EFAULT;
    bitmap = decodeBitmap(arg, DMA_UNMAP_SIZE);
    if (!accessOk(t.process, bitmap.data, bitmap.size)) return EINVAL;
    if (!verifyBitmapSize(u.size >> ffs64(bitmap.pgsize), bitmap.size)) return EINVAL;
  }
  return errnoOf(() => {
    const unmapped = t.unmapDma({ iova: u.iova, size: u.size, flags: u.flags, ...(bitmap ? { bitmap } : {}) });
    view(arg).setBigUint64(16, unmapped, true);
    return 0;
  });
}

/** VFIO_IOMMU_DIRTY_PAGES (`vfio_iommu_type1_dirty_pages`): EACCES on a v1 container. */
export function dirtyPagesIoctl(t: VfioIommuType1, arg: IoctlArg): number {
  if (!t.v2) return -ERRNO.EACCES;
  if (!(arg instanceof Uint8Array) || arg.length < DIRTY_BITMAP_MINSZ) return EFAULT;
  const v = view(arg);
  const argsz = v.getUint32(0, true);
  const flags = v.getUint32(4, true);
  const mask =
    VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP | VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
  if (argsz < DIRTY_BITMAP_MINSZ || (flags & ~mask) !== 0) return EINVAL;
  // Exactly one flag: zero or several fall through to the final -EINVAL.
  if (flags === 0 || (flags & (flags - 1)) !== 0) return EINVAL;
  if (flags === VFIO_IOMMU_DIRTY_PAGES_FLAG_START) {
    t.dirtyStart();
    return 0;
  }
  if (flags === VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP) {
    t.dirtyStop();
    return 0;
  }
  const dataSize = argsz - DIRTY_BITMAP_MINSZ;
  if (dataSize === 0 || dataSize < DIRTY_BITMAP_GET_SIZE) return EINVAL;
  if (arg.length < DIRTY_BITMAP_MINSZ + DIRTY_BITMAP_GET_SIZE) return EFAULT;
  const iova = v.getBigUint64(8, true);
  const size = v.getBigUint64(16, true);
  const bitmap = decodeBitmap(arg, 24);
  if (t.kernel.sanitizeOverflow) {
    // 6.18+: the last byte must not wrap (a range ending exactly at 2^64 is fine), EOVERFLOW if it does.
    if (size === 0n) return EINVAL;
    if (iova + size - 1n > U64_MAX) return -ERRNO.EOVERFLOW;
  } else if (u64(iova + size) < iova) return EINVAL;
  if (!accessOk(t.process, bitmap.data, bitmap.size)) return EINVAL;
  if (!verifyBitmapSize(size >> ffs64(bitmap.pgsize), bitmap.size)) return EINVAL;
  return errnoOf(() => {
    t.dirtyGetBitmap(iova, size, bitmap);
    return 0;
  });
}
