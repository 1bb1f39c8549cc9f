/**
 * Pinning user pages for DMA (`vfio_pin_pages_remote` / `vaddr_get_pfns` / `vfio_unpin_pages_remote`,
 * type1 6.1): pin the physically contiguous run that starts at a vaddr, charging every non-reserved page to
 * `mm->locked_vm` unless the task has CAP_IPC_LOCK. The kernel first pins a batch of up to 512 pages with
 * `pin_user_pages_remote` (which faults every one of them in) and only then compares pfns and charges page by
 * page; the run it ends up with only depends on where contiguity (or reserved-ness) breaks, so we walk whole
 * contiguous backing pieces and keep track of how far the batches reach. Reference §6.4.
 */
import { ErrnoError, isErrno, PAGE_SHIFT, PAGE_SIZE } from "@iommu/core";
import type { PhysSegment, Process } from "./process.js";

/** `VFIO_BATCH_MAX_CAPACITY`: one page of `struct page *` (4096 / 8). */
export const VFIO_BATCH_MAX_CAPACITY = 512;

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

/**
 * `struct vfio_batch` as far as it shows: GUP has pinned (and so faulted in) every page below `end` that the
 * runs have not consumed yet. One per `vfio_pin_map_dma`; empty (`end` = the next vaddr) at its start.
 */
export interface PinBatch {
  end: bigint;
}

export interface PinOptions {
  /** FOLL_WRITE: the mapping has IOMMU_WRITE. */
  readonly write: boolean;
  /** `dma->lock_cap` = capable(CAP_IPC_LOCK) at MAP_DMA time. */
  readonly lockCap: boolean;
  /** Module param: pin one page per run (and batches of one page). */
  readonly disableHugepages: boolean;
  /** FAULT_FLAG_UNSHARE on a read pin (6.2+'s reliable R/O long-term pinning): no zero page. Default false. */
  readonly unshare?: boolean;
  /** The batch carried from the previous run of the same mapping; a fresh one when absent. */
  readonly batch?: PinBatch;
}

/**
 * `vaddr_get_pfns` refilling the batch at `at`: `pin_user_pages_remote` of up to `count` pages faults each in
 * (a write fault with FOLL_WRITE) before anything is charged. It stops at the first page it cannot pin — that
 * page's error is the call's when it is the first — and a VM_PFNMAP page is followed on its own. Pages below
 * `present` are known to be faulted in already (the piece being pinned) and are not walked again. Returns the
 * piece found at `at` (as `faultIn(at, …, pages up to dmaEnd)` would), so the caller need not walk it twice.
 */
function refill(
  proc: Process,
  batch: PinBatch,
  at: bigint,
  count: number,
  opts: PinOptions,
  dmaEnd: bigint,
  present = at,
): PhysSegment | null {
  const end = at + BigInt(count) * PAGE_SIZE;
  let a = present > at ? (present < end ? present : end) : at;
  let first: PhysSegment | null = null;
  while (a < end) {
    let seg: PhysSegment;
    try {
      seg = proc.faultIn(a, opts.write, Number((dmaEnd - a) >> PAGE_SHIFT), opts.unshare ?? false);
    } catch (e) {
      if (a === at || !isErrno(e)) throw e;
      break;
    }
    // GUP refuses VM_PFNMAP (only the first page is followed, by follow_fault_pfn); a reserved piece may be one.
    const vma = seg.reserved ? proc.vmaAt(a) : undefined;
    if (vma?.kind === "pfnmap") {
      if (a === at) a = vma.end < end ? vma.end : end;
      break;
    }
    if (a === at) first = seg;
    const step = BigInt(seg.pages) * PAGE_SIZE;
    a = a + step < end ? a + step : end;
  }
  batch.end = a;
  return first;
}

/**
 * Pin at most `npage` pages from `vaddr` as one contiguous run and charge locked_vm. Throws EFAULT (bad
 * address, write to read-only, PFNMAP pfn that is RAM) or ENOMEM (RLIMIT_MEMLOCK, with the kernel's warning
 * in `proc.klog`); on a throw nothing is charged, but the pages GUP faulted in stay in the process, as on Linux.
 */
export function pinRun(proc: Process, vaddr: bigint, npage: number, offset: bigint, opts: PinOptions): PinnedRun {
  const limit = proc.rlimitMemlock >> PAGE_SHIFT;
  const batch = opts.batch ?? { end: vaddr };
  const cap = BigInt(opts.disableHugepages ? 1 : VFIO_BATCH_MAX_CAPACITY) * PAGE_SIZE;
  const dmaEnd = vaddr + BigInt(npage) * PAGE_SIZE;
  /**
   * Refill the batch until it reaches the page at `last`, in the faulted-in piece that ends at `present`;
   * returns the piece at `last` when a refill started there.
   */
  const cover = (last: bigint, present: bigint): PhysSegment | null => {
    if (batch.end > last) return null;
    // Refills wholly inside the faulted-in piece pin a full batch each and fault nothing new: skip them.
    batch.end += ((last - batch.end) / cap) * cap;
    let found: PhysSegment | null = null;
    while (batch.end <= last) {
      const at = batch.end;
      const left = dmaEnd - at;
      const got = refill(proc, batch, at, Number((left < cap ? left : cap) >> PAGE_SHIFT), opts, dmaEnd, present);
      if (at === last) found = got;
    }
    return found;
  };
  let seg = cover(vaddr, vaddr) ?? proc.faultIn(vaddr, opts.write, npage, opts.unshare ?? false);
  const base = seg.phys;
  const rsvd = seg.reserved;
  let pinned = 0;
  let lockAcct = 0;
  for (;;) {
    if (seg.phys !== base + BigInt(pinned) * PAGE_SIZE || seg.reserved !== rsvd) break;
    const n = opts.disableHugepages ? 1 : Math.min(seg.pages, npage - pinned);
    const at = vaddr + BigInt(pinned) * PAGE_SIZE;
    const present = at + BigInt(n) * PAGE_SIZE;
    if (!rsvd) {
      const room = Number(limit) - (proc.lockedVm + lockAcct);
      if (!opts.lockCap && n > room) {
        // The failing page's whole batch was pinned (faulted in) before it was charged.
        cover(at + BigInt(Math.max(room, 0)) * PAGE_SIZE, present);
        proc.klog.push(`vfio_pin_pages_remote: RLIMIT_MEMLOCK (${limit << PAGE_SHIFT}) exceeded`);
        throw new ErrnoError("ENOMEM", "vfio_pin_pages_remote", "RLIMIT_MEMLOCK exceeded", {
          vaddr,
          lockedVm: proc.lockedVm + lockAcct,
          limit,
        });
      }
      lockAcct += n;
    }
    cover(at + BigInt(n - 1) * PAGE_SIZE, present);
    pinned += n;
    if (opts.disableHugepages || pinned >= npage) break;
    const next = vaddr + BigInt(pinned) * PAGE_SIZE;
    // An empty batch is refilled before the next pfn is compared.
    seg = cover(next, next) ?? proc.faultIn(next, opts.write, npage - pinned, opts.unshare ?? false);
  }
  proc.lockedVm += lockAcct;
  return { offset, phys: base, pages: pinned, reserved: rsvd, charged: lockAcct };
}

/** `vfio_unpin_pages_remote`: put the run's pages and uncharge what it charged. */
export function unpinRun(proc: Process, run: PinnedRun): void {
  proc.lockedVm -= run.charged;
}
