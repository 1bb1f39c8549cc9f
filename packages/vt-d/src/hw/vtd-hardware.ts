/**
 * One DMAR unit (DRHD) as the hardware sees it: a 4 KiB register window, caches, the fault recorder and
 * the interrupt-remapping decoder. Devices reach it only through `translate`; the driver only through
 * MMIO registers and the tables it writes into physical memory. Defaults are QEMU 7.2's intel-iommu
 * (legacy mode, `aw-bits=39`, SLLPS 2 MiB + 1 GiB, QI, IR, no snoop control, no caching mode).
 */
import type { IommuHardware, PhysicalMemory, TranslateRequest, Translation } from "@iommu/core";
import {
  CAP,
  CCMD,
  ECAP,
  FAULT,
  faultReasonText,
  GCMD,
  GSTS,
  INTERRUPT_WINDOW_END,
  INTERRUPT_WINDOW_START,
  IOTLB,
  IRTA,
  QEMU_FRCD_OFFSET,
  QEMU_IOTLB_OFFSET,
  QI,
  REG,
  REG_WINDOW,
} from "../arch/regs.js";
import { FaultRecorder } from "./fault-recording.js";
import { type DeliveredInterrupt, decodeInterrupt, type IrState } from "./interrupt-remapping.js";
import { type CachedContext, ContextCache, Iotlb } from "./tlb.js";
import { readContext, walkSecondLevel } from "./walker.js";

const LEVEL_SIZE = [0n, 1n << 12n, 1n << 21n, 1n << 30n];
const LEVEL_MASK = LEVEL_SIZE.map((s) => (s === 0n ? 0n : s - 1n));
/** Below this a bigint converts to a JS number exactly (number fast paths; BigInt arithmetic allocates). */
const SAFE = 1n << 53n;
/** Descriptor types, granularities and the wait descriptor's SW bit as numbers (low dword of qword 0). */
const QI_CC = Number(QI.CC);
const QI_IOTLB = Number(QI.IOTLB);
const QI_IEC = Number(QI.IEC);
const QI_WAIT = Number(QI.WAIT);
const QI_WAIT_SW = Number(QI.WAIT_SW);
const G_GLOBAL = Number(CCMD.GLOBAL);
const G_DOMAIN = Number(CCMD.DOMAIN);
const IOTLB_GLOBAL = Number(IOTLB.GLOBAL);
const IOTLB_DSI = Number(IOTLB.DSI);

export interface VtdHardwareOptions {
  readonly memory: PhysicalMemory;
  /** Physical base of the register window (ACPI DRHD register base). QEMU: 0xfed90000. */
  readonly mmioBase: bigint;
  readonly name?: string;
  /** Host address width: 39 (QEMU default), 48 or 57. Sets SAGAW and MGAW. */
  readonly aw?: 39 | 48 | 57;
  /** Superpage levels (SLLPS): 0 none, 1 = 2 MiB, 2 = 2 MiB + 1 GiB (QEMU). */
  readonly superpages?: 0 | 1 | 2;
  /** ECAP.IR (QEMU `intremap=on`). Default true. */
  readonly interruptRemapping?: boolean;
  /** ECAP.EIM: x2APIC extended interrupt mode (QEMU `eim`, on for TCG q35). Default true. */
  readonly eim?: boolean;
  /** ECAP.SC snoop control. Default false (QEMU 7.2 default). */
  readonly snoopControl?: boolean;
  /** CAP.CM caching mode. Default false. */
  readonly cachingMode?: boolean;
  /** ECAP.C: page-walk coherency. Default false (QEMU). */
  readonly coherent?: boolean;
  /** Number of fault recording registers (CAP.NFR + 1). QEMU: 1. */
  readonly faultRecords?: number;
  /** IOTLB capacity before it is dropped whole. QEMU: 1024. */
  readonly iotlbEntries?: number;
  /**
   * QEMU 7.2's emulation quirk (on for the QEMU boards): an IOTLB hit is not checked against the access
   * (`vtd_do_iommu_translate` returns the cached entry; the memory core then sends an access the entry
   * does not allow to unassigned memory), so a write that hits an entry cached by an earlier read of a
   * read-only page is dropped with no fault record. An access that misses the IOTLB is checked and faults.
   * QEMU's IOTLB entries are per requester (`vtd_iotlb_key` holds the source id), so only the device whose
   * own earlier read cached the page has its write dropped; another device of the same domain walks and faults.
   * (That 6.1 lets a device read through a write-only map is the driver's PTE format, not QEMU's.)
   */
  readonly qemuQuirks?: boolean;
  /** Where a delivered interrupt goes (the board's interrupt controller). */
  readonly onInterrupt?: (irq: DeliveredInterrupt) => void;
  /** The fault event interrupt (FEDATA/FEADDR MSI): the board wires it to the driver's handler. */
  readonly onFaultEvent?: () => void;
}

/** Counters a test or benchmark can read (not architected). */
export interface VtdStats {
  iotlbHits: number;
  iotlbMisses: number;
  walks: number;
  contextLoads: number;
  interrupts: number;
  /** Accesses an IOTLB hit lacked the right for, dropped without a fault (QEMU quirk). */
  droppedAccesses: number;
  qiDescriptors: number;
}

export class VtdHardware implements IommuHardware {
  readonly name: string;
  readonly memory: PhysicalMemory;
  readonly mmioBase: bigint;
  readonly cap: bigint;
  readonly ecap: bigint;
  readonly iotlbOffset = QEMU_IOTLB_OFFSET;
  readonly frcdOffset = QEMU_FRCD_OFFSET;
  readonly qemuQuirks: boolean;
  readonly contextCache = new ContextCache(4096);
  readonly iotlb: Iotlb;
  readonly faults: FaultRecorder;
  readonly stats: VtdStats = {
    iotlbHits: 0,
    iotlbMisses: 0,
    walks: 0,
    contextLoads: 0,
    interrupts: 0,
    droppedAccesses: 0,
    qiDescriptors: 0,
  };
  onInterrupt: ((irq: DeliveredInterrupt) => void) | null;
  onFaultEvent: (() => void) | null;

  private gsts = 0;
  private rtaddr = 0n;
  private rtaddrLatched = 0n;
  private ccmd = 0n;
  private iva = 0n;
  private iotlbReg = 0n;
  private irta = 0n;
  private irtaLatched = 0n;
  private iqa = 0n;
  /** IQA decoded: queue base, its size in bytes, and descriptor addresses by slot (filled as used). */
  private iqBase = 0n;
  private iqBytes = 4096;
  private iqSlots: bigint[] = [];
  /** IQH/IQT byte offsets (bits 18:4), kept as numbers. */
  private iqh = 0;
  private iqt = 0;
  private fedata = 0;
  private feaddr = 0;
  private feuaddr = 0;
  private readonly sagaw: number;
  private readonly maxLeafLevel: number;

  constructor(opts: VtdHardwareOptions) {
    const aw = opts.aw ?? 39;
    const sp = opts.superpages ?? 2;
    const nfr = opts.faultRecords ?? 1;
    this.name = opts.name ?? "dmar0";
    this.memory = opts.memory;
    this.mmioBase = opts.mmioBase;
    this.qemuQuirks = opts.qemuQuirks ?? false;
    this.iotlb = new Iotlb(opts.iotlbEntries ?? 1024, this.qemuQuirks);
    // SAGAW: bit 1 = 39-bit (3-level), bit 2 = 48-bit, bit 3 = 57-bit; QEMU always offers 39.
    this.sagaw = aw === 39 ? 0b0010 : aw === 48 ? 0b0110 : 0b1110;
    this.maxLeafLevel = 1 + sp;
    const sllps = sp === 0 ? 0n : sp === 1 ? 1n : 3n;
    this.cap =
      (6n << CAP.ND_SHIFT) |
      (opts.cachingMode ? CAP.CM : 0n) |
      (BigInt(this.sagaw) << CAP.SAGAW_SHIFT) |
      (BigInt(aw - 1) << CAP.MGAW_SHIFT) |
      (BigInt(QEMU_FRCD_OFFSET / 16) << CAP.FRO_SHIFT) |
      (sllps << CAP.SLLPS_SHIFT) |
      CAP.PSI |
      (BigInt(nfr - 1) << CAP.NFR_SHIFT) |
      (18n << CAP.MAMV_SHIFT) |
      // QEMU's dma-drain=on: DWD (bit 54) and DRD (bit 55).
      CAP.DWD |
      CAP.DRD;
    this.ecap =
      (opts.coherent ? ECAP.C : 0n) |
      ECAP.QI |
      (opts.interruptRemapping === false
        ? 0n
        : ECAP.IR | (0xfn << ECAP.MHMV_SHIFT) | (opts.eim === false ? 0n : ECAP.EIM)) |
      ECAP.PT |
      (opts.snoopControl ? ECAP.SC : 0n) |
      (BigInt(QEMU_IOTLB_OFFSET / 16) << ECAP.IRO_SHIFT);
    this.faults = new FaultRecorder(nfr, () => this.onFaultEvent?.());
    this.onInterrupt = opts.onInterrupt ?? null;
    this.onFaultEvent = opts.onFaultEvent ?? null;
    opts.memory.addMmio(
      opts.mmioBase,
      REG_WINDOW,
      { read: (o, s) => this.readReg(Number(o), s), write: (o, s, v) => this.writeReg(Number(o), s, v) },
      this.name,
    );
  }

  /** GSTS as the hardware holds it (what a 4-byte read of REG.GSTS returns), for tests. */
  get globalStatus(): number {
    return this.gsts;
  }

  // ---- the device side -------------------------------------------------------------------------

  translate(req: TranslateRequest): Translation {
    const iova = req.iova;
    const sid = req.requesterId & 0xffff;
    const isWrite = req.access === "write";
    if (iova >= INTERRUPT_WINDOW_START && iova <= INTERRUPT_WINDOW_END) {
      if (isWrite) return this.interruptRequest(sid, iova, req.data);
      // Reads of the interrupt window are not translated (an unsupported request; nothing recorded).
      return { kind: "fault", reason: "read of the interrupt address range" };
    }
    if (!(this.gsts & GSTS.TES)) return { kind: "ok", phys: iova, span: 0x1000n - (iova & 0xfffn) };
    let ctx = this.contextCache.get(sid);
    if (!ctx) {
      this.stats.contextLoads++;
      const r = readContext(this.memory, this.rtaddrLatched, sid, this.sagaw, (this.ecap & ECAP.PT) !== 0n);
      if ("fault" in r) return this.dmaFault(r.fault, sid, iova, isWrite, false);
      ctx = r;
      this.contextCache.set(sid, ctx);
    }
    if (ctx.tt === 2) return { kind: "ok", phys: iova, span: 0x1000n - (iova & 0xfffn) };
    if (iova >= ctx.limit) return this.dmaFault(FAULT.BEYOND_MGAW, sid, iova, isWrite, ctx.fpd);
    const pfn = Number(iova >> 12n);
    const need = isWrite ? 2 : 1;
    const hit = this.iotlb.lookup(ctx.did, pfn, sid);
    if (hit) {
      this.stats.iotlbHits++;
      if ((hit.perm & need) !== 0) return this.ok(hit.phys, hit.level, iova);
      if (this.qemuQuirks) {
        // QEMU returns the cached entry unchecked; the memory core then drops the access unseen.
        this.stats.droppedAccesses++;
        return { kind: "fault", reason: `${req.access} dropped (QEMU: the cached translation lacks the right)` };
      }
      // Real hardware re-checks rights on a hit and faults.
      return this.dmaFault(isWrite ? FAULT.WRITE : FAULT.READ, sid, iova, isWrite, ctx.fpd);
    }
    return this.walkAndFill(ctx, sid, pfn, iova, isWrite, need);
  }

  private walkAndFill(
    ctx: CachedContext,
    sid: number,
    pfn: number,
    iova: bigint,
    isWrite: boolean,
    need: number,
  ): Translation {
    this.stats.iotlbMisses++;
    this.stats.walks++;
    const w = walkSecondLevel(this.memory, ctx, pfn, this.maxLeafLevel);
    if ("fault" in w) {
      const reason = w.fault !== 0 ? w.fault : isWrite ? FAULT.WRITE : FAULT.READ;
      return this.dmaFault(reason, sid, iova, isWrite, ctx.fpd);
    }
    if ((w.perm & need) === 0) {
      return this.dmaFault(isWrite ? FAULT.WRITE : FAULT.READ, sid, iova, isWrite, ctx.fpd);
    }
    this.iotlb.insert(ctx.did, pfn, w, sid);
    return this.ok(w.phys, w.level, iova);
  }

  private ok(pagePhys: bigint, level: number, iova: bigint): Translation {
    const off = iova & (LEVEL_MASK[level] as bigint);
    return { kind: "ok", phys: pagePhys + off, span: (LEVEL_SIZE[level] as bigint) - off };
  }

  private dmaFault(reason: number, sid: number, iova: bigint, isWrite: boolean, fpd: boolean): Translation {
    if (!fpd) this.faults.record(reason, sid, iova & ~0xfffn, !isWrite);
    return { kind: "fault", reason: faultReasonText(reason) };
  }

  private interruptRequest(sid: number, iova: bigint, data: Uint8Array | undefined): Translation {
    let d = 0;
    if (data) for (let i = 0; i < 4 && i < data.length; i++) d |= (data[i] as number) << (8 * i);
    const ir: IrState = {
      enabled: (this.gsts & GSTS.IRES) !== 0,
      cfis: (this.gsts & GSTS.CFIS) !== 0,
      tableBase: this.irtaLatched & ~0xfffn,
      entries: 2 ** (Number(this.irtaLatched & IRTA.S_MASK) + 1),
      eim: (this.irtaLatched & IRTA.EIME) !== 0n,
    };
    const r = decodeInterrupt(this.memory, ir, sid, Number(iova & 0xffffffffn), d >>> 0);
    if (r.kind === "fault") {
      this.faults.record(r.reason, sid, BigInt(r.index) << 48n, false);
      return { kind: "fault", reason: faultReasonText(r.reason) };
    }
    this.stats.interrupts++;
    this.onInterrupt?.(r.irq);
    return { kind: "interrupt" };
  }

  // ---- the driver side: registers --------------------------------------------------------------

  private reg64(off: number): bigint | undefined {
    switch (off) {
      case REG.CAP:
        return this.cap;
      case REG.ECAP:
        return this.ecap;
      case REG.RTADDR:
        return this.rtaddr;
      case REG.CCMD:
        return this.ccmd;
      case REG.IQH:
        return BigInt(this.iqh);
      case REG.IQT:
        return BigInt(this.iqt);
      case REG.IQA:
        return this.iqa;
      case REG.IRTA:
        return this.irta;
      case this.iotlbOffset:
        return this.iva;
      case this.iotlbOffset + 8:
        return this.iotlbReg;
    }
    const f = off - this.frcdOffset;
    if (f >= 0 && f < this.faults.frcd.length * 16) {
      const r = this.faults.frcd[f >> 4];
      return r ? ((f & 8) === 0 ? r.lo : r.hi) : 0n;
    }
    return undefined;
  }

  private reg32(off: number): number {
    switch (off) {
      case REG.VER:
        return 0x10;
      case REG.GSTS:
        return this.gsts >>> 0;
      case REG.GCMD:
        return 0;
      case REG.FSTS:
        return this.faults.fsts;
      case REG.FECTL:
        return this.faults.fectl >>> 0;
      case REG.FEDATA:
        return this.fedata;
      case REG.FEADDR:
        return this.feaddr;
      case REG.FEUADDR:
        return this.feuaddr;
      case REG.ICS:
        return 0;
    }
    return 0;
  }

  readReg(off: number, size: number): bigint {
    const base = off & ~7;
    const q = this.reg64(base);
    if (q !== undefined) {
      if (size === 8) return q;
      const v = (q >> BigInt((off & 7) * 8)) & ((1n << BigInt(size * 8)) - 1n);
      return v;
    }
    const d = this.reg32(off & ~3);
    return BigInt((d >>> ((off & 3) * 8)) & (size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1)) & 0xffffffffn;
  }

  writeReg(off: number, size: number, value: bigint): void {
    // The invalidation-queue doorbell: a whole-register write goes straight to its handler.
    if (size === 8 && off === REG.IQT) {
      this.write64(off, value, true);
      return;
    }
    const base = off & ~7;
    const q = this.reg64(base);
    if (q !== undefined) {
      let nv: bigint;
      let top: boolean;
      if (size === 8) {
        nv = value;
        top = true;
      } else {
        const sh = BigInt((off & 7) * 8);
        const mask = ((1n << BigInt(size * 8)) - 1n) << sh;
        nv = (q & ~mask) | ((value << sh) & mask);
        top = (off & 7) + size === 8;
      }
      this.write64(base, nv, top);
      return;
    }
    this.write32(off & ~3, Number(value & 0xffffffffn));
  }

  private write64(off: number, v: bigint, top: boolean): void {
    switch (off) {
      case REG.RTADDR:
        this.rtaddr = v;
        return;
      case REG.CCMD:
        this.ccmd = v;
        if (top && v & CCMD.ICC) this.contextCommand(v);
        return;
      case REG.IQT:
        this.iqt = Number(v & 0x7fff0n);
        if (top) this.processQueue();
        return;
      case REG.IQA:
        this.iqa = v;
        this.iqBase = v & ~0xfffn;
        this.iqBytes = 4096 * 2 ** Number(v & 7n);
        this.iqSlots = [];
        return;
      case REG.IRTA:
        this.irta = v;
        return;
      case this.iotlbOffset:
        this.iva = v;
        return;
      case this.iotlbOffset + 8:
        this.iotlbReg = v;
        if (top && v & IOTLB.IVT) this.iotlbCommand(v, this.iva);
        return;
    }
    const f = off - this.frcdOffset;
    if (f >= 0 && (f & 8) !== 0 && top) this.faults.writeTop(f >> 4, Number(v >> 32n));
  }

  private write32(off: number, v: number): void {
    switch (off) {
      case REG.GCMD:
        this.globalCommand(v);
        return;
      case REG.FSTS:
        this.faults.writeFsts(v);
        return;
      case REG.FECTL:
        this.faults.writeFectl(v);
        return;
      case REG.FEDATA:
        this.fedata = v >>> 0;
        return;
      case REG.FEADDR:
        this.feaddr = v >>> 0;
        return;
      case REG.FEUADDR:
        this.feuaddr = v >>> 0;
        return;
    }
  }

  /** GCMD: one-shot commands (SRTP, SIRTP, WBF) and enables (TE, QIE, IRE, CFI) reflected in GSTS. */
  private globalCommand(v: number): void {
    if (v & GCMD.SRTP) {
      this.rtaddrLatched = this.rtaddr & ~0xfffn;
      this.gsts |= GSTS.RTPS;
    }
    if (v & GCMD.SIRTP) {
      this.irtaLatched = this.irta;
      this.gsts |= GSTS.IRTPS;
    }
    const enables = GSTS.TES | GSTS.QIES | GSTS.IRES | GSTS.CFIS;
    let want = v & enables;
    if (!(this.ecap & ECAP.IR)) want &= ~(GSTS.IRES | GSTS.CFIS);
    if (want & GSTS.QIES && !(this.gsts & GSTS.QIES)) this.iqh = 0;
    this.gsts = (this.gsts & ~enables) | want;
  }

  private contextCommand(v: bigint): void {
    const g = (v >> CCMD.CIRG_SHIFT) & 3n;
    if (g === CCMD.GLOBAL) this.contextCache.invalidateAll();
    else if (g === CCMD.DOMAIN) this.contextCache.invalidateDomain(Number(v & 0xffffn));
    else if (g === CCMD.DEVICE)
      this.contextCache.invalidateDevice(Number((v >> 16n) & 0xffffn), Number((v >> 32n) & 3n));
    // Completed: ICC clears; CAIG reports the granularity performed.
    this.ccmd = (v & ~CCMD.ICC & ~(3n << CCMD.CAIG_SHIFT)) | (g << CCMD.CAIG_SHIFT);
  }

  private iotlbCommand(v: bigint, iva: bigint): void {
    const g = (v >> IOTLB.IIRG_SHIFT) & 3n;
    const did = Number((v >> IOTLB.DID_SHIFT) & 0xffffn);
    if (g === IOTLB.GLOBAL) this.iotlb.invalidateAll();
    else if (g === IOTLB.DSI) this.iotlb.invalidateDomain(did);
    else if (g === IOTLB.PSI) this.iotlb.invalidatePages(did, Number(iva >> 12n), Number(iva & 0x3fn));
    this.iotlbReg = (v & ~IOTLB.IVT & ~(3n << IOTLB.IAIG_SHIFT)) | (g << IOTLB.IAIG_SHIFT);
  }

  /**
   * Queued invalidation: consume 128-bit descriptors from IQH to IQT (VT-d spec 6.5.2). Fields are decoded
   * as numbers (the low dword of qword 0; qword 1 when it is below 2^53), which is where the time went.
   */
  private processQueue(): void {
    if (!(this.gsts & GSTS.QIES)) return;
    const slots = this.iqSlots;
    while (this.iqh !== this.iqt) {
      const slot = this.iqh >>> 3;
      let at = slots[slot];
      if (at === undefined) {
        at = this.iqBase + BigInt(this.iqh);
        slots[slot] = at;
        slots[slot + 1] = at + 8n;
      }
      const lo = this.memory.read64(at);
      const hi = this.memory.read64(slots[slot + 1] as bigint);
      this.stats.qiDescriptors++;
      const l = Number(lo & 0xffffffffn);
      const type = l & 0xf;
      const g = (l >>> 4) & 3;
      const did = (l >>> 16) & 0xffff;
      if (type === QI_CC) {
        if (g === G_GLOBAL) this.contextCache.invalidateAll();
        else if (g === G_DOMAIN) this.contextCache.invalidateDomain(did);
        else this.contextCache.invalidateDevice(Number((lo >> 32n) & 0xffffn), Number((lo >> 48n) & 3n));
      } else if (type === QI_IOTLB) {
        if (g === IOTLB_GLOBAL) this.iotlb.invalidateAll();
        else if (g === IOTLB_DSI) this.iotlb.invalidateDomain(did);
        else if (hi < SAFE) {
          const h = Number(hi);
          const pfn = Math.floor(h / 4096);
          this.iotlb.invalidatePages(did, pfn, (h - pfn * 4096) & 0x3f);
        } else this.iotlb.invalidatePages(did, Number(hi >> 12n), Number(hi & 0x3fn));
      } else if (type === QI_IEC) {
        // The model reads IRTEs on every request (no interrupt entry cache), as QEMU does.
      } else if (type === QI_WAIT) {
        if (l & QI_WAIT_SW) {
          // Status write (SW): the dword in lo[63:32] to the dword address hi[63:2] (a 4-byte write).
          this.memory.write32(hi & ~3n, Number(lo >> 32n));
        }
      } else {
        // An invalid descriptor stops the queue (FSTS.IQE in the spec; not modelled further).
        return;
      }
      this.iqh = (this.iqh + 16) % this.iqBytes;
    }
  }
}

/** Create one VT-d unit and map its registers at `mmioBase`. */
export function createVtdHardware(opts: VtdHardwareOptions): VtdHardware {
  return new VtdHardware(opts);
}

export type { DeliveredInterrupt };
