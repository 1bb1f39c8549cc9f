/**
 * `struct iopt_pages` (pages.c, 6.12): the user memory behind one IOMMU_IOAS_MAP, shared by every area
 * that maps a slice of it (COPY makes more areas over the same pages). A page is pinned once, when the
 * first area holding it is filled into a domain, and charged once (`npinned`); it is unpinned and
 * uncharged when the last holder lets go. So a COPY never pins again. Pinned pages are kept as runs of
 * physically contiguous pages with one holder count, so GiBs of huge pages cost a few runs, not 4 KiB entries.
 */
import { ErrnoError, PAGE_SHIFT, PAGE_SIZE } from "@iommu/core";
import { type AccountMode, type UserMemory, updatePinned } from "./user-memory.js";

/** Pages [first, first + count) pinned at phys, phys + 4 KiB, ..., each held by `holders` areas. */
export interface PinnedRun {
  first: number;
  count: number;
  phys: bigint;
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
  /** Pinned runs, sorted and disjoint. */
  private runs: PinnedRun[] = [];
  private pinnedCount = 0;
  /** `pages->last_npinned`: the pins charged so far (the charge follows the pinning, see updatePinned). */
  private chargedCount = 0;

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
    return this.pinnedCount;
  }

  /**
   * Hold pages [first, last]: pin those nobody holds yet (GUP). Not charged yet: `pfn_reader` pins and the
   * caller maps into its domains before `updatePinned` charges. EFAULT/ENOMEM from GUP; on failure nothing
   * is held or pinned.
   */
  hold(first: number, last: number): void {
    const fresh: PinnedRun[] = [];
    let i = first;
    for (const r of this.overlapping(first, last)) {
      if (r.first > i) this.gup(i, r.first - 1, fresh);
      i = r.first + r.count;
    }
    if (i <= last) this.gup(i, last, fresh);
    this.pinnedCount += fresh.reduce((a, r) => a + r.count, 0);
    for (const r of fresh) this.insert(r);
    this.split(first);
    this.split(last + 1);
    for (const r of this.overlapping(first, last)) r.holders++;
  }

  /**
   * `pfn_reader_update_pinned`: charge the pins made since the last charge (ENOMEM past RLIMIT_MEMLOCK,
   * nothing charged; the caller unwinds its pins). The kernel charges once the pages are in the domain, so a
   * domain's map error comes before the memlock one (pages.c "Changes in the number of pages pinned is done
   * after the pages have been read and processed").
   */
  updatePinned(): void {
    const n = this.pinnedCount - this.chargedCount;
    if (n <= 0) return;
    updatePinned(this.mm, this.accountMode, n);
    this.chargedCount = this.pinnedCount;
  }

  /** Let go of pages [first, last]; unpin the ones no holder is left on and uncharge what was charged for them. */
  release(first: number, last: number): void {
    this.split(first);
    this.split(last + 1);
    let freed = 0;
    for (const r of this.overlapping(first, last)) {
      if (--r.holders === 0) freed += r.count;
    }
    if (freed) this.runs = this.runs.filter((r) => r.holders > 0);
    this.pinnedCount -= freed;
    // update_unpinned: only pins that were charged are uncharged (an unwound fill never was).
    if (this.pinnedCount < this.chargedCount) {
      updatePinned(this.mm, this.accountMode, this.pinnedCount - this.chargedCount);
      this.chargedCount = this.pinnedCount;
    }
  }

  /** Physical address of a held page. */
  physOf(index: number): bigint {
    const r = this.runAt(index);
    if (!r) throw new ErrnoError("EINVAL", "iopt_pages_phys", "page is not pinned", { index });
    return r.phys + BigInt(index - r.first) * PAGE_SIZE;
  }

  /** The pinned runs covering [first, last] (clipped), in order: what a domain fill maps. */
  pinnedRuns(first: number, last: number): { first: number; count: number; phys: bigint }[] {
    return this.overlapping(first, last).map((r) => {
      const s = Math.max(first, r.first);
      const e = Math.min(last, r.first + r.count - 1);
      return { first: s, count: e - s + 1, phys: r.phys + BigInt(s - r.first) * PAGE_SIZE };
    });
  }

  /** GUP pages [first, last] into new runs (holders 0), split where physical contiguity breaks. */
  private gup(first: number, last: number, out: PinnedRun[]): void {
    let i = first;
    while (i <= last) {
      // FOLL_LONGTERM: a read pin unshares (no zero page under a DMA mapping).
      const seg = this.mm.faultIn(this.uptr + (BigInt(i) << PAGE_SHIFT), this.writable, last - i + 1, true);
      const n = Math.max(1, Math.min(seg.pages, last - i + 1));
      const prev = out[out.length - 1];
      if (prev && prev.first + prev.count === i && prev.phys + BigInt(prev.count) * PAGE_SIZE === seg.phys) {
        prev.count += n;
      } else out.push({ first: i, count: n, phys: seg.phys, holders: 0 });
      i += n;
    }
  }

  private lowerBound(index: number): number {
    let lo = 0;
    let hi = this.runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const r = this.runs[mid]!;
      if (r.first + r.count <= index) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private runAt(index: number): PinnedRun | undefined {
    const r = this.runs[this.lowerBound(index)];
    return r && r.first <= index ? r : undefined;
  }

  private overlapping(first: number, last: number): PinnedRun[] {
    const out: PinnedRun[] = [];
    for (let k = this.lowerBound(first); k < this.runs.length && this.runs[k]!.first <= last; k++) {
      out.push(this.runs[k]!);
    }
    return out;
  }

  private insert(r: PinnedRun): void {
    this.runs.splice(this.lowerBound(r.first), 0, r);
  }

  /** Make `index` the first page of a run if a run straddles it. */
  private split(index: number): void {
    const k = this.lowerBound(index);
    const r = this.runs[k];
    if (!r || r.first >= index) return;
    const head = index - r.first;
    this.runs.splice(k + 1, 0, {
      first: index,
      count: r.count - head,
      phys: r.phys + BigInt(head) * PAGE_SIZE,
      holders: r.holders,
    });
    r.count = head;
  }
}
