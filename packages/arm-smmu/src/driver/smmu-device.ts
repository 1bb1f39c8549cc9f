/**
 * The driver's side of one SMMUv3 (`struct arm_smmu_device`): probe reads the ID registers, reset
 * builds the stream table and queues in memory and enables the SMMU, and the command queue is how
 * every later change reaches the hardware. Only memory and MMIO registers are touched.
 */
import { ErrnoError, isErrno, type PageAllocator, type PhysicalMemory } from "@iommu/core";
import { type GranuleShift, granulePgsizeBitmap } from "../arch/lpae.js";
import {
  BASE_RA,
  CONS_ERR_MASK,
  CONS_ERR_SHIFT,
  CR0,
  GBPA_ABORT,
  GERROR,
  IDR0,
  IDR1,
  IDR3_RIL,
  IDR5,
  IRQ_CTRL,
  OAS_BITS,
  Q_OVF,
  REG,
  STRTAB_CFG,
} from "../arch/regs.js";
import { CMD, CMD_BYTES, CMDF, EVT_BYTES, STE, STE_BYTES, STE_CONFIG } from "../arch/structures.js";

/** What probe learned from IDR0/IDR1/IDR3/IDR5 (`smmu->features`, `ias`, `oas`, `pgsize_bitmap`). */
export interface SmmuFeatures {
  readonly stage1: boolean;
  readonly stage2: boolean;
  readonly twoLevelStreamTable: boolean;
  readonly coherent: boolean;
  readonly rangeInvalidation: boolean;
  readonly sidBits: number;
  readonly asidBits: number;
  readonly vmidBits: number;
  readonly cmdqLog2: number;
  readonly evtqLog2: number;
  /** IDR5.OAS in bits (unknown encodings → 48, as Linux). */
  readonly oas: number;
  /** max(40 if AArch32 tables else 0, oas): the stage-2 input size Linux uses. */
  readonly ias: number;
  /** Union of the supported granules' page sizes. */
  readonly pgsizeBitmap: bigint;
  readonly granules: readonly GranuleShift[];
}

/** Linux's split for two-level stream tables (STRTAB_SPLIT). */
const STRTAB_SPLIT = 8;
/** A level-1 stream table is at most 1 MiB of 8-byte descriptors (STRTAB_L1_SZ_SHIFT 20): 2^17 of them. */
const STRTAB_L1_BITS_MAX = 17;
/** Command queue size the driver asks for, capped by IDR1 (one 4 KiB frame). */
const CMDQ_LOG2 = 8;
/**
 * EVTQ_MAX_SZ_SHIFT: Q_MAX_SZ_SHIFT (PAGE_SHIFT + CONFIG_CMA_ALIGNMENT, 12 + 8 on Debian) less the 32-byte
 * entry, capped by IDR1.EVENTQS: 2^15 records, so the events of a whole faulting burst (one per access)
 * wait for the handler without overflowing.
 */
const EVTQ_LOG2 = 15;

export type Command = readonly [bigint, bigint];

export class SmmuDevice {
  readonly features: SmmuFeatures;
  readonly name: string;
  private readonly strtab: bigint;
  private readonly strtabCfg: number;
  /** Stream ids the stream table covers, as a bit count (STRTAB_BASE_CFG.LOG2SIZE; `arm_smmu_sid_in_range`). */
  readonly strtabSidBits: number;
  private readonly l2Tables = new Map<number, bigint>();
  private readonly cmdq: bigint;
  private readonly evtq: bigint;
  private cmdqProd = 0;
  private readonly asids = new Set<number>();
  private readonly vmids = new Set<number>();

  constructor(
    readonly memory: PhysicalMemory,
    readonly mmioBase: bigint,
    readonly pages: PageAllocator,
    name?: string,
  ) {
    this.name = name ?? `${mmioBase.toString(16)}.smmuv3`;
    const f = this.probe();
    // Stream table: two-level when supported (L2 tables appear per device), else linear.
    if (f.twoLevelStreamTable && f.sidBits > STRTAB_SPLIT) {
      // arm_smmu_init_strtab_2lvl: the level-1 table is capped, so very wide SIDSIZEs are cut to 25 bits.
      const l1Bits = Math.min(STRTAB_L1_BITS_MAX, f.sidBits - STRTAB_SPLIT);
      this.strtabSidBits = l1Bits + STRTAB_SPLIT;
      this.strtab = this.allocBytes(2 ** l1Bits * 8);
      this.strtabCfg =
        (STRTAB_CFG.FMT_2LVL << STRTAB_CFG.FMT_SHIFT) | (STRTAB_SPLIT << STRTAB_CFG.SPLIT_SHIFT) | this.strtabSidBits;
    } else {
      this.strtabSidBits = f.sidBits;
      this.strtab = this.allocBytes(2 ** f.sidBits * STE_BYTES);
      this.strtabCfg = (STRTAB_CFG.FMT_LINEAR << STRTAB_CFG.FMT_SHIFT) | f.sidBits;
      for (let sid = 0; sid < 2 ** f.sidBits; sid++) this.writeAbortSte(this.strtab + BigInt(sid * STE_BYTES));
    }
    this.cmdq = this.allocBytes(2 ** f.cmdqLog2 * CMD_BYTES);
    const evtq = this.allocQueue(f.evtqLog2, EVT_BYTES);
    this.evtq = evtq.base;
    this.features = { ...f, evtqLog2: evtq.log2 };
    this.reset();
  }

  // ---- probe and reset (arm_smmu_device_hw_probe, arm_smmu_device_reset) ----

  private probe(): SmmuFeatures {
    const idr0 = this.readReg(REG.IDR0);
    const idr1 = this.readReg(REG.IDR1);
    const idr3 = this.readReg(REG.IDR3);
    const idr5 = this.readReg(REG.IDR5);
    const stage1 = (idr0 & IDR0.S1P) !== 0;
    const stage2 = (idr0 & IDR0.S2P) !== 0;
    if (!stage1 && !stage2) throw new ErrnoError("ENODEV", "arm_smmu_device_hw_probe", "no translation support");
    const ttf = (idr0 >>> IDR0.TTF_SHIFT) & 3;
    if (ttf !== IDR0.TTF_AARCH64 && ttf !== 3) {
      throw new ErrnoError("ENODEV", "arm_smmu_device_hw_probe", "AArch64 table format not supported", { ttf });
    }
    const granules: GranuleShift[] = [];
    if (idr5 & IDR5.GRAN4K) granules.push(12);
    if (idr5 & IDR5.GRAN16K) granules.push(14);
    if (idr5 & IDR5.GRAN64K) granules.push(16);
    let pgsizeBitmap = 0n;
    for (const g of granules) pgsizeBitmap |= granulePgsizeBitmap(g);
    const oas = OAS_BITS[idr5 & IDR5.OAS_MASK] ?? 48;
    const ias = Math.max(ttf === 3 ? 40 : 0, oas);
    return {
      stage1,
      stage2,
      twoLevelStreamTable: ((idr0 >>> IDR0.ST_LEVEL_SHIFT) & 3) === IDR0.ST_LEVEL_2LVL,
      coherent: (idr0 & IDR0.COHACC) !== 0,
      rangeInvalidation: (idr3 & IDR3_RIL) !== 0,
      sidBits: (idr1 >>> IDR1.SIDSIZE_SHIFT) & IDR1.SIDSIZE_MASK,
      asidBits: idr0 & IDR0.ASID16 ? 16 : 8,
      vmidBits: idr0 & IDR0.VMID16 ? 16 : 8,
      cmdqLog2: Math.min(CMDQ_LOG2, (idr1 >>> IDR1.CMDQS_SHIFT) & IDR1.CMDQS_MASK),
      evtqLog2: Math.min(EVTQ_LOG2, (idr1 >>> IDR1.EVTQS_SHIFT) & IDR1.EVTQS_MASK),
      oas,
      ias,
      pgsizeBitmap,
      granules,
    };
  }

  private reset(): void {
    const f = this.features;
    this.writeReg(REG.CR0, 0);
    this.writeReg64(REG.STRTAB_BASE, BASE_RA | this.strtab);
    this.writeReg(REG.STRTAB_BASE_CFG, this.strtabCfg);
    this.writeReg64(REG.CMDQ_BASE, BASE_RA | this.cmdq | BigInt(f.cmdqLog2));
    this.writeReg(REG.CMDQ_PROD, 0);
    this.writeReg(REG.CMDQ_CONS, 0);
    this.writeReg(REG.CR0, CR0.CMDQEN);
    // Whatever the firmware left cached is stale now.
    this.submit([cfgiAll(), [BigInt(CMD.TLBI_NSNH_ALL), 0n]]);
    this.writeReg64(REG.EVTQ_BASE, BASE_RA | this.evtq | BigInt(f.evtqLog2));
    this.writeReg(REG.EVTQ_PROD, 0);
    this.writeReg(REG.EVTQ_CONS, 0);
    this.writeReg(REG.CR0, CR0.CMDQEN | CR0.EVTQEN);
    this.writeReg(REG.IRQ_CTRL, IRQ_CTRL.EVTQ_IRQEN | IRQ_CTRL.GERROR_IRQEN);
    // disable_bypass (default on): unattached streams abort.
    this.writeReg(REG.GBPA, GBPA_ABORT | 0x80000000);
    this.writeReg(REG.CR0, CR0.CMDQEN | CR0.EVTQEN | CR0.SMMUEN);
    if ((this.readReg(REG.CR0ACK) & CR0.SMMUEN) === 0) {
      throw new ErrnoError("EIO", "arm_smmu_device_reset", "SMMU did not acknowledge SMMUEN");
    }
  }

  // ---- registers ----

  readReg(off: number): number {
    return this.memory.read32(this.mmioBase + BigInt(off));
  }

  writeReg(off: number, v: number): void {
    this.memory.write32(this.mmioBase + BigInt(off), v);
  }

  private writeReg64(off: number, v: bigint): void {
    this.memory.write64(this.mmioBase + BigInt(off), v);
  }

  // ---- stream table ----

  /** Make sure `sid` has an STE in memory (`arm_smmu_init_l2_strtab`). Throws ENOMEM. */
  ensureSte(sid: number): void {
    if (this.strtabCfg >>> STRTAB_CFG.FMT_SHIFT !== STRTAB_CFG.FMT_2LVL) return;
    const l1 = sid >>> STRTAB_SPLIT;
    if (this.l2Tables.has(l1)) return;
    let l2: bigint;
    try {
      l2 = this.allocBytes(2 ** STRTAB_SPLIT * STE_BYTES);
    } catch (e) {
      if (!isErrno(e, "ENOMEM")) throw e;
      throw new ErrnoError(
        "ENOMEM",
        "arm_smmu_init_l2_strtab",
        "no memory for a level-2 stream table",
        { sid },
        { cause: e },
      );
    }
    for (let i = 0; i < 2 ** STRTAB_SPLIT; i++) this.writeAbortSte(l2 + BigInt(i * STE_BYTES));
    // L1 descriptor: Span = split + 1 covers 2^split STEs.
    this.memory.write64(this.strtab + BigInt(l1 * 8), l2 | BigInt(STRTAB_SPLIT + 1));
    this.l2Tables.set(l1, l2);
  }

  steAddress(sid: number): bigint {
    if (this.strtabCfg >>> STRTAB_CFG.FMT_SHIFT !== STRTAB_CFG.FMT_2LVL) return this.strtab + BigInt(sid * STE_BYTES);
    const l2 = this.l2Tables.get(sid >>> STRTAB_SPLIT);
    if (l2 === undefined) throw new RangeError(`no level-2 stream table for sid ${sid}`);
    return l2 + BigInt((sid % 2 ** STRTAB_SPLIT) * STE_BYTES);
  }

  /** Write an STE (dword 0, holding V and Config, last) and make the SMMU forget its cached copy. */
  writeSte(sid: number, dwords: readonly bigint[]): void {
    const at = this.steAddress(sid);
    for (let i = 7; i >= 0; i--) this.memory.write64(at + BigInt(i * 8), dwords[i] ?? 0n);
    this.submit([[BigInt(CMD.CFGI_STE) | (BigInt(sid) << CMDF.SID_SHIFT), CMDF.LEAF]]);
  }

  private writeAbortSte(at: bigint): void {
    this.memory.write64(at, STE.V | (BigInt(STE_CONFIG.ABORT) << STE.CONFIG_SHIFT));
  }

  // ---- ASIDs / VMIDs ----

  allocAsid(): number | null {
    return allocId(this.asids, 2 ** this.features.asidBits);
  }
  freeAsid(a: number): void {
    this.asids.delete(a);
  }
  allocVmid(): number | null {
    return allocId(this.vmids, 2 ** this.features.vmidBits);
  }
  freeVmid(v: number): void {
    this.vmids.delete(v);
  }

  // ---- command queue (arm_smmu_cmdq_issue_cmdlist) ----

  /** Queue `cmds`, then a CMD_SYNC, and wait for the SMMU to consume them all. */
  submit(cmds: readonly Command[]): void {
    const size = 2 ** this.features.cmdqLog2;
    const mask = 2 * size - 1;
    let i = 0;
    const all = [...cmds, [BigInt(CMD.CMD_SYNC) | (2n << CMDF.CS_SHIFT), 0n] as Command];
    while (i < all.length) {
      const cons = this.readReg(REG.CMDQ_CONS) & mask;
      let space = size - ((this.cmdqProd - cons) & mask);
      if (space === 0) throw new ErrnoError("EIO", "arm_smmu_cmdq_issue_cmdlist", "command queue stuck", {});
      let prod = this.cmdqProd;
      while (space > 0 && i < all.length) {
        const [d0, d1] = all[i++] as Command;
        const at = this.cmdq + BigInt((prod & (size - 1)) * CMD_BYTES);
        this.memory.write64(at, d0);
        this.memory.write64(at + 8n, d1);
        prod = (prod + 1) & mask;
        space--;
      }
      this.cmdqProd = prod;
      this.writeReg(REG.CMDQ_PROD, prod);
      this.pollCons();
    }
  }

  /** Wait for CONS to reach PROD; on a command error skip the bad command as Linux does. */
  private pollCons(): void {
    const size = 2 ** this.features.cmdqLog2;
    const mask = 2 * size - 1;
    for (let tries = 0; tries < 4; tries++) {
      const consReg = this.readReg(REG.CMDQ_CONS);
      if ((consReg & mask) === this.cmdqProd) return;
      const gerror = this.readReg(REG.GERROR);
      const gerrorn = this.readReg(REG.GERRORN);
      if (((gerror ^ gerrorn) & GERROR.CMDQ_ERR) === 0) continue;
      // arm_smmu_cmdq_skip_err: replace the faulting command by a CMD_SYNC, then acknowledge.
      const err = (consReg >>> CONS_ERR_SHIFT) & CONS_ERR_MASK;
      const at = this.cmdq + BigInt((consReg & (size - 1)) * CMD_BYTES);
      this.memory.write64(at, BigInt(CMD.CMD_SYNC));
      this.memory.write64(at + 8n, 0n);
      this.lastCmdError = err;
      this.writeReg(REG.GERRORN, gerrorn ^ GERROR.CMDQ_ERR);
    }
    throw new ErrnoError("EIO", "arm_smmu_cmdq_poll_until_sync", "CMD_SYNC timeout", { prod: this.cmdqProd });
  }

  /** CONS.ERR of the last command the SMMU refused (0 = none). */
  lastCmdError = 0;

  // ---- event queue ----

  /** Records between CONS and PROD, consumed (CONS advanced). Also reports an overflow. */
  drainEvents(): { records: bigint[][]; overflow: boolean } {
    const size = 2 ** this.features.evtqLog2;
    const mask = 2 * size - 1;
    const prodReg = this.readReg(REG.EVTQ_PROD);
    let consReg = this.readReg(REG.EVTQ_CONS);
    const records: bigint[][] = [];
    let cons = consReg & mask;
    const prod = prodReg & mask;
    while (cons !== prod) {
      const at = this.evtq + BigInt((cons & (size - 1)) * EVT_BYTES);
      records.push([0, 1, 2, 3].map((i) => this.memory.read64(at + BigInt(i * 8))));
      cons = (cons + 1) & mask;
    }
    const overflow = ((prodReg ^ consReg) & Q_OVF) !== 0;
    consReg = ((prodReg & Q_OVF) | cons) >>> 0;
    this.writeReg(REG.EVTQ_CONS, consReg);
    return { records, overflow };
  }

  // ---- memory ----

  /**
   * `arm_smmu_init_one_queue`: a queue of 2^log2 entries, halved while the allocation fails and it is still
   * a page or more (a kernel short of contiguous memory gets a smaller queue, not a failed probe).
   */
  private allocQueue(log2: number, entryBytes: number): { base: bigint; log2: number } {
    for (;;) {
      try {
        return { base: this.allocBytes(2 ** log2 * entryBytes), log2 };
      } catch (e) {
        if (!isErrno(e, "ENOMEM") || 2 ** log2 * entryBytes < 4096 || log2 === 0) throw e;
        log2--;
      }
    }
  }

  /** Allocate zeroed, size-aligned contiguous memory for a table or queue. */
  allocBytes(bytes: number): bigint {
    const frames = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(bytes / 4096))));
    return this.pages.alloc(frames);
  }
}

/** CFGI_ALL: CFGI_STE_RANGE with Range 31. */
function cfgiAll(): Command {
  return [BigInt(CMD.CFGI_STE_RANGE), 31n];
}

function allocId(used: Set<number>, limit: number): number | null {
  // ASID/VMID 0 are kept back, as Linux does for ASIDs shared with the CPU.
  for (let id = 1; id < limit; id++) {
    if (!used.has(id)) {
      used.add(id);
      return id;
    }
  }
  return null;
}
