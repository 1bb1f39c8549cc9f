/**
 * UNMAP_DMA (`vfio_dma_do_unmap`, type1 6.1) and the teardown it shares with detach and release
 * (`vfio_unmap_unpin`, `vfio_remove_dma`, `vfio_iommu_unmap_unpin_all`): v2's no-bisect rule, v1's
 * first-mapping rule, VADDR invalidation, and the dirty bitmap copied out before the mappings go.
 * Reference §6.5.
 */
import { ErrnoError, minPageSize, PAGE_SIZE, U64_MAX, u64 } from "@iommu/core";
import {
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  type VfioBitmap,
} from "@vfio/uapi";
import { checkUserBitmap, updateUserBitmap } from "./dirty.js";
import type { VfioDma } from "./dma-tree.js";
import type { PinnedRun } from "./pin.js";
import { unpinRun } from "./pin.js";
import { hex, type VfioIommu } from "./state.js";

export interface UnmapDmaRequest {
  readonly iova: bigint;
  readonly size: bigint;
  /** VFIO_DMA_UNMAP_FLAG_* */
  readonly flags?: number;
  /** With GET_DIRTY_BITMAP: where (in the process) and at which page size to report. */
  readonly bitmap?: VfioBitmap;
}

/**
 * `vfio_dma_do_unmap`: returns the bytes unmapped. Errors carry `detail.unmapped` (what the kernel wrote
 * into its copy of `unmap.size`; the ioctl does not copy it back on error).
 */
export function unmapDma(s: VfioIommu, req: UnmapDmaRequest): bigint {
  const op = "vfio_dma_do_unmap";
  const flags = req.flags ?? 0;
  const { iova } = req;
  let size = req.size;
  const all = (flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
  const invalidateVaddr = (flags & VFIO_DMA_UNMAP_FLAG_VADDR) !== 0;
  const getDirty = (flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
  const einval = (why: string, unmapped = 0n): ErrnoError =>
    new ErrnoError("EINVAL", op, why, { iova: hex(iova), size: hex(req.size), unmapped });
  const pgsize = minPageSize(s.pgsizeBitmap);
  if ((iova & (pgsize - 1n)) !== 0n) throw einval("iova not aligned to the minimum page");
  if (all) {
    if (iova !== 0n || size !== 0n) throw einval("UNMAP_ALL needs iova = size = 0");
    size = U64_MAX;
  } else if (size === 0n || (size & (pgsize - 1n)) !== 0n) {
    throw einval("size zero or unaligned");
  } else if (iova + size - 1n > U64_MAX) {
    if (s.env.kernel.sanitizeOverflow) {
      throw new ErrnoError("EOVERFLOW", op, "the range wraps", { iova: hex(iova), size: hex(req.size), unmapped: 0n });
    }
    throw einval("the range wraps");
  }
  if (getDirty && (!s.dirtyPageTracking || req.bitmap?.pgsize !== pgsize)) {
    throw einval("dirty tracking off or bitmap page size is not the minimum page");
  }
  if (s.v2 && !all) {
    const a = s.dmas.find(iova, 1n);
    if (a && a.iova !== iova) throw einval("range bisects a mapping at its start");
    const b = s.dmas.find(u64(iova + size - 1n), 0n);
    if (b && u64(b.iova + b.size) !== u64(iova + size)) throw einval("range bisects a mapping at its end");
  }
  // 6.1 wraps the end to 64 bits (a range reaching 2^64 ends at 0 and finds nothing); 6.18 compares inclusively
  const end = s.env.kernel.unmapToAddressLimit && !all ? iova + size : u64(iova + size);
  const first = s.dmas.firstIndex(iova, size, end);
  let last = first;
  if (first >= 0) {
    while (last < s.dmas.count) {
      const dma = s.dmas.at(last)!;
      if (dma.iova >= end) break;
      if (!s.v2 && iova > dma.iova) break;
      last++;
    }
  }
  const hit = first >= 0 ? s.dmas.all().slice(first, last) : [];
  if (invalidateVaddr) {
    let unmapped = 0n;
    for (const dma of hit) {
      if (dma.vaddrInvalid) {
        throw einval("a mapping's vaddr is already invalid");
      }
    }
    for (const dma of hit) {
      dma.vaddrInvalid = true;
      s.vaddrInvalidCount++;
      unmapped += dma.size;
    }
    return unmapped;
  }
  if (getDirty && req.bitmap) {
    // Linux copies each mapping's bits before removing it; a fault then stops the loop half way. Checking the
    // user bitmap first keeps a failed call free of side effects.
    for (const dma of hit) checkUserBitmap(s, dma, iova, pgsize, req.bitmap.data);
    for (const dma of hit) updateUserBitmap(s, dma, iova, pgsize, req.bitmap.data);
  }
  let unmapped = 0n;
  for (const dma of hit) {
    unmapped += dma.size;
    removeDma(s, dma);
  }
  if (hit.length > 0) s.dmas.removeRange(first, hit.length);
  return unmapped;
}

/** `vfio_unmap_unpin`: take the runs out of every domain, unpin and uncharge them. */
export function unmapUnpin(s: VfioIommu, dma: VfioDma): void {
  for (const run of dma.runs) unmapRun(s, dma, run);
  dma.runs.length = 0;
  dma.iommuMapped = false;
}

function unmapRun(s: VfioIommu, dma: VfioDma, run: PinnedRun): void {
  const len = BigInt(run.pages) * PAGE_SIZE;
  for (const d of s.domains) s.env.iommu.unmap(d.domain, dma.iova + run.offset, len);
  unpinRun(s.process, run);
}

/** `vfio_remove_dma` minus the tree unlink (callers remove ranges of the tree at once). */
function removeDma(s: VfioIommu, dma: VfioDma): void {
  unmapUnpin(s, dma);
  if (dma.vaddrInvalid) s.vaddrInvalidCount--;
  s.dmaAvail++;
}

/** `vfio_iommu_unmap_unpin_all` */
export function unmapUnpinAll(s: VfioIommu): void {
  for (const dma of s.dmas.all()) removeDma(s, dma);
  s.dmas.clear();
}
