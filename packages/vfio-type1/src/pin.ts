/**
 * Pinning user pages for DMA (`vfio_pin_pages_remote` / `vaddr_get_pfns` / `vfio_unpin_pages_remote`,
 * type1 6.1): pin the physically contiguous run that starts at a vaddr, charging every non-reserved page to
 * `mm->locked_vm` unless the task has CAP_IPC_LOCK. The kernel pins in batches of 512 pages and compares
 * pfns one by one; the run it ends up with only depends on where contiguity (or reserved-ness) breaks, so we
 * walk whole contiguous backing pieces: the cost is per run, not per byte. Reference §6.4.
 */
import { ErrnoError, PAGE_SHIFT, PAGE_SIZE } from "@iommu/core";
import type { Process } from "./process.js";

/** One pinned, physically contiguous run of a vfio_dma. */
export interface PinnedRun {
  /** Offset of the run from the start of its vfio_dma (bytes). */
  readonly offset: bigint;
  readonly phys: bigint;
  readonly pages: number;
  /** Reserved/MMIO pfns (or the zero page): not charged, never "put". */
  readonly reserved: boolean;
  /** Pages charged to locked_vm for this run. */
  readonly charged: number;
}

export interface PinOptions {
  /** FOLL_WRITE: the mapping has IOMMU_WRITE. */
  readonly write: boolean;
  /** `dma->lock_cap` = capable(CAP_IPC_LOCK) at MAP_DMA time. */
  readonly lockCap: boolean;
  /** Module param: pin one page per run. */
  readonly disableHugepages: boolean;
}

/**
 * Pin at most `npage` pages from `vaddr` as one contiguous run and charge locked_vm. Throws EFAULT (bad
 * address, write to read-only, PFNMAP pfn that is RAM) or ENOMEM (RLIMIT_MEMLOCK, with the kernel's warning
 * in `proc.klog`); on a throw nothing is charged.
 */
export function pinRun(proc: Process, vaddr: bigint, npage: number, offset: bigint, opts: PinOptions): PinnedRun {
  const limit = proc.rlimitMemlock >> PAGE_SHIFT;
  let seg = proc.faultIn(vaddr, opts.write, npage);
  const base = seg.phys;
  const rsvd = seg.reserved;
  let pinned = 0;
  let lockAcct = 0;
  for (;;) {
    if (seg.phys !== base + BigInt(pinned) * PAGE_SIZE || seg.reserved !== rsvd) break;
    const n = opts.disableHugepages ? 1 : Math.min(seg.pages, npage - pinned);
    if (!rsvd) {
      if (!opts.lockCap && BigInt(proc.lockedVm + lockAcct + n) > limit) {
        proc.klog.push(`vfio_pin_pages_remote: RLIMIT_MEMLOCK (${limit << PAGE_SHIFT}) exceeded`);
        throw new ErrnoError("ENOMEM", "vfio_pin_pages_remote", "RLIMIT_MEMLOCK exceeded", {
          vaddr,
          lockedVm: proc.lockedVm + lockAcct,
          limit,
        });
      }
      lockAcct += n;
    }
    pinned += n;
    if (opts.disableHugepages || pinned >= npage) break;
    seg = proc.faultIn(vaddr + BigInt(pinned) * PAGE_SIZE, opts.write, npage - pinned);
  }
  proc.lockedVm += lockAcct;
  return { offset, phys: base, pages: pinned, reserved: rsvd, charged: lockAcct };
}

/** `vfio_unpin_pages_remote`: put the run's pages and uncharge what it charged. */
export function unpinRun(proc: Process, run: PinnedRun): void {
  proc.lockedVm -= run.charged;
}
