/**
 * io-pgtable-arm, our way: VMSAv8-64 LPAE tables the driver keeps in physical memory, with the
 * descriptor bits Linux writes (reference §4.3). Block mappings where size and alignment allow,
 * -EEXIST over a live entry, split of a block on partial unmap, tables freed when a whole
 * table-sized range is unmapped. TLB maintenance is the caller's, through the two callbacks.
 */
import {
  ErrnoError,
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  isErrno,
  type PageAllocator,
  type PhysicalMemory,
} from "@iommu/core";
import {
  DESC,
  descAddrMask,
  type GranuleShift,
  granulePgsizeBitmap,
  levelShift,
  MAIR_IDX,
  S2_MEMATTR,
  SH,
  stage1StartLevel,
} from "../arch/lpae.js";

export interface LpaeConfig {
  readonly stage: 1 | 2;
  readonly granule: GranuleShift;
  /** Input address bits (stage 1: 48; stage 2: the SMMU's IAS). */
  readonly ias: number;
  /** Output address bits. */
  readonly oas: number;
}

/** TLB maintenance the table code asks for (`iommu_flush_ops`). */
export interface LpaeTlbOps {
  /** A leaf at `iova` of `size` bytes was cleared: add it to the gather (invalidated later). */
  addPage(iova: bigint, size: bigint): void;
  /** A table covering `[iova, iova + size)` is about to be freed: invalidate walks and leaves now. */
  flushWalk(iova: bigint, size: bigint): void;
}

const POW2: number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);

export class LpaePageTable {
  readonly cfg: LpaeConfig;
  readonly pgsizeBitmap: bigint;
  /** Physical address of the start-level table (concatenated tables at stage 2). */
  readonly pgd: bigint;
  readonly startLevel: number;
  /** Entries of the start-level table (several granules when concatenated). */
  readonly pgdEntries: number;
  private readonly tableFrames: number;
  private readonly pgdFrames: number;
  private readonly addrMask: bigint;
  private readonly ptesPerTable: number;
  private frames = 0;
  /** Page size → level whose leaves have that size. */
  private readonly levelBySize = new Map<bigint, number>();
  private readonly iasLimit: bigint;
  private readonly oasLimit: bigint;
  /** Descriptor attributes per (prot, leaf type), computed once. */
  private readonly attrCache = new Map<number, bigint>();
  /**
   * The driver's memory of the last table it reached at each level (the region it covers, as an
   * index at the parent's granularity). Tables only disappear through freeTable/splitBlock, which
   * clear it, so a hit is always what a walk from the pgd would find.
   */
  private readonly cacheKey: number[] = [-1, -1, -1, -1];
  private readonly cacheTable: bigint[] = [0n, 0n, 0n, 0n];

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly alloc: PageAllocator,
    cfg: LpaeConfig,
  ) {
    this.cfg = cfg;
    const g = cfg.granule;
    this.pgsizeBitmap = granulePgsizeBitmap(g);
    this.addrMask = descAddrMask(g);
    this.ptesPerTable = POW2[g - 3] as number;
    this.tableFrames = POW2[g - 12] as number;
    let start = stage1StartLevel(g, cfg.ias);
    let pgdBits = cfg.ias - levelShift(g, start);
    // Stage 2: concatenate up to 16 start-level tables to save a level (ARM_LPAE_S2_MAX_CONCAT_PAGES).
    if (cfg.stage === 2 && start === 0 && POW2[pgdBits]! <= 16) {
      start = 1;
      pgdBits = cfg.ias - levelShift(g, start);
    }
    this.startLevel = start;
    this.pgdEntries = POW2[pgdBits] as number;
    const pgdBytes = this.pgdEntries * 8;
    this.pgdFrames = Math.max(1, Math.ceil(pgdBytes / 4096));
    // The pgd must be aligned to its size; round the frame count up to a power of two.
    this.pgdFrames = 2 ** Math.ceil(Math.log2(this.pgdFrames));
    this.pgd = this.alloc.alloc(this.pgdFrames);
    this.frames += this.pgdFrames;
    for (let level = 1; level <= 3; level++) {
      const size = 1n << BigInt(levelShift(g, level));
      if ((size & this.pgsizeBitmap) !== 0n) this.levelBySize.set(size, level);
    }
    this.iasLimit = 1n << BigInt(cfg.ias);
    this.oasLimit = 1n << BigInt(cfg.oas);
  }

  /** 4 KiB frames this table tree holds (memory cost). */
  get framesInUse(): number {
    return this.frames;
  }

  /** The descriptor bits for `prot` (`arm_lpae_prot_to_pte`), without type and address. */
  protToPte(prot: number): bigint {
    let pte: bigint;
    if (this.cfg.stage === 1) {
      pte = DESC.NG;
      if ((prot & IOMMU_WRITE) === 0 && (prot & IOMMU_READ) !== 0) pte |= DESC.AP_RDONLY;
      if ((prot & IOMMU_PRIV) === 0) pte |= DESC.AP_UNPRIV;
      const idx = prot & IOMMU_MMIO ? MAIR_IDX.DEV : prot & IOMMU_CACHE ? MAIR_IDX.CACHE : MAIR_IDX.NC;
      pte |= idx << DESC.ATTRINDX_SHIFT;
    } else {
      pte = 0n;
      if (prot & IOMMU_READ) pte |= DESC.S2AP_READ;
      if (prot & IOMMU_WRITE) pte |= DESC.S2AP_WRITE;
      const attr = prot & IOMMU_MMIO ? S2_MEMATTR.DEV : prot & IOMMU_CACHE ? S2_MEMATTR.CACHE : S2_MEMATTR.NC;
      pte |= attr << DESC.S2_MEMATTR_SHIFT;
    }
    pte |= (prot & IOMMU_CACHE ? SH.INNER : SH.OUTER) << DESC.SH_SHIFT;
    if (prot & IOMMU_NOEXEC) pte |= DESC.XN;
    return pte | DESC.AF;
  }

  /**
   * map_pages: map `pgcount` leaves of `pgsize` at `iova` → `paddr`. Returns bytes mapped; on error
   * the ones already mapped stay (the core unwinds them). EINVAL bad size, ERANGE beyond IAS/OAS, EINVAL
   * neither read nor write, EEXIST over a live mapping, ENOMEM when no frame is left for a table.
   */
  map(
    iova: bigint,
    paddr: bigint,
    pgsize: bigint,
    pgcount: number,
    prot: number,
  ): { mapped: bigint; error: ErrnoError | null } {
    const op = "arm_lpae_map_pages";
    const level = this.levelBySize.get(pgsize);
    if (level === undefined || pgcount < 1) {
      return { mapped: 0n, error: new ErrnoError("EINVAL", op, "page size not supported", { pgsize, pgcount }) };
    }
    const total = pgcount === 1 ? pgsize : pgsize * BigInt(pgcount);
    if (iova < 0n || paddr < 0n || iova + total > this.iasLimit || paddr + total > this.oasLimit) {
      return { mapped: 0n, error: new ErrnoError("ERANGE", op, "address beyond IAS/OAS", { iova, paddr, total }) };
    }
    // No access at all is EINVAL (6.12; only iommufd can ask: type1 refuses such a map before the driver).
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) {
      return { mapped: 0n, error: new ErrnoError("EINVAL", op, "neither read nor write", { prot }) };
    }
    if (((iova | paddr) & (pgsize - 1n)) !== 0n) {
      return {
        mapped: 0n,
        error: new ErrnoError("EINVAL", op, "address not aligned to page size", { iova, paddr, pgsize }),
      };
    }
    const attrKey = prot * 2 + (level === 3 ? 1 : 0);
    let attrs = this.attrCache.get(attrKey);
    if (attrs === undefined) {
      attrs = this.protToPte(prot) | (level === 3 ? DESC.TYPE_PAGE : DESC.TYPE_BLOCK);
      this.attrCache.set(attrKey, attrs);
    }
    let mapped = 0n;
    this.created.length = 0;
    while (mapped < total) {
      let table: bigint;
      try {
        table = this.tableFor(iova + mapped, level, true) as bigint;
      } catch (e) {
        return this.failMap(mapped, asErrno(e, op, iova + mapped));
      }
      const first = this.index(iova + mapped, level);
      const n = pgcount === 1 ? 1 : Math.min(this.ptesPerTable - first, Number((total - mapped) / pgsize));
      if (n === 1) {
        // The common single-leaf case: one read, one write.
        const ptep = table + BigInt(first * 8);
        const old = this.memory.read64(ptep);
        if (old !== 0n) {
          if (level === 3 || (old & DESC.TYPE_MASK) === DESC.TYPE_BLOCK || this.subtreeMapped(old, level + 1)) {
            return this.failMap(mapped, new ErrnoError("EEXIST", op, "IOVA already mapped", { iova: iova + mapped }));
          }
          this.memory.write64(ptep, 0n);
          this.tlbOps?.flushWalk(iova + mapped, pgsize);
          this.freeTable(old & this.addrMask, level + 1);
        }
        this.memory.write64(ptep, attrs | (paddr + mapped));
        mapped += pgsize;
        continue;
      }
      // Check the whole run before writing so a refusal leaves this table untouched.
      for (let i = 0; i < n; i++) {
        const pte = this.memory.read64(table + BigInt((first + i) * 8));
        if (pte === 0n) continue;
        if (level === 3 || (pte & DESC.TYPE_MASK) === DESC.TYPE_BLOCK || this.subtreeMapped(pte, level + 1)) {
          const at = iova + mapped + BigInt(i) * pgsize;
          return this.failMap(mapped, new ErrnoError("EEXIST", op, "IOVA already mapped", { iova: at }));
        }
      }
      for (let i = 0; i < n; i++) {
        const ptep = table + BigInt((first + i) * 8);
        const at = iova + mapped + BigInt(i) * pgsize;
        const old = this.memory.read64(ptep);
        if (old !== 0n) {
          // An empty table where a block goes: invalidate walks through it, then free it.
          this.memory.write64(ptep, 0n);
          this.tlbOps?.flushWalk(at, pgsize);
          this.freeTable(old & this.addrMask, level + 1);
        }
        this.memory.write64(ptep, attrs | (paddr + mapped + BigInt(i) * pgsize));
      }
      mapped += BigInt(n) * pgsize;
    }
    return { mapped, error: null };
  }

  /** Tables the current map call created (so a failure can take back the ones left empty). */
  private readonly created: { ptep: bigint; table: bigint; level: number }[] = [];

  /**
   * A map that fails leaves no trace of its own: tables it created that hold nothing are unlinked
   * and freed (io-pgtable keeps them; no walk can have cached an empty table's leaves). Leaves it
   * did map stay for the core's unwind, with their tables.
   */
  private failMap(mapped: bigint, error: ErrnoError): { mapped: bigint; error: ErrnoError } {
    for (let i = this.created.length - 1; i >= 0; i--) {
      const c = this.created[i] as { ptep: bigint; table: bigint; level: number };
      let empty = true;
      for (let k = 0; k < this.ptesPerTable && empty; k++) empty = this.memory.read64(c.table + BigInt(k * 8)) === 0n;
      if (!empty) continue;
      this.memory.write64(c.ptep, 0n);
      this.freeTable(c.table, c.level);
    }
    this.created.length = 0;
    return { mapped, error };
  }

  /** TLB callbacks used by map (table replacement) and unmap; set by the domain. */
  tlbOps: LpaeTlbOps | null = null;

  /**
   * unmap_pages: clear `pgcount` leaves of `pgsize` from `iova`, splitting a larger block that
   * covers them. Returns bytes unmapped, stopping at the first hole (0 if `iova` is not mapped).
   */
  unmap(iova: bigint, pgsize: bigint, pgcount: number): bigint {
    const level = this.levelBySize.get(pgsize);
    if (level === undefined || pgcount < 1) return 0n;
    if ((iova & (pgsize - 1n)) !== 0n) return 0n;
    const total = pgcount === 1 ? pgsize : pgsize * BigInt(pgcount);
    if (iova < 0n || iova + total > this.iasLimit) return 0n;
    let done = 0n;
    while (done < total) {
      const at = iova + done;
      const table = this.tableForUnmap(at, level);
      if (table === null) return done;
      const first = this.index(at, level);
      const n = pgcount === 1 ? 1 : Math.min(this.ptesPerTable - first, Number((total - done) / pgsize));
      for (let i = 0; i < n; i++) {
        const ptep = table + BigInt((first + i) * 8);
        const pte = this.memory.read64(ptep);
        if (pte === 0n) return done;
        this.memory.write64(ptep, 0n);
        const va = at + BigInt(i) * pgsize;
        if (level < 3 && (pte & DESC.TYPE_MASK) === DESC.TYPE_TABLE) {
          // A whole table's range: flush walks (and leaves) through it before freeing it.
          this.tlbOps?.flushWalk(va, pgsize);
          this.freeTable(pte & this.addrMask, level + 1);
        } else {
          this.tlbOps?.addPage(va, pgsize);
        }
        done += pgsize;
      }
    }
    return done;
  }

  /** iova_to_phys: output address for `iova`, 0n when nothing is mapped there. */
  iovaToPhys(iova: bigint): bigint {
    if (iova < 0n || iova >> BigInt(this.cfg.ias) !== 0n) return 0n;
    let table = this.pgd;
    for (let level = this.startLevel; level <= 3; level++) {
      const pte = this.memory.read64(table + BigInt(this.index(iova, level) * 8));
      if ((pte & DESC.VALID) === 0n) return 0n;
      if (level === 3 || (pte & DESC.TYPE_MASK) === DESC.TYPE_BLOCK) {
        const mask = (1n << BigInt(levelShift(this.cfg.granule, level))) - 1n;
        return (pte & this.addrMask & ~mask) | (iova & mask);
      }
      table = pte & this.addrMask;
    }
    return 0n;
  }

  /** Free every table (domain_free). */
  free(): void {
    this.freeTable(this.pgd, this.startLevel, this.pgdEntries, this.pgdFrames);
  }

  private index(iova: bigint, level: number): number {
    const shift = levelShift(this.cfg.granule, level);
    const entries = level === this.startLevel ? this.pgdEntries : this.ptesPerTable;
    return Math.floor(Number(iova) / (POW2[shift] as number)) % entries;
  }

  /** Table at `level` holding `iova`'s entry; creates missing tables when `create`. Throws EEXIST over a block. */
  private tableFor(iova: bigint, level: number, create: boolean): bigint | null {
    const key = level > this.startLevel ? Math.floor(Number(iova) / this.parentSpan(level)) : -1;
    if (key >= 0 && this.cacheKey[level] === key) return this.cacheTable[level] as bigint;
    let table = this.pgd;
    for (let l = this.startLevel; l < level; l++) {
      const ptep = table + BigInt(this.index(iova, l) * 8);
      const pte = this.memory.read64(ptep);
      if (pte === 0n) {
        if (!create) return null;
        const t = this.allocTable();
        this.memory.write64(ptep, t | DESC.TYPE_TABLE);
        this.created.push({ ptep, table: t, level: l + 1 });
        table = t;
        continue;
      }
      if ((pte & DESC.TYPE_MASK) !== DESC.TYPE_TABLE) {
        throw new ErrnoError("EEXIST", "arm_lpae_map_pages", "a larger block already maps this IOVA", { iova });
      }
      table = pte & this.addrMask;
    }
    this.remember(level, key, table);
    return table;
  }

  /** Bytes one entry of the table above `level` covers. */
  private parentSpan(level: number): number {
    return POW2[levelShift(this.cfg.granule, level - 1)] as number;
  }

  private remember(level: number, key: number, table: bigint): void {
    if (key < 0) return;
    this.cacheKey[level] = key;
    this.cacheTable[level] = table;
  }

  private forgetTables(): void {
    this.cacheKey.fill(-1);
  }

  /** Like tableFor, but a block above `level` is split into a table of smaller leaves first. */
  private tableForUnmap(iova: bigint, level: number): bigint | null {
    const key = level > this.startLevel ? Math.floor(Number(iova) / this.parentSpan(level)) : -1;
    if (key >= 0 && this.cacheKey[level] === key) return this.cacheTable[level] as bigint;
    let table = this.pgd;
    for (let l = this.startLevel; l < level; l++) {
      const ptep = table + BigInt(this.index(iova, l) * 8);
      const pte = this.memory.read64(ptep);
      if (pte === 0n) return null;
      if ((pte & DESC.TYPE_MASK) === DESC.TYPE_BLOCK) {
        table = this.splitBlock(ptep, pte, l);
        continue;
      }
      table = pte & this.addrMask;
    }
    this.remember(level, key, table);
    return table;
  }

  /**
   * Replace the block `pte` at `level` by a next-level table of leaves with the same attributes
   * (`arm_lpae_split_blk_unmap`). The old block stays in the TLB until the caller's invalidation of
   * the unmapped range, which covers it.
   */
  private splitBlock(ptep: bigint, pte: bigint, level: number): bigint {
    this.forgetTables();
    const t = this.allocTable();
    const childShift = BigInt(levelShift(this.cfg.granule, level + 1));
    const childType = level + 1 === 3 ? DESC.TYPE_PAGE : DESC.TYPE_BLOCK;
    const attrs = (pte & ~this.addrMask & ~DESC.TYPE_MASK) | childType;
    const base = pte & this.addrMask;
    for (let i = 0; i < this.ptesPerTable; i++) {
      this.memory.write64(t + BigInt(i * 8), attrs | (base + (BigInt(i) << childShift)));
    }
    this.memory.write64(ptep, t | DESC.TYPE_TABLE);
    return t;
  }

  /** True if any valid leaf lives under the table `pte` (a table at `level`). */
  private subtreeMapped(pte: bigint, level: number): boolean {
    if ((pte & DESC.TYPE_MASK) !== DESC.TYPE_TABLE) return (pte & DESC.VALID) !== 0n;
    const t = pte & this.addrMask;
    for (let i = 0; i < this.ptesPerTable; i++) {
      const c = this.memory.read64(t + BigInt(i * 8));
      if (c === 0n) continue;
      if (level === 3 || (c & DESC.TYPE_MASK) === DESC.TYPE_BLOCK) return true;
      if (this.subtreeMapped(c, level + 1)) return true;
    }
    return false;
  }

  private allocTable(): bigint {
    const t = this.alloc.alloc(this.tableFrames);
    this.frames += this.tableFrames;
    return t;
  }

  private freeTable(t: bigint, level: number, entries = this.ptesPerTable, frames = this.tableFrames): void {
    this.forgetTables();
    if (level < 3) {
      for (let i = 0; i < entries; i++) {
        const pte = this.memory.read64(t + BigInt(i * 8));
        if ((pte & DESC.TYPE_MASK) === DESC.TYPE_TABLE) this.freeTable(pte & this.addrMask, level + 1);
      }
    }
    for (let f = 0; f < frames; f++) this.alloc.freeFrame(t + BigInt(f * 4096));
    this.frames -= frames;
  }
}

/** The walk's errno (EEXIST), or the page pool's ENOMEM under this op's name; anything else is a bug: rethrown. */
function asErrno(e: unknown, op: string, iova: bigint): ErrnoError {
  if (!isErrno(e)) throw e;
  if (e.code !== "ENOMEM") return e;
  return new ErrnoError("ENOMEM", op, "no memory for a page table", { iova }, { cause: e });
}
