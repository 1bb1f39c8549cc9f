/**
 * An SMMUv2 hardware model (MMU-500-like, AArch64 contexts): stream matching registers (SMR) pick
 * a stream-to-context register (S2CR) that bypasses, faults or names a context bank; a stage-1
 * context bank walks VMSAv8-64 tables from TTBR0/TCR, caches leaves in the TLB per context until
 * TLBIVA/TLBIASID/TLBIALLNSNH, and reports faults in its FSR/FAR/FSYNR0 registers with an
 * interrupt. Like the v3 model it only sees registers and memory.
 */
import type { IommuHardware, MmioHandler, PhysicalMemory, TranslateRequest, Translation } from "@iommu/core";
import type { GranuleShift } from "../arch/lpae.js";
import { stage1StartLevel } from "../arch/lpae.js";
import {
  V2_CB,
  V2_CBA2R_VA64,
  V2_CBAR,
  V2_FSR,
  V2_FSYNR0_WNR,
  V2_GFSR,
  V2_GR0,
  V2_GR1,
  V2_ID0,
  V2_ID1,
  V2_ID2,
  V2_MMIO_SIZE,
  V2_NUMPAGENDXB,
  V2_S2CR,
  V2_SCR0,
  V2_SCTLR,
  V2_SIZE_BITS,
  V2_SMR,
  V2_TCR,
} from "../arch/smmu-v2-regs.js";
import { EVT, tgToShift } from "../arch/structures.js";
import { leafEntry, Tlb } from "./tlb.js";
import { leafPermissions, walk } from "./walker.js";

export interface SmmuV2HardwareOptions {
  readonly memory: PhysicalMemory;
  readonly mmioBase: bigint;
  readonly name?: string;
  /** Stream match register groups (ID0.NUMSMRG). Default 16. */
  readonly streamMatchGroups?: number;
  /** Context banks (ID1.NUMCB), at most 8 in this register layout. Default 8. */
  readonly contextBanks?: number;
  /** Stream id bits (ID0.NUMSIDB). Default 15. */
  readonly streamIdBits?: number;
  /** Output (IAS → IPA for stage 1) size in bits; one of 32/36/40/42/44/48. Default 48. */
  readonly ipaBits?: number;
  readonly tlbCapacity?: number;
}

const PAGE = 0x1000;
const NUMPAGE = 2 ** (V2_NUMPAGENDXB + 1);
const INPUT_LIMIT: bigint[] = Array.from({ length: 65 }, (_, i) => 1n << BigInt(i));

export class SmmuV2Hardware implements IommuHardware {
  readonly name: string;
  readonly memory: PhysicalMemory;
  readonly tlb: Tlb;
  /** Context fault interrupt line of each bank (the board wires it to the driver). */
  onContextIrq: ((cb: number) => void) | null = null;
  /** Global fault interrupt line. */
  onGlobalIrq: (() => void) | null = null;
  readonly stats = { walks: 0, faults: 0 };

  private readonly regs = new Map<number, number>();
  private readonly numSmr: number;
  private readonly numCb: number;
  private readonly sidBits: number;
  private readonly ipaBits: number;

  constructor(opts: SmmuV2HardwareOptions) {
    this.memory = opts.memory;
    this.name = opts.name ?? `${opts.mmioBase.toString(16)}.iommu`;
    this.numSmr = opts.streamMatchGroups ?? 16;
    this.numCb = Math.min(opts.contextBanks ?? 8, NUMPAGE);
    this.sidBits = opts.streamIdBits ?? 15;
    this.ipaBits = opts.ipaBits ?? 48;
    this.tlb = new Tlb(opts.tlbCapacity);
    if (!V2_SIZE_BITS.includes(this.ipaBits as (typeof V2_SIZE_BITS)[number])) {
      throw new RangeError(`ipaBits ${this.ipaBits} has no SMMUv2 encoding`);
    }
    // Reset: client port disabled (everything bypasses) until the driver configures it.
    this.regs.set(V2_GR0.sCR0, V2_SCR0.CLIENTPD);
  }

  readonly mmio: MmioHandler = {
    read: (offset, size) => {
      const off = Number(offset);
      if (size === 8) return BigInt(this.read32(off)) | (BigInt(this.read32(off + 4)) << 32n);
      const word = this.read32(off & ~3);
      const shift = (off & 3) * 8;
      return BigInt((word >>> shift) & (size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff));
    },
    write: (offset, size, value) => {
      const off = Number(offset);
      if (size === 8) this.write64(off, value);
      else if (size === 4) this.write32(off, Number(value & 0xffffffffn));
    },
  };

  private read32(off: number): number {
    if (off === V2_GR0.ID0) {
      return (
        (V2_ID0.S1TS |
          V2_ID0.SMS |
          V2_ID0.CTTW |
          (this.sidBits << V2_ID0.NUMSIDB_SHIFT) |
          (this.numSmr & V2_ID0.NUMSMRG_MASK)) >>>
        0
      );
    }
    if (off === V2_GR0.ID1) return ((V2_NUMPAGENDXB << V2_ID1.NUMPAGENDXB_SHIFT) | this.numCb) >>> 0;
    if (off === V2_GR0.ID2) {
      const ias = V2_SIZE_BITS.indexOf(this.ipaBits as (typeof V2_SIZE_BITS)[number]);
      // UBS 48-bit VA, OAS = IAS here (no stage 2), 4K/16K/64K AArch64 formats.
      return (
        ias | (ias << V2_ID2.OAS_SHIFT) | (5 << V2_ID2.UBS_SHIFT) | V2_ID2.PTFS_4K | V2_ID2.PTFS_16K | V2_ID2.PTFS_64K
      );
    }
    if (off === V2_GR0.sTLBGSTATUS) return 0;
    if (off >= NUMPAGE * PAGE && (off & (PAGE - 1)) === V2_CB.TLBSTATUS) return 0;
    return this.regs.get(off) ?? 0;
  }

  private write64(off: number, v: bigint): void {
    const cbOff = off - NUMPAGE * PAGE;
    if (cbOff >= 0) {
      const cb = cbOff >>> 12;
      const reg = cbOff & (PAGE - 1);
      if (reg === V2_CB.TLBIVA || reg === V2_CB.TLBIVAL) {
        // AArch64 format: VA[55:12] in [43:0], ASID in [63:48].
        const asid = Number(v >> 48n);
        const va = (v & ((1n << 44n) - 1n)) << 12n;
        this.tlb.invalidateRange(this.tag(cb, asid), va, 1n);
        return;
      }
    }
    this.write32(off, Number(v & 0xffffffffn));
    this.write32(off + 4, Number(v >> 32n));
  }

  private write32(off: number, v: number): void {
    v >>>= 0;
    switch (off) {
      case V2_GR0.ID0:
      case V2_GR0.ID1:
      case V2_GR0.ID2:
        return;
      case V2_GR0.sGFSR:
        this.regs.set(off, (this.regs.get(off) ?? 0) & ~v); // write 1 to clear
        return;
      case V2_GR0.TLBIALLNSNH:
        this.tlb.invalidateAll();
        return;
      case V2_GR0.sTLBGSYNC:
        return; // invalidations complete at once
    }
    const cbOff = off - NUMPAGE * PAGE;
    if (cbOff >= 0) {
      const cb = cbOff >>> 12;
      const reg = cbOff & (PAGE - 1);
      if (reg === V2_CB.FSR) {
        this.regs.set(off, (this.regs.get(off) ?? 0) & ~v);
        return;
      }
      if (reg === V2_CB.TLBIASID) {
        this.tlb.invalidateContext(this.tag(cb, v & 0xffff));
        return;
      }
      if (reg === V2_CB.TLBSYNC) return;
    }
    this.regs.set(off, v);
  }

  private reg(off: number): number {
    return this.regs.get(off) ?? 0;
  }

  private cbReg(cb: number, reg: number): number {
    return this.reg((NUMPAGE + cb) * PAGE + reg);
  }

  private cbReg64(cb: number, reg: number): bigint {
    return BigInt(this.cbReg(cb, reg)) | (BigInt(this.cbReg(cb, reg + 4)) << 32n);
  }

  /** TLB context of a bank and ASID. */
  private tag(cb: number, asid: number): number {
    return cb * 0x10000 + asid;
  }

  translate(req: TranslateRequest): Translation {
    const scr0 = this.reg(V2_GR0.sCR0);
    const bypass: Translation = { kind: "ok", phys: req.iova, span: 0x1000n - (req.iova & 0xfffn) };
    if (scr0 & V2_SCR0.CLIENTPD) return bypass;
    const sid = req.requesterId;
    let match = -1;
    for (let i = 0; i < this.numSmr; i++) {
      const smr = this.reg(V2_GR0.SMR + 4 * i);
      if ((smr & V2_SMR.VALID) === 0) continue;
      const mask = (smr >>> V2_SMR.MASK_SHIFT) & V2_SMR.ID_MASK;
      if (((sid ^ smr) & V2_SMR.ID_MASK & ~mask) !== 0) continue;
      if (match >= 0) return this.globalFault(sid, req, "stream match conflict");
      match = i;
    }
    if (match < 0) {
      if (scr0 & V2_SCR0.USFCFG) {
        this.regs.set(V2_GR0.sGFSR, this.reg(V2_GR0.sGFSR) | V2_GFSR.USF);
        return this.globalFault(sid, req, "unidentified stream (USF)");
      }
      return bypass;
    }
    const s2cr = this.reg(V2_GR0.S2CR + 4 * match);
    const type = (s2cr >>> V2_S2CR.TYPE_SHIFT) & 3;
    if (type === V2_S2CR.TYPE_BYPASS) return bypass;
    if (type !== V2_S2CR.TYPE_TRANS) return { kind: "fault", reason: "S2CR.TYPE fault" };
    return this.translateInBank(s2cr & V2_S2CR.CBNDX_MASK, req, sid);
  }

  private translateInBank(cb: number, req: TranslateRequest, sid: number): Translation {
    const cbar = this.reg(PAGE + V2_GR1.CBAR + 4 * cb);
    const sctlr = this.cbReg(cb, V2_CB.SCTLR);
    if (cb >= this.numCb || ((cbar >>> V2_CBAR.TYPE_SHIFT) & 3) !== V2_CBAR.TYPE_S1_TRANS_S2_BYPASS) {
      return { kind: "fault", reason: "context bank not a stage-1 bank" };
    }
    if ((sctlr & V2_SCTLR.M) === 0) return { kind: "ok", phys: req.iova, span: 0x1000n - (req.iova & 0xfffn) };
    if ((this.reg(PAGE + V2_GR1.CBA2R + 4 * cb) & V2_CBA2R_VA64) === 0) {
      return { kind: "fault", reason: "AArch32 context formats are not modelled" };
    }
    const tcr = this.cbReg(cb, V2_CB.TCR);
    const g = tgToShift((tcr >>> V2_TCR.TG0_SHIFT) & 3) as GranuleShift | null;
    const inputBits = 64 - (tcr & V2_TCR.T0SZ_MASK);
    const ttbr = this.cbReg64(cb, V2_CB.TTBR0);
    const asid = Number(ttbr >> 48n);
    const read = req.access === "read";
    if (g === null || inputBits > 48 || inputBits < 25 || req.iova >= (INPUT_LIMIT[inputBits] as bigint)) {
      return this.contextFault(cb, V2_FSR.TF, req, read, sid);
    }
    const tag = this.tag(cb, asid);
    let e = this.tlb.lookup(tag, Number(req.iova));
    if (!e) {
      this.stats.walks++;
      const paBits = V2_SIZE_BITS[this.cbReg(cb, V2_CB.TCR2) & 7] ?? 48;
      const r = walk(
        this.memory,
        {
          stage: 1,
          ttb: ttbr & ((1n << 48n) - 1n) & ~0xfn,
          granule: g,
          inputBits,
          startLevel: stage1StartLevel(g, inputBits),
          outputBits: Math.min(paBits, this.ipaBits),
          // SCTLR.AFFD: access-flag faults disabled.
          accessFlagFaults: (sctlr & V2_SCTLR.AFFD) === 0,
        },
        req.iova,
      );
      if (r.kind === "fault") {
        return this.contextFault(cb, r.event === EVT.F_ACCESS ? V2_FSR.AFF : V2_FSR.TF, req, read, sid);
      }
      const p = leafPermissions(1, r.desc);
      const entry = leafEntry(r, p.readable, p.writable);
      this.tlb.insert(tag, entry);
      e = entry;
    }
    if (read ? !e.readable : !e.writable) return this.contextFault(cb, V2_FSR.PF, req, read, sid);
    return { kind: "ok", phys: req.iova + e.delta, span: e.end - req.iova };
  }

  /** Record a context fault in FSR/FAR/FSYNR0 (MULTI if one is pending) and raise the bank's interrupt. */
  private contextFault(cb: number, bit: number, req: TranslateRequest, read: boolean, sid: number): Translation {
    this.stats.faults++;
    const base = (NUMPAGE + cb) * PAGE;
    const fsr = this.reg(base + V2_CB.FSR);
    const sctlr = this.cbReg(cb, V2_CB.SCTLR);
    if (fsr & (V2_FSR.TF | V2_FSR.AFF | V2_FSR.PF | V2_FSR.EF)) {
      this.regs.set(base + V2_CB.FSR, (fsr | V2_FSR.MULTI) >>> 0);
    } else if (sctlr & V2_SCTLR.CFRE) {
      this.regs.set(base + V2_CB.FSR, bit);
      this.regs.set(base + V2_CB.FAR, Number(req.iova & 0xffffffffn));
      this.regs.set(base + V2_CB.FAR + 4, Number(req.iova >> 32n));
      this.regs.set(base + V2_CB.FSYNR0, read ? 0 : V2_FSYNR0_WNR);
      this.regs.set(PAGE + V2_GR1.CBFRSYNRA + 4 * cb, sid);
    }
    if (sctlr & V2_SCTLR.CFIE) this.onContextIrq?.(cb);
    const what = bit === V2_FSR.PF ? "permission" : bit === V2_FSR.AFF ? "access flag" : "translation";
    return { kind: "fault", reason: `context bank ${cb} ${what} fault` };
  }

  private globalFault(sid: number, req: TranslateRequest, reason: string): Translation {
    this.stats.faults++;
    this.regs.set(V2_GR0.sGFAR, Number(req.iova & 0xffffffffn));
    this.regs.set(V2_GR0.sGFSYNR0, sid);
    if (this.reg(V2_GR0.sCR0) & V2_SCR0.GFIE) this.onGlobalIrq?.();
    return { kind: "fault", reason };
  }
}

/** Create an SMMUv2 and register its 64 KiB register space in `memory`. */
export function createSmmuV2Hardware(opts: SmmuV2HardwareOptions): SmmuV2Hardware {
  const hw = new SmmuV2Hardware(opts);
  opts.memory.addMmio(opts.mmioBase, V2_MMIO_SIZE, hw.mmio, hw.name);
  return hw;
}
