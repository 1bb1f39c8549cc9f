/**
 * Dirty page tracking (`vfio_iommu_type1_dirty_pages`, `vfio_iova_dirty_bitmap`, `update_user_bitmap`,
 * `vfio_iommu_populate_bitmap_full`, type1 6.1): a bitmap per mapping, every pinned page reported dirty,
 * copied into the user's bitmap with the kernel's in-place shift. Reference §6.6.
 */
import { ErrnoError, minPageSize, U64_MAX, u64 } from "@iommu/core";
import type { VfioBitmap } from "@vfio/uapi";
import type { VfioDma } from "./dma-tree.js";
import { hex, lowBits, type VfioIommu } from "./state.js";

/** VFIO_IOMMU_DIRTY_PAGES_FLAG_START: allocate a bitmap per mapping (a no-op when already tracking). */
export function dirtyStart(s: VfioIommu): void {
  if (s.dirtyPageTracking) return;
  for (const d of s.dmas.all()) {
    d.bitmap = true;
    d.bits = 0n; // zeroed allocation; no mdev-pinned pages to pre-mark
  }
  s.dirtyPageTracking = true;
}

/** VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP */
export function dirtyStop(s: VfioIommu): void {
  if (!s.dirtyPageTracking) return;
  s.dirtyPageTracking = false;
  for (const d of s.dmas.all()) {
    d.bitmap = false;
    d.bits = 0n;
  }
}

/** VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP after the ioctl-level checks (`vfio_iova_dirty_bitmap` and before). */
export function dirtyGetBitmap(s: VfioIommu, iova: bigint, size: bigint, bitmap: VfioBitmap): void {
  const op = "vfio_iommu_type1_dirty_pages";
  const pgsize = minPageSize(s.pgsizeBitmap);
  const detail = { iova: hex(iova), size: hex(size), pgsize: hex(bitmap.pgsize) };
  if (bitmap.pgsize !== pgsize) throw new ErrnoError("EINVAL", op, "bitmap page size is not the minimum page", detail);
  if ((iova & (pgsize - 1n)) !== 0n) throw new ErrnoError("EINVAL", op, "iova not aligned", detail);
  if (size === 0n || (size & (pgsize - 1n)) !== 0n)
    throw new ErrnoError("EINVAL", op, "size zero or unaligned", detail);
  if (!s.dirtyPageTracking) throw new ErrnoError("EINVAL", op, "dirty tracking is not started", detail);
  const a = s.dmas.find(iova, 1n);
  if (a && a.iova !== iova) throw new ErrnoError("EINVAL", "vfio_iova_dirty_bitmap", "range bisects a mapping", detail);
  const b = s.dmas.find(u64(iova + size - 1n), 0n);
  if (b && u64(b.iova + b.size) !== u64(iova + size)) {
    throw new ErrnoError("EINVAL", "vfio_iova_dirty_bitmap", "range bisects a mapping", detail);
  }
  const hit = s.dmas.all().filter((d) => d.iova >= iova && d.iova <= iova + size - 1n);
  for (const dma of hit) checkUserBitmap(s, dma, iova, pgsize, bitmap.data);
  for (const dma of hit) {
    updateUserBitmap(s, dma, iova, pgsize, bitmap.data);
    // bitmap_clear of the mapping's own pages, then re-populated with just the mdev-pinned pages (none here).
    // Bits an in-place shift pushed past the pages are not cleared.
    dma.bits &= ~lowBits(bitmapWindow(dma, iova, pgsize).nbits);
  }
}

/** Where one mapping's bits land in a user bitmap that starts at `base`. */
function bitmapWindow(
  dma: VfioDma,
  base: bigint,
  pgsize: bigint,
): { at: bigint; words: number; shift: number; nbits: bigint } {
  const pgshift = BigInt(pgsize.toString(2).length - 1);
  const nbits = dma.size >> pgshift;
  const bitOffset = (dma.iova - base) >> pgshift;
  const copyOffset = bitOffset / 64n;
  const shift = Number(bitOffset % 64n);
  const words = Number((nbits + BigInt(shift) + 63n) / 64n);
  return { at: copyOffset * 8n, words, shift, nbits };
}

/** The copy_to_user `update_user_bitmap` will do would fault: EFAULT before anything changes. */
export function checkUserBitmap(s: VfioIommu, dma: VfioDma, base: bigint, pgsize: bigint, data: bigint): void {
  const w = bitmapWindow(dma, base, pgsize);
  s.process.checkUser(data + w.at, w.words * 8, true);
}

/**
 * `update_user_bitmap`: copy one mapping's bits into the user bitmap at its offset from `base`. When the offset
 * is not a multiple of 64 pages the mapping's own bitmap is shifted left *in place* over the words the copy
 * covers (`bitmap_shift_left` on `nbits + shift` bits, which does not mask its last word), the user's whole
 * leading word is OR-ed into its first word, and those words are copied out: the shifted bits stay in the
 * mapping's bitmap afterwards.
 */
export function updateUserBitmap(s: VfioIommu, dma: VfioDma, base: bigint, pgsize: bigint, data: bigint): void {
  const w = bitmapWindow(dma, base, pgsize);
  if (s.numNonPinnedGroups > 0 && dma.iommuMapped) dma.bits |= lowBits(w.nbits);
  if (w.shift !== 0) {
    const span = lowBits(BigInt(w.words) * 64n);
    dma.bits = (dma.bits & ~span) | ((dma.bits << BigInt(w.shift)) & span);
    const leftover = new DataView(s.process.readUser(data + w.at, 8).buffer).getBigUint64(0, true);
    dma.bits |= leftover;
  }
  const out = new Uint8Array(w.words * 8);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < w.words; i++) dv.setBigUint64(i * 8, (dma.bits >> BigInt(i * 64)) & U64_MAX, true);
  s.process.writeUser(data + w.at, out);
}

/** `vfio_iommu_populate_bitmap_full`: every page of every mapping dirty. */
export function populateBitmapFull(s: VfioIommu): void {
  const pgsize = minPageSize(s.pgsizeBitmap);
  const pgshift = BigInt(pgsize.toString(2).length - 1);
  for (const d of s.dmas.all()) d.bits |= lowBits(d.size >> pgshift);
}
