/**
 * `struct iopt_pages` (pages.c, 6.12): the user memory behind one IOMMU_IOAS_MAP, shared by every area
 * that maps a slice of it (COPY makes more areas over the same pages). A page is pinned once, when the
 * first area holding it is filled into a domain, and charged once (`npinned`); it is unpinned and
 * uncharged when the last holder lets go. So a COPY never pins again.
 */
import { ErrnoError } from "@iommu/core";
import { type AccountMode, PAGE_SHIFT, PAGE_SIZE, type UserMemory, updatePinned } from "./user-memory.js";

interface PinnedPage {
  readonly phys: bigint;
  holders: number;
}

export class IoptPages {
  /** Page-aligned user address of page index 0 (`pages->uptr`). */
  readonly uptr: bigint;
  /** `pages->npages`. */
  readonly npages: number;
  /** Mapped with IOMMU_WRITE: pins with FOLL_WRITE. */
  readonly writable: boolean;
  accountMode: AccountMode;
  /** Areas referencing these pages (`kref`). */
  refs = 0;
  private readonly pinned = new Map<number, PinnedPage>();

  constructor(
    readonly mm: UserMemory,
    uptr: bigint,
    npages: number,
    writable: boolean,
  ) {
    this.uptr = uptr;
    this.npages = npages;
    this.writable = writable;
    this.accountMode = mm.capIpcLock ? "none" : "user";
  }

  /** `pages->npinned`. */
  get npinned(): number {
    return this.pinned.size;
  }

  /**
   * Hold pages [first, last]: pin those nobody holds yet (GUP, then one charge for all of them).
   * EFAULT/ENOMEM from GUP or ENOMEM from the charge; on failure nothing is held, pinned or charged.
   */
  hold(first: number, last: number): void {
    const fresh: [number, bigint][] = [];
    for (let i = first; i <= last; ) {
      if (this.pinned.has(i)) {
        i++;
        continue;
      }
      let run = 1;
      while (i + run <= last && !this.pinned.has(i + run)) run++;
      let done = 0;
      while (done < run) {
        const seg = this.mm.faultIn(this.uptr + (BigInt(i + done) << PAGE_SHIFT), this.writable, run - done);
        const n = Math.max(1, Math.min(seg.pages, run - done));
        for (let k = 0; k < n; k++) fresh.push([i + done + k, seg.phys + BigInt(k) * PAGE_SIZE]);
        done += n;
      }
      i += run;
    }
    updatePinned(this.mm, this.accountMode, fresh.length);
    for (const [idx, phys] of fresh) this.pinned.set(idx, { phys, holders: 0 });
    for (let i = first; i <= last; i++) this.pinned.get(i)!.holders++;
  }

  /** Let go of pages [first, last]; unpin and uncharge the ones no holder is left on. */
  release(first: number, last: number): void {
    let freed = 0;
    for (let i = first; i <= last; i++) {
      const p = this.pinned.get(i);
      if (!p) continue;
      if (--p.holders === 0) {
        this.pinned.delete(i);
        freed++;
      }
    }
    updatePinned(this.mm, this.accountMode, -freed);
  }

  /** Physical address of a held page. */
  physOf(index: number): bigint {
    const p = this.pinned.get(index);
    if (!p) throw new ErrnoError("EINVAL", "iopt_pages_phys", "page is not pinned", { index });
    return p.phys;
  }
}
