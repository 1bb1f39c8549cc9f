/**
 * The SMMUv3 hardware model: a register file at the architected offsets, a command queue consumer,
 * an event queue producer, a configuration cache and a TLB, and `translate` for devices' DMA. It
 * knows nothing of the driver: it reads what was written into its registers and into memory.
 */
import type {
  IommuHardware,
  MemTxAttrs,
  MmioHandler,
  PhysicalMemory,
  TranslateRequest,
  Translation,
} from "@iommu/core";
import {
  CERROR,
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
  oasEncoding,
  Q_BASE_ADDR_MASK,
  Q_BASE_LOG2SIZE_MASK,
  Q_OVF,
  REG,
  SMMU_MMIO_SIZE,
} from "../arch/regs.js";
import { CMD, CMD_BYTES, CMDF, EVT, EVT_BYTES, EVTF, tlbiTgToShift } from "../arch/structures.js";
import { fetchStreamConfig, type StreamConfig } from "./stream-config.js";
import { leafEntry, Tlb } from "./tlb.js";
import { leafPermissions, type WalkResult, walk } from "./walker.js";

export interface SmmuV3HardwareOptions {
  readonly memory: PhysicalMemory;
  /** Base of the 128 KiB register frame (QEMU virt: 0x09050000). */
  readonly mmioBase: bigint;
  readonly name?: string;
  /** Largest stage-2 input address size (stage 1 always takes up to 48-bit VAs). Default: `oas`. */
  readonly ias?: number;
  /** Output address size, IDR5.OAS. QEMU: 44. */
  readonly oas?: number;
  /** IDR1.SIDSIZE. QEMU: 16. */
  readonly streamIdBits?: number;
  /** Translation granules supported (IDR5.GRAN*), in bytes. Default all three. */
  readonly granules?: readonly (4096 | 16384 | 65536)[];
  /** Stage support (IDR0.S1P/S2P). Default both; stage 1 only with `qemuQuirks` (QEMU 7.2 has no stage 2). */
  readonly stages?: { readonly s1: boolean; readonly s2: boolean };
  /** IDR0.ST_LEVEL: two-level stream tables supported. Default true. */
  readonly twoLevelStreamTable?: boolean;
  /** IDR3.RIL: range TLB invalidation. Default true. */
  readonly rangeInvalidation?: boolean;
  /** IDR0.COHACC: coherent table walks. Default true. */
  readonly coherent?: boolean;
  readonly tlbCapacity?: number;
  /**
   * QEMU 7.2's SMMUv3 behaviour (on for the QEMU board): stage 1 only, event records without
   * CLASS, and a read through a write-only leaf succeeds (recorder/README.md "known quirks").
   */
  readonly qemuQuirks?: boolean;
}

/** Counters a test or bench can read. */
export interface SmmuV3Stats {
  walks: number;
  events: number;
  commands: number;
  eventsDropped: number;
}

const CMDQ_LOG2_MAX = 19;
const INPUT_LIMIT: bigint[] = Array.from({ length: 65 }, (_, i) => 1n << BigInt(i));
const EVTQ_LOG2_MAX = 19;

export class SmmuV3Hardware implements IommuHardware {
  readonly name: string;
  readonly memory: PhysicalMemory;
  readonly mmioBase: bigint;
  readonly tlb: Tlb;
  readonly stats: SmmuV3Stats = { walks: 0, events: 0, commands: 0, eventsDropped: 0 };
  /** The event queue's interrupt line (wired by the board to the driver's handler). */
  onEventIrq: (() => void) | null = null;
  /** The global error interrupt line. */
  onGerrorIrq: (() => void) | null = null;

  private readonly idr: readonly number[];
  private readonly oasBits: number;
  /** Largest stage-2 input size accepted in an STE (S2T0SZ); SMMUv3 has no IAS register. */
  private readonly iasBits: number;
  private readonly stages: { s1: boolean; s2: boolean };
  private readonly quirks: boolean;
  private readonly regs = new Map<number, number>();
  private readonly configCache = new Map<number, StreamConfig>();
  /** The last stream looked up (cleared with any configuration invalidation). */
  private lastSid = -1;
  private lastConfig: StreamConfig | null = null;
  /** CR0.SMMUEN, kept apart for the translation fast path. */
  private enabled = false;

  constructor(opts: SmmuV3HardwareOptions) {
    this.memory = opts.memory;
    this.mmioBase = opts.mmioBase;
    this.name = opts.name ?? `${opts.mmioBase.toString(16)}.smmuv3`;
    this.quirks = opts.qemuQuirks ?? false;
    this.stages = { s1: opts.stages?.s1 ?? true, s2: opts.stages?.s2 ?? !this.quirks };
    this.oasBits = opts.oas ?? 44;
    this.tlb = new Tlb(opts.tlbCapacity);
    const sidBits = opts.streamIdBits ?? 16;
    if (sidBits < 0 || sidBits > 32) throw new RangeError(`streamIdBits ${sidBits} outside 0..32`);
    const granules = opts.granules ?? [4096, 16384, 65536];
    let idr0 = (IDR0.TTF_AARCH64 << IDR0.TTF_SHIFT) | IDR0.ASID16 | IDR0.VMID16 | IDR0.TERM_MODEL;
    idr0 |= 1 << IDR0.STALL_MODEL_SHIFT;
    if (this.stages.s1) idr0 |= IDR0.S1P;
    if (this.stages.s2) idr0 |= IDR0.S2P;
    if (opts.coherent ?? true) idr0 |= IDR0.COHACC;
    if (opts.twoLevelStreamTable ?? true) idr0 |= IDR0.ST_LEVEL_2LVL << IDR0.ST_LEVEL_SHIFT;
    const idr1 =
      (sidBits << IDR1.SIDSIZE_SHIFT) | (EVTQ_LOG2_MAX << IDR1.EVTQS_SHIFT) | (CMDQ_LOG2_MAX << IDR1.CMDQS_SHIFT);
    const idr3 = (opts.rangeInvalidation ?? true) ? IDR3_RIL : 0;
    let idr5 = oasEncoding(this.oasBits);
    if (granules.includes(4096)) idr5 |= IDR5.GRAN4K;
    if (granules.includes(16384)) idr5 |= IDR5.GRAN16K;
    if (granules.includes(65536)) idr5 |= IDR5.GRAN64K;
    // IDR2 (VATOS) and IDR4 (impl. defined) read as zero; ias only bounds stage 2 (S2T0SZ checks).
    this.idr = [idr0 >>> 0, idr1 >>> 0, 0, idr3, 0, idr5];
    this.iasBits = opts.ias ?? this.oasBits;
  }

  /** The MMIO handler for the register frame (register it with `memory.addMmio`). */
  readonly mmio: MmioHandler = {
    read: (offset, size) => this.mmioRead(Number(offset), size),
    write: (offset, size, value, attrs) => this.mmioWrite(Number(offset), size, value, attrs),
  };

  /** `IommuHardware.translate`: one device access at `req.iova`. */
  translate(req: TranslateRequest): Translation {
    if (!this.enabled) {
      if (this.reg(REG.GBPA) & GBPA_ABORT) return { kind: "fault", reason: "SMMU disabled, GBPA.ABORT" };
      return { kind: "ok", phys: req.iova, span: 0x1000n - (req.iova & 0xfffn) };
    }
    const sid = req.requesterId;
    const cfg = this.streamConfig(sid);
    const read = req.access === "read";
    switch (cfg.kind) {
      case "error":
        this.recordEvent(cfg.event, sid, req.iova, read, false);
        return { kind: "fault", reason: eventName(cfg.event) };
      case "abort":
        return { kind: "fault", reason: "STE.Config abort" };
      case "bypass":
        return { kind: "ok", phys: req.iova, span: 0x1000n - (req.iova & 0xfffn) };
    }
    const w = cfg.walk;
    if (req.iova >= (INPUT_LIMIT[w.inputBits] as bigint)) {
      this.recordFault(EVT.F_TRANSLATION, sid, req, cfg.stage === 2);
      return { kind: "fault", reason: "F_TRANSLATION (input address beyond T0SZ)" };
    }
    let e = this.tlb.lookup(cfg.tag, Number(req.iova));
    if (!e) {
      this.stats.walks++;
      const r = walk(this.memory, w, req.iova);
      if (r.kind === "fault") {
        this.recordFault(r.event, sid, req, cfg.stage === 2);
        return { kind: "fault", reason: eventName(r.event) };
      }
      const p = leafPermissions(cfg.stage, r.desc);
      const entry = leafEntry(r, p.readable || (this.quirks && p.writable), p.writable);
      this.tlb.insert(cfg.tag, entry);
      e = entry;
    }
    if (read ? !e.readable : !e.writable) {
      this.recordFault(EVT.F_PERMISSION, sid, req, cfg.stage === 2);
      return { kind: "fault", reason: "F_PERMISSION" };
    }
    return { kind: "ok", phys: req.iova + e.delta, span: e.end - req.iova };
  }

  /**
   * Walk `iova` for stream `sid` straight from memory: no TLB, no config cache, no event (what the
   * tables say now). For tests comparing the driver's tables with a model.
   */
  walkFromMemory(sid: number, iova: bigint): WalkResult | StreamConfig {
    const cfg = this.fetchConfig(sid);
    if (cfg.kind !== "translate") return cfg;
    if (iova >> BigInt(cfg.walk.inputBits) !== 0n) return { kind: "fault", event: EVT.F_TRANSLATION, level: 0 };
    return walk(this.memory, cfg.walk, iova);
  }

  /** Read `sid`'s STE (and CD) from the stream table the registers point at. */
  private fetchConfig(sid: number): StreamConfig {
    return fetchStreamConfig(
      this.memory,
      { base: this.reg64(REG.STRTAB_BASE) & ((1n << 52n) - 1n) & ~0x3fn, cfg: this.reg(REG.STRTAB_BASE_CFG) },
      sid,
      this.oasBits,
      this.stages,
      this.iasBits,
    );
  }

  /** Configuration cache contents for `sid` (tests: stale-config checks). */
  cachedConfig(sid: number): StreamConfig | undefined {
    return this.configCache.get(sid);
  }

  private streamConfig(sid: number): StreamConfig {
    if (sid === this.lastSid && this.lastConfig) return this.lastConfig;
    const hit = this.configCache.get(sid);
    if (hit) {
      this.lastSid = sid;
      this.lastConfig = hit;
      return hit;
    }
    const cfg = this.fetchConfig(sid);
    // Only well-formed configurations are cached; a bad STE is re-read next time.
    if (cfg.kind !== "error") this.configCache.set(sid, cfg);
    return cfg;
  }

  // ---- registers ----

  private reg(off: number): number {
    return this.regs.get(off) ?? 0;
  }

  private reg64(off: number): bigint {
    return BigInt(this.reg(off)) | (BigInt(this.reg(off + 4)) << 32n);
  }

  private mmioRead(off: number, size: 1 | 2 | 4 | 8): bigint {
    if (size === 8) return BigInt(this.read32(off)) | (BigInt(this.read32(off + 4)) << 32n);
    const word = this.read32(off & ~3);
    const shift = (off & 3) * 8;
    return BigInt((word >>> shift) & (size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff));
  }

  private read32(off: number): number {
    if (off >= REG.IDR0 && off <= REG.IDR5) return this.idr[off >> 2] ?? 0;
    if (off === REG.EVTQ_PROD_PAGE0 || off === REG.EVTQ_CONS_PAGE0) return this.reg(off + 0x10000);
    return this.reg(off);
  }

  private mmioWrite(off: number, size: 1 | 2 | 4 | 8, value: bigint, _attrs: MemTxAttrs): void {
    if (size === 8) {
      this.write32(off, Number(value & 0xffffffffn));
      this.write32(off + 4, Number(value >> 32n));
      return;
    }
    if (size !== 4) return; // sub-word register writes are ignored (CONSTRAINED UNPREDICTABLE)
    this.write32(off, Number(value));
  }

  private write32(off: number, v: number): void {
    v >>>= 0;
    if (off === REG.EVTQ_PROD_PAGE0 || off === REG.EVTQ_CONS_PAGE0) off += 0x10000;
    switch (off) {
      case REG.CR0:
        this.enabled = (v & CR0.SMMUEN) !== 0;
        this.regs.set(REG.CR0, v);
        this.regs.set(REG.CR0ACK, v);
        if (v & CR0.CMDQEN) this.consumeCommands();
        return;
      case REG.IRQ_CTRL:
        this.regs.set(REG.IRQ_CTRL, v);
        this.regs.set(REG.IRQ_CTRLACK, v);
        return;
      case REG.GBPA:
        // UPDATE (bit 31) completes at once.
        this.regs.set(REG.GBPA, v & 0x7fffffff);
        return;
      case REG.GERRORN:
        this.regs.set(REG.GERRORN, v);
        this.consumeCommands();
        return;
      case REG.CMDQ_PROD:
        this.regs.set(REG.CMDQ_PROD, v);
        this.consumeCommands();
        return;
      case REG.EVTQ_CONS:
        this.regs.set(REG.EVTQ_CONS, v);
        return;
      case REG.CR0ACK:
      case REG.IRQ_CTRLACK:
      case REG.GERROR:
      case REG.CMDQ_CONS:
      case REG.EVTQ_PROD:
        return; // read-only to software
      default:
        if (off < REG.CR0) return; // ID registers
        this.regs.set(off, v);
    }
  }

  // ---- command queue ----

  private cmdqErrorPending(): boolean {
    return ((this.reg(REG.GERROR) ^ this.reg(REG.GERRORN)) & GERROR.CMDQ_ERR) !== 0;
  }

  private consumeCommands(): void {
    if ((this.reg(REG.CR0) & CR0.CMDQEN) === 0 || this.cmdqErrorPending()) return;
    const base = this.reg64(REG.CMDQ_BASE);
    const log2 = Math.min(Number(base & Q_BASE_LOG2SIZE_MASK), CMDQ_LOG2_MAX);
    const addr = base & Q_BASE_ADDR_MASK;
    const mask = 2 ** (log2 + 1) - 1; // index + wrap bit
    const prod = this.reg(REG.CMDQ_PROD) & mask;
    let cons = this.reg(REG.CMDQ_CONS) & mask;
    while (cons !== prod) {
      const slot = cons & (2 ** log2 - 1);
      const at = addr + BigInt(slot * CMD_BYTES);
      const d0 = this.memory.read64(at);
      const d1 = this.memory.read64(at + 8n);
      if (!this.execute(d0, d1)) {
        this.regs.set(REG.CMDQ_CONS, cons | (CERROR.ILL << CONS_ERR_SHIFT));
        this.regs.set(REG.GERROR, this.reg(REG.GERROR) ^ GERROR.CMDQ_ERR);
        this.onGerrorIrq?.();
        return;
      }
      this.stats.commands++;
      cons = (cons + 1) & mask;
    }
    this.regs.set(REG.CMDQ_CONS, cons & ~(CONS_ERR_MASK << CONS_ERR_SHIFT));
  }

  /** Execute one command; false = illegal (CERROR_ILL). */
  private execute(d0: bigint, d1: bigint): boolean {
    this.lastSid = -1;
    const op = Number(d0 & 0xffn);
    const sid = Number(d0 >> CMDF.SID_SHIFT);
    switch (op) {
      case CMD.PREFETCH_CONFIG:
        return true;
      case CMD.CFGI_STE:
      case CMD.CFGI_CD:
        // CD caching is folded into the per-stream configuration: either command drops it.
        this.configCache.delete(sid);
        return true;
      case CMD.CFGI_STE_RANGE: {
        const n = 2 ** (Number(d1 & CMDF.RANGE_MASK) + 1);
        const first = sid - (sid % n);
        if (n >= 2 ** 31) this.configCache.clear();
        else for (const k of [...this.configCache.keys()]) if (k >= first && k < first + n) this.configCache.delete(k);
        return true;
      }
      case CMD.CFGI_CD_ALL:
        this.configCache.delete(sid);
        return true;
      case CMD.TLBI_NH_ALL:
        this.tlb.invalidateWhere((t) => t < 0x10000);
        return true;
      case CMD.TLBI_NH_ASID:
        this.tlb.invalidateContext(Number((d0 >> CMDF.ASID_SHIFT) & 0xffffn));
        return true;
      case CMD.TLBI_NH_VA:
        this.invalidateVa(Number((d0 >> CMDF.ASID_SHIFT) & 0xffffn), d0, d1);
        return true;
      case CMD.TLBI_S2_IPA:
        this.invalidateVa(0x10000 + Number((d0 >> CMDF.VMID_SHIFT) & 0xffffn), d0, d1);
        return true;
      case CMD.TLBI_S12_VMALL:
        this.tlb.invalidateContext(0x10000 + Number((d0 >> CMDF.VMID_SHIFT) & 0xffffn));
        return true;
      case CMD.TLBI_EL2_ALL:
        return true;
      case CMD.TLBI_NSNH_ALL:
        this.tlb.invalidateAll();
        return true;
      case CMD.CMD_SYNC: {
        // Everything before it has completed (this model executes in order, at once).
        const cs = Number((d0 >> CMDF.CS_SHIFT) & 3n);
        const msiAddr = d1 & CMDF.SYNC_MSIADDR_MASK;
        if (cs === 1 && msiAddr !== 0n) this.memory.write32(msiAddr, Number(d0 >> CMDF.SYNC_MSIDATA_SHIFT));
        return true;
      }
      default:
        return false;
    }
  }

  /** TLBI by address: one page (TG = 0), or with RIL a range of (NUM+1) * 2^SCALE granules. */
  private invalidateVa(tag: number, d0: bigint, d1: bigint): void {
    const addr = d1 & CMDF.ADDR_MASK;
    const tgShift = tlbiTgToShift(Number((d1 >> CMDF.TG_SHIFT) & 3n));
    if (tgShift === null || ((this.idr[3] ?? 0) & IDR3_RIL) === 0) {
      this.tlb.invalidateRange(tag, addr, 1n);
      return;
    }
    const num = Number((d0 >> CMDF.NUM_SHIFT) & 0x1fn) + 1;
    const scale = Number((d0 >> CMDF.SCALE_SHIFT) & 0x1fn);
    const len = BigInt(num) << BigInt(scale + tgShift);
    this.tlb.invalidateRange(tag, addr, len);
  }

  // ---- event queue ----

  /**
   * A translation-class fault. QEMU 7.2 goes on with the rest of a faulting DMA access through the
   * unassigned region, whose accesses `memory_access_size` bounds to 4 bytes and to the alignment of their
   * address (then rounds down to a power of two), translating each again: one event per such access, read
   * or write, up to the end of the 4 KiB page (recorder/README.md; the 6.1 arm64 random-* transcripts).
   */
  private recordFault(id: number, sid: number, req: TranslateRequest, stage2: boolean): void {
    const read = req.access === "read";
    const len = req.data?.length ?? req.len ?? 0;
    if (!this.quirks || len <= 1) {
      this.recordEvent(id, sid, req.iova, read, stage2);
      return;
    }
    const end = req.iova + BigInt(Math.min(len, 0x1000 - Number(req.iova & 0xfffn)));
    for (let at = req.iova; at < end; at += unassignedAccessSize(at, end - at))
      this.recordEvent(id, sid, at, read, stage2);
  }

  private recordEvent(id: number, sid: number, iova: bigint, read: boolean, stage2: boolean): void {
    if ((this.reg(REG.CR0) & CR0.EVTQEN) === 0) return;
    const base = this.reg64(REG.EVTQ_BASE);
    const log2 = Math.min(Number(base & Q_BASE_LOG2SIZE_MASK), EVTQ_LOG2_MAX);
    const size = 2 ** log2;
    const mask = 2 * size - 1;
    const prodReg = this.reg(REG.EVTQ_PROD);
    const prod = prodReg & mask;
    const cons = this.reg(REG.EVTQ_CONS) & mask;
    if ((prod ^ cons) === size) {
      // Full: the record is lost and the overflow flag toggles.
      this.stats.eventsDropped++;
      this.regs.set(REG.EVTQ_PROD, (prodReg ^ Q_OVF) >>> 0);
      return;
    }
    const at = (base & Q_BASE_ADDR_MASK) + BigInt((prod & (size - 1)) * EVT_BYTES);
    let d1 = read ? EVTF.RNW : 0n;
    if (stage2) d1 |= EVTF.S2;
    const translationClass = id >= EVT.F_TRANSLATION && id <= EVT.F_PERMISSION;
    if (!this.quirks && translationClass) d1 |= EVTF.CLASS_IN << EVTF.CLASS_SHIFT;
    this.memory.write64(at, BigInt(id) | (BigInt(sid) << EVTF.SID_SHIFT));
    this.memory.write64(at + 8n, d1);
    this.memory.write64(at + 16n, iova);
    this.memory.write64(at + 24n, stage2 ? iova & ~0xfffn : 0n);
    this.stats.events++;
    this.regs.set(REG.EVTQ_PROD, ((prodReg & Q_OVF) | ((prod + 1) & mask)) >>> 0);
    if (this.reg(REG.IRQ_CTRL) & IRQ_CTRL.EVTQ_IRQEN) this.onEventIrq?.();
  }
}

/**
 * `memory_access_size` for QEMU's unassigned region (no max_access_size, so 4; aligned accesses only): the
 * bytes one access at `addr` moves when `left` remain.
 */
export function unassignedAccessSize(addr: bigint, left: bigint): bigint {
  let max = 4n;
  const align = addr & -addr;
  if (align !== 0n && align < max) max = align;
  const l = left < max ? left : max;
  return l >= 4n ? 4n : l >= 2n ? 2n : 1n;
}

const EVENT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(EVT).map(([k, v]) => [v, k]));

/** Name of an event id (`0x10` → `F_TRANSLATION`). */
export function eventName(id: number): string {
  return EVENT_NAMES[id] ?? `event 0x${id.toString(16)}`;
}

/** Create the hardware and register its register frame in `memory` at `mmioBase`. */
export function createSmmuV3Hardware(opts: SmmuV3HardwareOptions): SmmuV3Hardware {
  const hw = new SmmuV3Hardware(opts);
  opts.memory.addMmio(opts.mmioBase, SMMU_MMIO_SIZE, hw.mmio, hw.name);
  return hw;
}
