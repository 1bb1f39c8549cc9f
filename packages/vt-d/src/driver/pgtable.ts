/**
 * The driver's side of the second-level page table (Linux intel/iommu.c `__domain_mapping`,
 * `pfn_to_dma_pte`, `dma_pte_clear_level`): 4 KiB tables of 512 8-byte entries in physical memory, R/W on
 * every present entry, PS on 2 MiB / 1 GiB leaves. Superpages are chosen by the table itself where iova,
 * phys and the remaining length allow (`hardware_largepage_caps`), whatever page size the core asked for.
 */
import type { PageAllocator, PhysicalMemory } from "@iommu/core";
import { PTE } from "../hw/regs.js";

/** What to do when an unmap covers only part of a superpage. */
export type SuperpageUnmap =
  /** Linux 6.1: the whole superpage goes and its size is reported as unmapped. */
  | "whole"
  /** Split the superpage into next-level entries and clear only the range (io-pgtable style). */
  | "split";

const LEVEL_PAGES = [0, 1, 512, 512 * 512, 512 ** 3, 512 ** 4];

function idxAt(pfn: number, level: number): number {
  return Math.floor(pfn / (LEVEL_PAGES[level] as number)) % 512;
}

export interface PteRef {
  /** Physical address of the entry. */
  readonly at: bigint;
  readonly value: bigint;
  readonly level: number;
}

export class SecondLevelTable {
  readonly root: bigint;
  /** Frames holding tables (the root included). */
  tablePages = 1;
  /** Frames released by unmap, waiting for the IOTLB flush that must precede their reuse. */
  readonly freelist: bigint[] = [];
  /** `pr_crit` lines from mapping over a present entry (Linux warns and keeps the old entry). */
  readonly warnings: string[] = [];

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly alloc: PageAllocator,
    readonly levels: number,
    /** 0, 1 (2 MiB) or 2 (2 MiB + 1 GiB). */
    readonly superpage: number,
  ) {
    this.root = alloc.alloc();
  }

  /** Highest pfn the table can address + 1. */
  get pfnLimit(): number {
    return 512 ** this.levels;
  }

  /** Largest leaf level usable at these pfns for `pages` pages (`hardware_largepage_caps`). */
  largepageLevel(iovPfn: number, physPfn: number, pages: number): number {
    let level = 1;
    let support = this.superpage;
    let iv = iovPfn;
    let ph = physPfn;
    let n = pages;
    while (support > 0 && iv % 512 === 0 && ph % 512 === 0) {
      n = Math.floor(n / 512);
      if (n === 0) break;
      iv /= 512;
      ph /= 512;
      level++;
      support--;
    }
    return level;
  }

  /**
   * The entry for `pfn` at `target` level, allocating tables on the way (`pfn_to_dma_pte`), or null when
   * a leaf above `target` is in the way. Throws RangeError when the frame allocator is exhausted.
   */
  private entryAt(pfn: number, target: number): PteRef | null {
    let table = this.root;
    for (let level = this.levels; ; level--) {
      const at = table + BigInt(idxAt(pfn, level) * 8);
      const v = this.memory.read64(at);
      if (level === target) return { at, value: v, level };
      if ((v & 3n) === 0n) {
        const t = this.alloc.alloc();
        this.tablePages++;
        this.memory.write64(at, t | PTE.R | PTE.W);
        table = t;
        continue;
      }
      if ((v & PTE.PS) !== 0n) return null;
      table = v & PTE.ADDR_MASK;
    }
  }

  /** Lowest present entry on the walk to `pfn`, or the non-present one that ends it (`pfn_to_dma_pte(.., 0)`). */
  lookup(pfn: number): PteRef {
    let table = this.root;
    for (let level = this.levels; ; level--) {
      const at = table + BigInt(idxAt(pfn, level) * 8);
      const v = this.memory.read64(at);
      if (level === 1 || (v & 3n) === 0n || (v & PTE.PS) !== 0n) return { at, value: v, level };
      table = v & PTE.ADDR_MASK;
    }
  }

  /**
   * Map `pages` 4 KiB pages. `attr` holds the R/W/SNP bits. Returns the pages mapped before an allocation
   * failure (then `error` is set), as `__domain_mapping` leaves them for the core to unwind.
   */
  map(iovPfn: number, physPfn: number, pages: number, attr: bigint, onSuperpageClear: (pfn: number, n: number) => void): { done: number; nomem: boolean } {
    let done = 0;
    while (done < pages) {
      const iv = iovPfn + done;
      const ph = physPfn + done;
      const left = pages - done;
      const lvl = this.largepageLevel(iv, ph, left);
      const lvlPages = LEVEL_PAGES[lvl] as number;
      let ref: PteRef | null;
      try {
        ref = this.entryAt(iv, lvl);
      } catch (e) {
        if (e instanceof RangeError) return { done, nomem: true };
        throw e;
      }
      if (ref === null) {
        this.warn(iv);
        done += 1;
        continue;
      }
      // Write consecutive entries of this table at this level (the inner loop of __domain_mapping).
      let at = ref.at;
      let slot = Number((at & 0xfffn) >> 3n);
      let first = true;
      while (done < pages && slot < 512) {
        const rem = pages - done;
        if (lvl > 1 && rem < lvlPages) break;
        const pfnNow = iovPfn + done;
        let cur = first ? ref.value : this.memory.read64(at);
        first = false;
        if (lvl > 1 && (cur & 3n) !== 0n && (cur & PTE.PS) === 0n) {
          // switch_to_super_page: small-page tables under the new superpage are dropped first.
          this.releaseSubtree(cur & PTE.ADDR_MASK, lvl - 1);
          this.memory.write64(at, 0n);
          onSuperpageClear(pfnNow, lvlPages);
          cur = 0n;
        }
        const phys = BigInt(physPfn + done) << 12n;
        const val = phys | attr | (lvl > 1 ? PTE.PS : 0n);
        if (cur !== 0n) this.warn(pfnNow, cur, val);
        else this.memory.write64(at, val);
        done += lvlPages;
        at += 8n;
        slot++;
      }
    }
    return { done, nomem: false };
  }

  private warn(pfn: number, was?: bigint, want?: bigint): void {
    this.warnings.push(
      `DMAR: ERROR: DMA PTE for vPFN 0x${pfn.toString(16)} already set (to ${was?.toString(16) ?? "?"} not ${want?.toString(16) ?? "?"})`,
    );
  }

  /**
   * Clear `[startPfn, lastPfn]` (`dma_pte_clear_level`): entries wholly inside go (their tables onto the
   * freelist); partly covered tables are recursed into; partly covered superpages follow `mode`.
   */
  clearRange(startPfn: number, lastPfn: number, mode: SuperpageUnmap): void {
    this.clearLevel(this.levels, this.root, 0, startPfn, lastPfn, mode);
  }

  private clearLevel(level: number, table: bigint, basePfn: number, start: number, last: number, mode: SuperpageUnmap): void {
    const span = LEVEL_PAGES[level] as number;
    let pfn = Math.max(start, basePfn);
    let i = idxAt(pfn, level);
    for (; i < 512; i++) {
      const levelPfn = Math.floor(pfn / span) * span;
      if (levelPfn > last) break;
      const at = table + BigInt(i * 8);
      const v = this.memory.read64(at);
      if ((v & 3n) !== 0n) {
        const leaf = level === 1 || (v & PTE.PS) !== 0n;
        const whole = start <= levelPfn && last >= levelPfn + span - 1;
        if (whole || (leaf && mode === "whole")) {
          if (!leaf) this.releaseSubtree(v & PTE.ADDR_MASK, level - 1);
          this.memory.write64(at, 0n);
        } else if (!leaf) {
          this.clearLevel(level - 1, v & PTE.ADDR_MASK, levelPfn, start, last, mode);
        } else {
          // Split the superpage into next-level entries, then clear the covered part of them.
          const t = this.splitSuperpage(at, v, level);
          this.clearLevel(level - 1, t, levelPfn, start, last, mode);
        }
      }
      pfn = levelPfn + span;
    }
  }

  private splitSuperpage(at: bigint, v: bigint, level: number): bigint {
    const t = this.alloc.alloc();
    this.tablePages++;
    const childSize = 1n << BigInt(12 + 9 * (level - 2));
    const base = v & PTE.ADDR_MASK;
    const flags = (v & ~PTE.ADDR_MASK & ~PTE.PS) | (level - 1 > 1 ? PTE.PS : 0n);
    for (let i = 0; i < 512; i++) this.memory.write64(t + BigInt(i * 8), (base + BigInt(i) * childSize) | flags);
    this.memory.write64(at, t | PTE.R | PTE.W);
    return t;
  }

  /** Put a table and every table below it on the freelist (`dma_pte_list_pagetables`). */
  private releaseSubtree(table: bigint, level: number): void {
    if (level > 1) {
      for (let i = 0; i < 512; i++) {
        const v = this.memory.read64(table + BigInt(i * 8));
        if ((v & 3n) !== 0n && (v & PTE.PS) === 0n) this.releaseSubtree(v & PTE.ADDR_MASK, level - 1);
      }
    }
    this.freelist.push(table);
    this.tablePages--;
  }

  /** Return freed table frames to the allocator (after the IOTLB flush). */
  drainFreelist(): void {
    for (const f of this.freelist) this.alloc.freeFrame(f);
    this.freelist.length = 0;
  }

  /** Every present leaf, in iova order: [iovaPfn, physPfn, pages, rights]. For tests and debugfs-like dumps. */
  leaves(): [number, number, number, number][] {
    const out: [number, number, number, number][] = [];
    const rec = (table: bigint, level: number, base: number) => {
      const span = LEVEL_PAGES[level] as number;
      for (let i = 0; i < 512; i++) {
        const v = this.memory.read64(table + BigInt(i * 8));
        if ((v & 3n) === 0n) continue;
        const pfn = base + i * span;
        if (level === 1 || (v & PTE.PS) !== 0n) out.push([pfn, Number((v & PTE.ADDR_MASK) >> 12n), span, Number(v & 3n)]);
        else rec(v & PTE.ADDR_MASK, level - 1, pfn);
      }
    };
    rec(this.root, this.levels, 0);
    return out;
  }

  /** Free every table, the root included (`domain_exit`). */
  destroy(): void {
    this.clearRange(0, this.pfnLimit - 1, "whole");
    this.freelist.push(this.root);
    this.tablePages--;
    this.drainFreelist();
  }
}

export { LEVEL_PAGES };
