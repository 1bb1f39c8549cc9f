/**
 * MAP_DMA (`vfio_dma_do_map`, `vfio_pin_map_dma`, `vfio_iommu_map`, type1 6.1): the checks in the kernel's
 * order, then pinning contiguous runs of the process's pages and mapping each into every domain; any failure
 * unwinds all of it. Reference §6.3, §6.4.
 */
import { ErrnoError, IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, minPageSize, PAGE_SIZE, U64_MAX } from "@iommu/core";
import { VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_VADDR, VFIO_DMA_MAP_FLAG_WRITE } from "@vfio/uapi";
import type { VfioDma } from "./dma-tree.js";
import { iovaDmaValid } from "./iova-list.js";
import { pinRun, unpinRun } from "./pin.js";
import { hex, type VfioIommu } from "./state.js";
import { unmapUnpin } from "./unmap.js";

export interface MapDmaRequest {
  readonly vaddr: bigint;
  readonly iova: bigint;
  readonly size: bigint;
  /** VFIO_DMA_MAP_FLAG_* */
  readonly flags: number;
}

/** `vfio_iommu_type1_map_dma` + `vfio_dma_do_map`. */
export function mapDma(s: VfioIommu, req: MapDmaRequest): void {
  const op = "vfio_dma_do_map";
  const { vaddr, iova, size, flags } = req;
  const mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
  if ((flags & ~mask) !== 0) {
    throw new ErrnoError("EINVAL", "vfio_iommu_type1_map_dma", "unknown flags", { flags });
  }
  if (s.env.kernel.sanitizeOverflow) {
    // 6.18+: the wrap is checked first (after a zero size), and has its own errno.
    if (size === 0n) throw new ErrnoError("EINVAL", op, "size zero", { iova: hex(iova) });
    if (iova + size - 1n > U64_MAX || vaddr + size - 1n > U64_MAX) {
      throw new ErrnoError("EOVERFLOW", op, "iova or vaddr range wraps", { iova: hex(iova), size: hex(size) });
    }
  }
  let prot = 0;
  if (flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
  if (flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
  const setVaddr = (flags & VFIO_DMA_MAP_FLAG_VADDR) !== 0;
  if ((prot !== 0) === setVaddr) {
    throw new ErrnoError("EINVAL", op, "READ/WRITE required, and VADDR excludes them", { flags });
  }
  const pgsize = minPageSize(s.pgsizeBitmap);
  if (size === 0n || ((size | iova | vaddr) & (pgsize - 1n)) !== 0n) {
    throw new ErrnoError("EINVAL", op, "size zero or not aligned to the minimum page", {
      iova: hex(iova),
      size: hex(size),
      vaddr: hex(vaddr),
      pgsize: hex(pgsize),
    });
  }
  if (iova + size - 1n > U64_MAX || vaddr + size - 1n > U64_MAX) {
    throw new ErrnoError("EINVAL", op, "iova or vaddr range wraps", { iova: hex(iova), size: hex(size) });
  }
  const found = s.dmas.find(iova, size);
  if (setVaddr) {
    if (!found) throw new ErrnoError("ENOENT", op, "no mapping to update", { iova: hex(iova) });
    if (!found.vaddrInvalid || found.iova !== iova || found.size !== size) {
      throw new ErrnoError("EINVAL", op, "mapping is not invalidated or differs", {
        iova: hex(iova),
        size: hex(size),
      });
    }
    found.vaddr = vaddr;
    found.vaddrInvalid = false;
    s.vaddrInvalidCount--;
    return;
  }
  if (found) {
    throw new ErrnoError("EEXIST", op, "overlaps an existing mapping", {
      iova: hex(iova),
      existing: hex(found.iova),
    });
  }
  if (s.dmaAvail === 0) throw new ErrnoError("ENOSPC", op, "dma_entry_limit reached", { iova: hex(iova) });
  if (!iovaDmaValid(s.iovaList, iova, iova + size - 1n)) {
    throw new ErrnoError("EINVAL", "vfio_iommu_iova_dma_valid", "range is not inside one valid IOVA range", {
      iova: hex(iova),
      size: hex(size),
    });
  }
  const dma: VfioDma = {
    iova,
    size: 0n,
    vaddr,
    prot,
    lockCap: s.process.capIpcLock,
    iommuMapped: false,
    vaddrInvalid: false,
    runs: [],
    bitmap: false,
    bits: 0n,
  };
  if (s.domains.length === 0) dma.size = size;
  else pinMapDma(s, dma, size);
  if (s.dirtyPageTracking) dma.bitmap = true;
  s.dmas.insert(dma);
  s.dmaAvail--;
}

/** `vfio_pin_map_dma`: pin contiguous runs and map each into every domain; undo everything on failure. */
function pinMapDma(s: VfioIommu, dma: VfioDma, size: bigint): void {
  const proc = s.process;
  const opts = {
    write: (dma.prot & IOMMU_WRITE) !== 0,
    lockCap: dma.lockCap,
    disableHugepages: s.env.params.disableHugepages,
    unshare: s.env.kernel.longtermPinUnshare,
    batch: { end: dma.vaddr }, // `vfio_batch_init`: one batch for the whole mapping, empty at first
  };
  let done = 0n;
  try {
    while (done < size) {
      const npage = Number((size - done) / PAGE_SIZE);
      const run = pinRun(proc, dma.vaddr + done, npage, done, opts);
      const len = BigInt(run.pages) * PAGE_SIZE;
      try {
        iommuMap(s, dma.iova + done, run.phys, len, dma.prot);
      } catch (e) {
        unpinRun(proc, run);
        throw e;
      }
      dma.runs.push(run);
      done += len;
      dma.size = done;
    }
  } catch (e) {
    unmapUnpin(s, dma);
    throw e;
  }
  dma.iommuMapped = true;
}

/** `vfio_iommu_map`: one run into every domain, unmapping the ones done when a later one fails. */
function iommuMap(s: VfioIommu, iova: bigint, phys: bigint, len: bigint, prot: number): void {
  let i = 0;
  try {
    for (; i < s.domains.length; i++) s.env.iommu.map(s.domains[i]!.domain, iova, phys, len, prot | IOMMU_CACHE);
  } catch (e) {
    while (i-- > 0) s.env.iommu.unmap(s.domains[i]!.domain, iova, len);
    throw e;
  }
}
