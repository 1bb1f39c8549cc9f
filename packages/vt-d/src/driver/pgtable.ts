/**
 * The driver's side of the second-level page table (Linux intel/iommu.c `__domain_mapping`,
 * `pfn_to_dma_pte`, `dma_pte_clear_level`): 4 KiB tables of 512 8-byte entries in physical memory, R/W on
 * every present entry, PS on 2 MiB / 1 GiB leaves. Superpages are chosen by the table itself where iova,
 * phys and the remaining length allow (`hardware_largepage_caps`), whatever page size the core asked for.
 */
import { isErrno, type PageAllocator, type PhysicalMemory } from "@iommu/core";
import { PTE } from "../arch/regs.js";

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

/**
 * The driver's own index of its tables (what Linux gets from phys_to_virt): for each table, the child
 * tables by slot. Entries themselves are only in physical memory, the hardware's format; the index costs
 * one pointer per slot of non-leaf tables, so memory stays within 1 + 1/512 of the hardware format's.
 */
interface TableNode {
  readonly phys: bigint;
  /** `phys` as a number when exact (below 2^53), else NaN: entry addresses then cost one BigInt, not two. */
  readonly physN: number;
  /** Child tables by slot (levels > 1). */
  readonly kids: (TableNode | undefined)[] | null;
}

/** Below this a bigint converts to a JS number exactly. */
const SAFE = 1n << 53n;
const SAFE_N = 2 ** 53;

function node(phys: bigint, level: number): TableNode {
  return {
    phys,
    physN: phys < SAFE ? Number(phys) : Number.NaN,
    kids: level > 1 ? new Array<TableNode | undefined>(512) : null,
  };
}

/** Address of entry `i` of table `n`. */
function entryAddr(n: TableNode, i: number): bigint {
  return !Number.isNaN(n.physN) ? BigInt(n.physN + i * 8) : n.phys + BigInt(i * 8);
}

export class SecondLevelTable {
  readonly root: bigint;
  private readonly rootNode: TableNode;
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
    this.rootNode = node(this.root, levels);
    this.pfnLimit = 512 ** levels;
  }

  /** Highest pfn the table can address + 1. */
  readonly pfnLimit: number;

  /** Clear one leaf entry the caller found with `lookup`. */
  clearEntry(at: bigint): void {
    this.memory.write64(at, 0n);
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
   * a leaf above `target` is in the way. Throws ENOMEM when the frame allocator is exhausted.
   */
  private entryAt(pfn: number, target: number): PteRef | null {
    let n = this.rootNode;
    for (let level = this.levels; ; level--) {
      const i = idxAt(pfn, level);
      if (level === target) {
        const at = entryAddr(n, i);
        return { at, value: this.memory.read64(at), level };
      }
      const kids = n.kids as (TableNode | undefined)[];
      let kid = kids[i];
      if (!kid) {
        // No child table: the slot is empty or a superpage leaf.
        const at = entryAddr(n, i);
        if ((this.memory.read64(at) & 3n) !== 0n) return null;
        kid = node(this.alloc.alloc(), level - 1);
        this.tablePages++;
        this.memory.write64(at, kid.phys | PTE.R | PTE.W);
        kids[i] = kid;
      }
      n = kid;
    }
  }

  /** Lowest present entry on the walk to `pfn`, or the non-present one that ends it (`pfn_to_dma_pte(.., 0)`). */
  lookup(pfn: number): PteRef {
    let n = this.rootNode;
    for (let level = this.levels; ; level--) {
      const i = idxAt(pfn, level);
      const kid = n.kids?.[i];
      if (!kid) {
        const at = entryAddr(n, i);
        return { at, value: this.memory.read64(at), level };
      }
      n = kid;
    }
  }

  /** The index node of the table holding `pfn`'s entry at `level`, if the walk reaches it. */
  private nodeAt(pfn: number, level: number): TableNode | undefined {
    let n: TableNode | undefined = this.rootNode;
    for (let l = this.levels; l > level && n; l--) n = n.kids?.[idxAt(pfn, l)];
    return n;
  }

  /**
   * Map `pages` 4 KiB pages. `attr` holds the R/W/SNP bits. Returns the pages mapped before an allocation
   * failure (then `error` is set), as `__domain_mapping` leaves them for the core to unwind.
   */
  map(
    iovPfn: number,
    physPfn: number,
    pages: number,
    attr: bigint,
    onSuperpageClear: (pfn: number, n: number) => void,
  ): { done: number; nomem: boolean } {
    if (pages === 1) return this.mapOne(iovPfn, physPfn, attr);
    let done = 0;
    const attrPs = attr | PTE.PS;
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
        if (isErrno(e, "ENOMEM")) return { done, nomem: true };
        throw e;
      }
      if (ref === null) {
        this.warn(iv);
        done += 1;
        continue;
      }
      // Write consecutive entries of this table at this level (the inner loop of __domain_mapping).
      let at = ref.at;
      let slot = idxAt(iv, lvl);
      let first = true;
      while (done < pages && slot < 512) {
        const rem = pages - done;
        if (lvl > 1 && rem < lvlPages) break;
        const pfnNow = iovPfn + done;
        let cur = first ? ref.value : this.memory.read64(at);
        first = false;
        if (lvl > 1 && (cur & 3n) !== 0n && (cur & PTE.PS) === 0n) {
          // switch_to_super_page: small-page tables under the new superpage are dropped first.
          const parent = this.nodeAt(pfnNow, lvl) as TableNode;
          const kids = parent.kids as (TableNode | undefined)[];
          this.releaseSubtree(kids[slot] as TableNode);
          kids[slot] = undefined;
          this.memory.write64(at, 0n);
          onSuperpageClear(pfnNow, lvlPages);
          cur = 0n;
        }
        const outPfn = physPfn + done;
        // The output address in one conversion while exact (below 2^53), else shifted in BigInt.
        const val =
          (outPfn * 4096 < SAFE_N ? BigInt(outPfn * 4096) : BigInt(outPfn) << 12n) | (lvl > 1 ? attrPs : attr);
        if (cur !== 0n) this.warn(pfnNow, cur, val);
        else this.memory.write64(at, val);
        done += lvlPages;
        at += 8n;
        slot++;
      }
    }
    return { done, nomem: false };
  }

  /** `map` of a single 4 KiB page (always a level-1 leaf): the loop above without its bookkeeping. */
  private mapOne(iovPfn: number, physPfn: number, attr: bigint): { done: number; nomem: boolean } {
    let ref: PteRef | null;
    try {
      ref = this.entryAt(iovPfn, 1);
    } catch (e) {
      if (isErrno(e, "ENOMEM")) return { done: 0, nomem: true };
      throw e;
    }
    if (ref === null) {
      this.warn(iovPfn);
      return { done: 1, nomem: false };
    }
    const val = (physPfn * 4096 < SAFE_N ? BigInt(physPfn * 4096) : BigInt(physPfn) << 12n) | attr;
    if (ref.value !== 0n) this.warn(iovPfn, ref.value, val);
    else this.memory.write64(ref.at, val);
    return { done: 1, nomem: false };
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
    this.clearLevel(this.levels, this.rootNode, 0, startPfn, lastPfn, mode);
  }

  private clearLevel(
    level: number,
    n: TableNode,
    basePfn: number,
    start: number,
    last: number,
    mode: SuperpageUnmap,
  ): void {
    const span = LEVEL_PAGES[level] as number;
    let pfn = Math.max(start, basePfn);
    for (let i = idxAt(pfn, level); i < 512; i++) {
      const levelPfn = Math.floor(pfn / span) * span;
      if (levelPfn > last) break;
      const kid = n.kids?.[i];
      const whole = start <= levelPfn && last >= levelPfn + span - 1;
      const at = kid && !whole ? 0n : entryAddr(n, i);
      if (kid) {
        if (whole) {
          this.releaseSubtree(kid);
          (n.kids as (TableNode | undefined)[])[i] = undefined;
          this.memory.write64(at, 0n);
        } else {
          this.clearLevel(level - 1, kid, levelPfn, start, last, mode);
        }
      } else {
        const v = this.memory.read64(at);
        if ((v & 3n) !== 0n) {
          if (whole || mode === "whole") {
            this.memory.write64(at, 0n);
          } else {
            // Split the superpage into next-level entries, then clear the covered part of them.
            const t = this.splitSuperpage(at, v, level);
            (n.kids as (TableNode | undefined)[])[i] = t;
            this.clearLevel(level - 1, t, levelPfn, start, last, mode);
          }
        }
      }
      pfn = levelPfn + span;
    }
  }

  private splitSuperpage(at: bigint, v: bigint, level: number): TableNode {
    const t = node(this.alloc.alloc(), level - 1);
    this.tablePages++;
    const childSize = 1n << BigInt(12 + 9 * (level - 2));
    const base = v & PTE.ADDR_MASK;
    const flags = (v & ~PTE.ADDR_MASK & ~PTE.PS) | (level - 1 > 1 ? PTE.PS : 0n);
    for (let i = 0; i < 512; i++) this.memory.write64(t.phys + BigInt(i * 8), (base + BigInt(i) * childSize) | flags);
    this.memory.write64(at, t.phys | PTE.R | PTE.W);
    return t;
  }

  /** Put a table and every table below it on the freelist (`dma_pte_list_pagetables`). */
  private releaseSubtree(n: TableNode): void {
    if (n.kids) for (const k of n.kids) if (k) this.releaseSubtree(k);
    this.freelist.push(n.phys);
    this.tablePages--;
  }

  /** Return freed table frames to the allocator (after the IOTLB flush). */
  drainFreelist(): void {
    if (this.freelist.length === 0) return;
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
        if (level === 1 || (v & PTE.PS) !== 0n)
          out.push([pfn, Number((v & PTE.ADDR_MASK) >> 12n), span, Number(v & 3n)]);
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
