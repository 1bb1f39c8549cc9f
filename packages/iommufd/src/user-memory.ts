/**
 * What iommufd needs from the process whose memory it pins (`pages->source_mm`, `source_task`,
 * `source_user`): GUP, the mm's `locked_vm` and `pinned_vm`, RLIMIT_MEMLOCK and CAP_IPC_LOCK. A host
 * passes its process model; `@vfio/type1`'s `Process` has all of it but `pinnedVm`.
 */
import { ErrnoError, PAGE_SHIFT } from "@iommu/core";

/** One physically contiguous piece behind a virtual range, as GUP finds it. */
export interface UserSegment {
  readonly phys: bigint;
  /** 4 KiB pages from the asked vaddr that are physically contiguous with `phys` (at least 1). */
  readonly pages: number;
}

/** The process model iommufd pins from. Mutable counters are the mm's, in pages. */
export interface UserMemory {
  /**
   * `pin_user_pages(FOLL_LONGTERM | (write ? FOLL_WRITE : 0))` of the page at `vaddr`: faults it in and
   * returns the contiguous piece starting there (at most `maxPages`). `unshare` (FAULT_FLAG_UNSHARE, which a
   * long-term read pin always asks for since 6.2) gives an untouched anonymous page its own frame instead of
   * the shared zero page. Throws EFAULT (no vma, write to a read-only vma) or ENOMEM. The model has no page
   * refcounts, so an unpin is nothing to the process.
   */
  faultIn(vaddr: bigint, write: boolean, maxPages: number, unshare: boolean): UserSegment;
  /** RLIMIT_MEMLOCK in bytes. */
  readonly rlimitMemlock: bigint;
  /** CAP_IPC_LOCK: pages are then not accounted (IOPT_PAGES_ACCOUNT_NONE). */
  readonly capIpcLock: boolean;
  /** `mm->locked_vm` (VmLck), charged in IOMMU_OPTION_RLIMIT_MODE 1. */
  lockedVm: number;
  /** `mm->pinned_vm` (VmPin), charged for every page iommufd pins. */
  pinnedVm: number;
  /** copy_from_user: EFAULT when any byte is unmapped. */
  readUser(vaddr: bigint, len: number): Uint8Array;
  /** copy_to_user: EFAULT when any byte is unmapped or read-only (nothing written then). */
  writeUser(vaddr: bigint, bytes: Uint8Array): void;
}

/**
 * `user_struct->locked_vm` of each process's user, charged in rlimit mode 0 (the default). The model
 * has one user per process, so it is keyed by the process.
 */
const userLockedVm = new WeakMap<UserMemory, { lockedVm: number }>();

/** The per-user locked_vm counter of `mm`'s user (pages). */
export function userOf(mm: UserMemory): { lockedVm: number } {
  let u = userLockedVm.get(mm);
  if (!u) {
    u = { lockedVm: 0 };
    userLockedVm.set(mm, u);
  }
  return u;
}

/** `enum iopt_pages_account_mode`. */
export type AccountMode = "none" | "user" | "mm";

/**
 * `iopt_pages_update_pinned`: charge (`npages` > 0) or uncharge (< 0) pinned pages by the pages'
 * account mode, then `pinned_vm`. ENOMEM past RLIMIT_MEMLOCK (per user in "user" mode, the mm's
 * locked_vm in "mm" mode); a failed charge changes nothing.
 */
export function updatePinned(mm: UserMemory, mode: AccountMode, npages: number): void {
  if (npages === 0) return;
  const limit = Number(mm.rlimitMemlock >> PAGE_SHIFT);
  if (mode === "user") {
    const u = userOf(mm);
    if (npages > 0 && u.lockedVm + npages > limit) {
      throw new ErrnoError("ENOMEM", "incr_user_locked_vm", "RLIMIT_MEMLOCK exceeded", {
        lockedVm: u.lockedVm,
        npages,
        limit,
      });
    }
    u.lockedVm += npages;
  } else if (mode === "mm") {
    if (npages > 0 && mm.lockedVm + npages > limit) {
      throw new ErrnoError("ENOMEM", "__account_locked_vm", "RLIMIT_MEMLOCK exceeded", {
        lockedVm: mm.lockedVm,
        npages,
        limit,
      });
    }
    mm.lockedVm += npages;
  }
  mm.pinnedVm += npages;
}
