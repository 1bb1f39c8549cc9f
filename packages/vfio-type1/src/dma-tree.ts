/**
 * The container's user mappings (`struct vfio_dma` in `iommu->dma_list`, an rb-tree keyed by iova in
 * type1). Here a sorted array searched as an implicit balanced tree, so lookups behave like the kernel's
 * descents, including C's 64-bit wrap of `start + size` (a mapping of the top page cannot be found by a
 * search whose end wraps to 0, exactly as in Linux). Insert/remove are O(n) memmoves; appends are O(1).
 */

import { U64_MAX, u64 } from "@iommu/core";
import type { PinnedRun } from "./pin.js";

/** One MAP_DMA. */
export interface VfioDma {
  readonly iova: bigint;
  /** Bytes; grows while the mapping is pinned and mapped (Linux inserts it with size 0). */
  size: bigint;
  vaddr: bigint;
  /** IOMMU_READ | IOMMU_WRITE. */
  readonly prot: number;
  /** capable(CAP_IPC_LOCK) when mapped. */
  readonly lockCap: boolean;
  /** Pinned and mapped into the container's domains. */
  iommuMapped: boolean;
  /** UNMAP_DMA with FLAG_VADDR forgot the host vaddr until MAP_DMA with FLAG_VADDR supplies it again. */
  vaddrInvalid: boolean;
  /** The pinned runs (what Linux rediscovers with iova_to_phys on the first domain). */
  readonly runs: PinnedRun[];
  /** Dirty tracking: the per-dma bitmap exists. */
  bitmap: boolean;
  /**
   * The per-dma bitmap's bits (bit i = page i; word k = bits 64k..64k+63), allocated one u64 word longer than the
   * pages need. Bits past the mapping's pages are not always zero: a report into a user bitmap at an offset
   * that is not a multiple of 64 pages shifts these bits in place, and the reset after a report clears only the
   * mapping's own pages, so what was shifted past them stays and shows in later reports (Linux 6.1).
   */
  bits: bigint;
}

export class DmaTree {
  private readonly list: VfioDma[] = [];

  get count(): number {
    return this.list.length;
  }

  /** In iova order. */
  all(): readonly VfioDma[] {
    return this.list;
  }

  at(i: number): VfioDma | undefined {
    return this.list[i];
  }

  /** `vfio_find_dma(start, size)`: some mapping overlapping `[start, start + size)` (size 0 finds a mapping strictly containing start). */
  find(start: bigint, size: bigint): VfioDma | null {
    const n = this.list.length;
    if (n === 0) return null;
    // Fast path for the common append: everything ends at or below start (no wrap involved).
    const last = this.list[n - 1]!;
    if (last.iova + last.size <= start && last.iova + last.size <= U64_MAX) return null;
    const end = u64(start + size);
    let lo = 0;
    let hi = this.list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const d = this.list[mid]!;
      if (end <= d.iova) hi = mid - 1;
      else if (start >= u64(d.iova + d.size)) lo = mid + 1;
      else return d;
    }
    return null;
  }

  /**
   * `vfio_find_dma_first_node`: index of the lowest mapping ending after `start`, unless it starts at or past
   * `end` (exclusive; 6.1 wraps `start + size` to 64 bits, later kernels reach 2^64).
   */
  firstIndex(start: bigint, size: bigint, end: bigint = u64(start + size)): number {
    let res = -1;
    let lo = 0;
    let hi = this.list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const d = this.list[mid]!;
      if (start < u64(d.iova + d.size)) {
        res = mid;
        if (start >= d.iova) break;
        hi = mid - 1;
      } else lo = mid + 1;
    }
    if (res >= 0 && size !== 0n && this.list[res]!.iova >= end) return -1;
    return res;
  }

  /** `vfio_link_dma` */
  insert(dma: VfioDma): void {
    const l = this.list;
    if (l.length === 0 || l[l.length - 1]!.iova < dma.iova) {
      l.push(dma);
      return;
    }
    let lo = 0;
    let hi = l.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (l[mid]!.iova < dma.iova) lo = mid + 1;
      else hi = mid;
    }
    l.splice(lo, 0, dma);
  }

  /** `vfio_unlink_dma` */
  remove(dma: VfioDma): void {
    const i = this.indexOf(dma);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** Unlink `count` mappings from index `at` in one go (UNMAP of many mappings stays O(n), not O(n²)). */
  removeRange(at: number, count: number): void {
    this.list.splice(at, count);
  }

  indexOf(dma: VfioDma): number {
    let lo = 0;
    let hi = this.list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const d = this.list[mid]!;
      if (d === dma) return mid;
      if (d.iova < dma.iova) lo = mid + 1;
      else if (d.iova > dma.iova) hi = mid - 1;
      else return this.list.indexOf(dma);
    }
    return this.list.indexOf(dma);
  }

  clear(): void {
    this.list.length = 0;
  }
}
