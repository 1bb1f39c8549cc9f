/**
 * The driver's handle on one DMAR unit (`struct intel_iommu`): reads CAP/ECAP, owns the root table,
 * context tables, domain ids, the invalidation queue and the interrupt-remapping table, and programs the
 * unit only through its registers (Linux `init_dmars`, `iommu_set_root_entry`, `__iommu_flush_*`,
 * `qi_submit_sync`, `dmar_fault`).
 */
import {
  ErrnoError,
  isErrno,
  type LogBuffer,
  type PageAllocator,
  type PhysicalMemory,
  type Ratelimit,
} from "@iommu/core";
import { CAP, CCMD, CTX, ECAP, FRCD, FSTS, faultReasonText, GCMD, IOTLB, IRTA, PTE, QI, REG } from "../arch/regs.js";

/** A fault the driver read back from a fault recording register. */
export interface DmarFault {
  readonly reason: number;
  readonly sourceId: number;
  /** Page address for DMA faults; the IRTE index for interrupt-remapping faults. */
  readonly addr: bigint;
  readonly isRead: boolean;
  readonly interrupt: boolean;
}

export interface DmarUnitOptions {
  readonly memory: PhysicalMemory;
  readonly alloc: PageAllocator;
  readonly registerBase: bigint;
  readonly seqId: number;
  /** Use the invalidation queue (Linux does once IR is set up) or the register commands. */
  readonly queuedInvalidation: boolean;
  readonly interruptRemapping: boolean;
  /** log2 of the IR table size (Linux: 16, 65536 entries). */
  readonly irtOrder: number;
  /** Extended interrupt mode (x2APIC, 32-bit destinations). */
  readonly eim: boolean;
  /** The driver's printk buffer (shared by every unit). */
  readonly log: LogBuffer;
  /** `dmar_fault`'s static ratelimit state (shared by every unit). */
  readonly faultRatelimit: Ratelimit;
  /** The PCI segment `dmar_fault` prints before bus:dev.fn (7.3), or null to print none (6.1, 6.12). */
  readonly faultLogSegment?: number | null;
}

const MAX_DOMAINS_SCAN = 1 << 16;
/** Below this a bigint converts to a JS number exactly (number fast paths; BigInt arithmetic allocates). */
const SAFE = 2 ** 53;
/** Qword 0 of a page-selective IOTLB descriptor without its domain id and drain bits. */
const QI_IOTLB_PSI = Number(QI.IOTLB | (IOTLB.PSI << 4n));
const QI_WAIT_SW_LO = QI.WAIT | QI.WAIT_SW;
const QI_WAIT_SW_LO_N = Number(QI_WAIT_SW_LO);

export class DmarUnit {
  readonly name: string;
  readonly cap: bigint;
  readonly ecap: bigint;
  /** Largest agaw ≤ width_to_agaw(57) set in SAGAW (`iommu_calculate_agaw`). */
  readonly agaw: number;
  readonly mgaw: number;
  /** Superpage levels (`cap_super_page_val` → fls). */
  readonly superpage: number;
  readonly ndoms: number;
  readonly root: bigint;
  irtBase = 0n;
  readonly irtEntries: number;
  irEnabled = false;
  /** x2APIC extended interrupt mode: IRTE destinations are 32-bit APIC ids. */
  readonly eim: boolean;
  /** Faults read by `handleFault` (newest last). */
  readonly faults: DmarFault[] = [];

  private gcmd = 0;
  private readonly contextTables = new Map<number, bigint>();
  private readonly domainIds = new Set<number>([0, 1]);
  private qBase = 0n;
  private qStatus = 0n;
  private qTail = 0;
  private readonly qEntries = 256;
  /** Addresses of each queue slot's two qwords and the IQT value pointing past it (no BigInt math per submit). */
  private qSlotLo: bigint[] = [];
  private qSlotHi: bigint[] = [];
  private readonly qTailValue: bigint[] = [];
  /** CAP.PSI and CAP.MAMV, decoded once. */
  private readonly psi: boolean;
  private readonly mamv: number;
  private waitStatus = 0;
  private readonly iotlbReg: bigint;
  /** The IOTLB invalidate register, 8 bytes above IVA. */
  private readonly iotlbCmdReg: bigint;
  private readonly iqtReg: bigint;
  private readonly frcdReg: bigint;
  private readonly nfr: number;
  /** CAP.DRD/DWD → the drain bits every IOTLB invalidation carries (DR 7 / DW 6 in a QI descriptor). */
  private readonly qiDrain: bigint;
  /** The same as DMA_TLB_READ_DRAIN (49) / DMA_TLB_WRITE_DRAIN (48) for the IOTLB register. */
  private readonly regDrain: bigint;
  /** Qword 0 of a page-selective IOTLB descriptor without its domain id, drain bits included. */
  private readonly qiIotlbPsi: number;

  constructor(private readonly o: DmarUnitOptions) {
    const m = o.memory;
    this.name = `dmar${o.seqId}`;
    this.cap = m.read64(o.registerBase + BigInt(REG.CAP));
    this.ecap = m.read64(o.registerBase + BigInt(REG.ECAP));
    const sagaw = Number((this.cap >> CAP.SAGAW_SHIFT) & 0x1fn);
    let agaw = 3;
    while (agaw >= 0 && !(sagaw & (1 << agaw))) agaw--;
    if (agaw < 1) throw new ErrnoError("ENODEV", "iommu_calculate_agaw", "no supported address width", { sagaw });
    this.agaw = agaw;
    this.mgaw = Number((this.cap >> CAP.MGAW_SHIFT) & 0x3fn) + 1;
    const sllps = Number((this.cap >> CAP.SLLPS_SHIFT) & 0xfn);
    this.superpage = sllps & 2 ? 2 : sllps & 1 ? 1 : 0;
    this.ndoms = 2 ** (4 + 2 * Number(this.cap & 7n));
    this.iqtReg = o.registerBase + BigInt(REG.IQT);
    this.iotlbReg = o.registerBase + ((this.ecap >> ECAP.IRO_SHIFT) & 0x3ffn) * 16n;
    this.iotlbCmdReg = this.iotlbReg + 8n;
    this.frcdReg = o.registerBase + ((this.cap >> CAP.FRO_SHIFT) & 0x3ffn) * 16n;
    this.nfr = Number((this.cap >> CAP.NFR_SHIFT) & 0xffn) + 1;
    this.psi = (this.cap & CAP.PSI) !== 0n;
    this.mamv = Number((this.cap >> CAP.MAMV_SHIFT) & 0x3fn);
    const dr = (this.cap & CAP.DRD) !== 0n;
    const dw = (this.cap & CAP.DWD) !== 0n;
    this.qiDrain = (dr ? IOTLB.QI_DR : 0n) | (dw ? IOTLB.QI_DW : 0n);
    this.regDrain = (dr ? IOTLB.DR : 0n) | (dw ? IOTLB.DW : 0n);
    this.qiIotlbPsi = QI_IOTLB_PSI + Number(this.qiDrain);
    for (let i = 0; i < this.qEntries; i++) this.qTailValue.push(BigInt(i * 16));
    this.irtEntries = 2 ** o.irtOrder;
    this.eim = o.eim;
    this.root = o.alloc.alloc();
    this.init();
  }

  get hasSnoopControl(): boolean {
    return (this.ecap & ECAP.SC) !== 0n;
  }
  get cachingMode(): boolean {
    return (this.cap & CAP.CM) !== 0n;
  }
  /** `agaw_to_width(agaw)` capped by MGAW. */
  get width(): number {
    return Math.min(30 + 9 * this.agaw, this.mgaw);
  }

  private get base(): bigint {
    return this.o.registerBase;
  }

  private w32(off: number, v: number): void {
    this.o.memory.write32(this.base + BigInt(off), v);
  }
  private r32(off: number): number {
    return this.o.memory.read32(this.base + BigInt(off));
  }
  private w64(addr: bigint, v: bigint): void {
    this.o.memory.write64(addr, v);
  }

  private setGcmd(bit: number, on: boolean): void {
    this.gcmd = on ? this.gcmd | bit : this.gcmd & ~bit;
    this.w32(REG.GCMD, this.gcmd);
  }

  /** init_dmars for one unit: root table, QI, interrupt remapping, translation on, fault event unmasked. */
  private init(): void {
    const o = this.o;
    this.w64(this.base + BigInt(REG.RTADDR), this.root);
    this.w32(REG.GCMD, this.gcmd | GCMD.SRTP);
    if (o.queuedInvalidation && this.ecap & ECAP.QI) {
      this.qBase = o.alloc.alloc();
      this.qStatus = o.alloc.alloc();
      for (let i = 0; i < this.qEntries; i++) {
        this.qSlotLo.push(this.qBase + BigInt(i * 16));
        this.qSlotHi.push(this.qBase + BigInt(i * 16 + 8));
      }
      this.w64(this.base + BigInt(REG.IQT), 0n);
      this.w64(this.base + BigInt(REG.IQA), this.qBase);
      this.setGcmd(GCMD.QIE, true);
    } else {
      this.qBase = 0n;
    }
    this.flushContextGlobal();
    this.flushIotlbGlobal();
    if (o.interruptRemapping && this.ecap & ECAP.IR && this.qBase !== 0n) {
      // The table is 2^order 16-byte entries, contiguous (INTR_REMAP_PAGE_ORDER).
      this.irtBase = o.alloc.alloc(Math.max(1, (this.irtEntries * 16) / 4096));
      this.w64(this.base + BigInt(REG.IRTA), this.irtBase | (o.eim ? IRTA.EIME : 0n) | BigInt(o.irtOrder - 1));
      this.w32(REG.GCMD, this.gcmd | GCMD.SIRTP);
      this.flushIec(0, 0, true);
      // CFI stays clear: compatibility-format interrupts are blocked once IRE is on.
      this.setGcmd(GCMD.IRE, true);
      this.irEnabled = true;
    }
    this.setGcmd(GCMD.TE, true);
    this.w32(REG.FECTL, 0);
  }

  // ---- domain ids ---------------------------------------------------------------------------

  /** `domain_attach_iommu`: first free id (0 and 1 are reserved, as Linux does). */
  allocDomainId(): number {
    for (let i = 2; i < Math.min(this.ndoms, MAX_DOMAINS_SCAN); i++) {
      if (!this.domainIds.has(i)) {
        this.domainIds.add(i);
        return i;
      }
    }
    throw new ErrnoError("ENOSPC", "domain_attach_iommu", `${this.name}: No free domain ids`, { ndoms: this.ndoms });
  }
  freeDomainId(did: number): void {
    this.domainIds.delete(did);
  }

  // ---- context entries ----------------------------------------------------------------------

  /** `iommu_context_addr(.., alloc)`: the context entry's address, allocating the bus's context table. */
  private contextAddr(sid: number, alloc: boolean): bigint | null {
    const bus = sid >> 8;
    let t = this.contextTables.get(bus);
    if (t === undefined) {
      if (!alloc) return null;
      t = this.o.alloc.alloc();
      this.contextTables.set(bus, t);
      this.w64(this.root + BigInt(bus * 16), t | 1n);
    }
    return t + BigInt((sid & 0xff) * 16);
  }

  /**
   * Make sure the bus's context table exists (`iommu_context_addr(.., alloc = 1)`), so that `mapContext`
   * cannot fail half-way. ENOMEM when no frame is left; nothing is changed then.
   */
  prepareContext(sid: number): void {
    try {
      this.contextAddr(sid, true);
    } catch (e) {
      if (!isErrno(e, "ENOMEM")) throw e;
      throw new ErrnoError(
        "ENOMEM",
        "domain_context_mapping_one",
        `${this.name}: no memory for a context table`,
        { sid },
        { cause: e },
      );
    }
  }

  contextPresent(sid: number): boolean {
    const a = this.contextAddr(sid, false);
    return a !== null && (this.o.memory.read64(a) & CTX.P) !== 0n;
  }

  /** `domain_context_mapping_one` (legacy mode): point `sid` at a page table, or pass-through. */
  mapContext(sid: number, did: number, pgd: bigint | null, agaw: number): void {
    const at = this.contextAddr(sid, true) as bigint;
    const lo =
      pgd === null
        ? (CTX.TT_PASS_THROUGH << CTX.TT_SHIFT) | CTX.P
        : (pgd & PTE.ADDR_MASK) | (CTX.TT_MULTI_LEVEL << CTX.TT_SHIFT) | CTX.P;
    const hi = BigInt(pgd === null ? this.agaw : agaw) | (BigInt(did) << CTX.DID_SHIFT);
    this.w64(at + 8n, hi);
    this.w64(at, lo);
    // Non-present → present: only caching-mode hardware may have cached the absence (in domain 0).
    if (this.cachingMode) {
      this.flushContextDevice(0, sid);
      this.flushIotlbDomain(did);
    }
  }

  /** `domain_context_clear_one`: clear the entry, then flush the context cache and the domain's IOTLB. */
  clearContext(sid: number): void {
    const at = this.contextAddr(sid, false);
    if (at === null) return;
    const hi = this.o.memory.read64(at + 8n);
    const did = Number((hi >> CTX.DID_SHIFT) & 0xffffn);
    this.w64(at, 0n);
    this.w64(at + 8n, 0n);
    this.flushContextDevice(did, sid);
    this.flushIotlbDomain(did);
  }

  // ---- invalidation ---------------------------------------------------------------------------

  private get useQi(): boolean {
    return this.qBase !== 0n;
  }

  /** `qi_submit_sync`: queue one descriptor plus a wait descriptor, bump the tail, check the status write. */
  private qiSubmit(lo: bigint, hi: bigint): void {
    const token = ++this.waitStatus & 0x7fffffff;
    this.qiPut(lo, hi);
    // The status data in lo[63:32]: one conversion while token * 2^32 is exact (token < 2^21).
    this.qiPut(
      token < 0x20_0000 ? BigInt(token * 0x1_0000_0000 + QI_WAIT_SW_LO_N) : QI_WAIT_SW_LO | (BigInt(token) << 32n),
      this.qStatus,
    );
    this.w64(this.iqtReg, this.qTailValue[this.qTail] as bigint);
    // Read the status dword back (a 32-bit read, as Linux's `desc_status` poll).
    if (this.o.memory.read32(this.qStatus) !== token) {
      throw new ErrnoError("EIO", "qi_submit_sync", `${this.name}: invalidation wait did not complete`, {});
    }
  }

  private qiPut(lo: bigint, hi: bigint): void {
    const m = this.o.memory;
    m.write64(this.qSlotLo[this.qTail] as bigint, lo);
    m.write64(this.qSlotHi[this.qTail] as bigint, hi);
    this.qTail = (this.qTail + 1) % this.qEntries;
  }

  private ccmd(v: bigint): void {
    this.w64(this.base + BigInt(REG.CCMD), v | CCMD.ICC);
  }
  private iotlbCmd(v: bigint, iva: bigint): void {
    if (iva !== 0n) this.w64(this.iotlbReg, iva);
    this.w64(this.iotlbCmdReg, v | IOTLB.IVT);
  }

  flushContextGlobal(): void {
    if (this.useQi) this.qiSubmit(QI.CC | (CCMD.GLOBAL << 4n), 0n);
    else this.ccmd(CCMD.GLOBAL << CCMD.CIRG_SHIFT);
  }
  flushContextDevice(did: number, sid: number): void {
    if (this.useQi) this.qiSubmit(QI.CC | (CCMD.DEVICE << 4n) | (BigInt(did) << 16n) | (BigInt(sid) << 32n), 0n);
    else this.ccmd((CCMD.DEVICE << CCMD.CIRG_SHIFT) | (BigInt(sid) << 16n) | BigInt(did));
  }
  flushIotlbGlobal(): void {
    if (this.useQi) this.qiSubmit(QI.IOTLB | (IOTLB.GLOBAL << 4n) | this.qiDrain, 0n);
    else this.iotlbCmd((IOTLB.GLOBAL << IOTLB.IIRG_SHIFT) | this.regDrain, 0n);
  }
  flushIotlbDomain(did: number): void {
    if (this.useQi) this.qiSubmit(QI.IOTLB | (IOTLB.DSI << 4n) | this.qiDrain | (BigInt(did) << 16n), 0n);
    else this.iotlbCmd((IOTLB.DSI << IOTLB.IIRG_SHIFT) | this.regDrain | (BigInt(did) << IOTLB.DID_SHIFT), 0n);
  }

  /** `iommu_flush_iotlb_psi`: page-selective for a power-of-two aligned cover of the range, else domain. */
  flushIotlbPages(did: number, pfn: number, pages: number, ih: boolean): void {
    let mask = 0;
    if (pages > 1) {
      mask = Math.ceil(Math.log2(pages));
      const aligned = 2 ** mask;
      if (pfn % aligned !== 0) {
        // Find the smallest aligned block holding [pfn, pfn + pages - 1].
        const end = pfn + pages - 1;
        mask = 0;
        while (Math.floor(pfn / 2 ** mask) !== Math.floor(end / 2 ** mask)) mask++;
      }
    }
    if (!this.psi || mask > this.mamv) {
      this.flushIotlbDomain(did);
      return;
    }
    // The address is the first page itself, not aligned down to the mask: 6.1 writes `addr | ih` with AM
    // beside it and the hardware ignores the address bits AM covers. pfn * 4096 + flags as one number
    // while exact (page addresses below 2^53), else in BigInt.
    const addr =
      pfn < SAFE / 4096
        ? BigInt(pfn * 4096 + (ih ? 64 : 0) + mask)
        : (BigInt(pfn) << 12n) | (ih ? 1n << 6n : 0n) | BigInt(mask);
    if (this.useQi) this.qiSubmit(BigInt(this.qiIotlbPsi + did * 65536), addr);
    else this.iotlbCmd((IOTLB.PSI << IOTLB.IIRG_SHIFT) | this.regDrain | (BigInt(did) << IOTLB.DID_SHIFT), addr);
  }

  /** `qi_flush_iec`: interrupt entry cache, global or `2^mask` entries from `index`. */
  flushIec(index: number, mask: number, global = false): void {
    if (!this.useQi) return;
    const g = global ? 0n : 1n << 4n;
    this.qiSubmit(QI.IEC | g | (BigInt(mask) << 27n) | (BigInt(index) << 32n), 0n);
  }

  // ---- interrupt-remapping table --------------------------------------------------------------

  writeIrte(index: number, lo: bigint, hi: bigint): void {
    const at = this.irtBase + BigInt(index) * 16n;
    this.w64(at + 8n, hi);
    this.w64(at, lo);
  }

  readIrte(index: number): [bigint, bigint] {
    const at = this.irtBase + BigInt(index) * 16n;
    return [this.o.memory.read64(at), this.o.memory.read64(at + 8n)];
  }

  // ---- faults ---------------------------------------------------------------------------------

  /**
   * `dmar_fault`: the fault-event interrupt handler. Reads FSTS, walks the fault recording registers from
   * FRI, logs each fault as Linux does (through the shared ratelimit), clears it (F is write-1-to-clear)
   * and finally clears PFO.
   */
  handleFault(): DmarFault[] {
    const rs = this.o.faultRatelimit;
    const fsts = this.r32(REG.FSTS);
    const found: DmarFault[] = [];
    if (fsts && rs.allow()) this.o.log.printk(`DMAR: DRHD: handling fault status reg ${fsts.toString(16)}`);
    if (fsts & FSTS.PPF) {
      let idx = (fsts >> FSTS.FRI_SHIFT) & 0xff;
      // Linux loops until it meets a clear record, asking the ratelimit before each read (so a lone
      // fault costs three tokens: status, record, the empty record that ends the loop).
      for (let n = 0; n <= this.nfr; n++) {
        const quiet = !rs.allow();
        const at = this.frcdReg + BigInt(idx * 16);
        const top = this.o.memory.read32(at + 12n);
        if (!(top & FRCD.F)) break;
        const dw2 = this.o.memory.read32(at + 8n);
        const lo = this.o.memory.read64(at);
        const reason = top & 0xff;
        const f: DmarFault = {
          reason,
          sourceId: dw2 & 0xffff,
          addr: reason >= 0x20 ? lo >> 48n : lo & ~0xfffn,
          isRead: (top & FRCD.T) !== 0,
          interrupt: reason >= 0x20,
        };
        this.o.memory.write32(at + 12n, FRCD.F);
        if (!quiet) this.o.log.printk(formatFault(f, this.o.faultLogSegment ?? null));
        found.push(f);
        idx = (idx + 1) % this.nfr;
      }
    }
    this.w32(REG.FSTS, FSTS.PFO | FSTS.PPF);
    this.faults.push(...found);
    return found;
  }
}

function bdf(sid: number, segment: number | null): string {
  const h = (v: number) => v.toString(16).padStart(2, "0");
  const seg = segment === null ? "" : `${segment.toString(16).padStart(4, "0")}:`;
  return `${seg}${h(sid >> 8)}:${h((sid >> 3) & 0x1f)}.${sid & 7}`;
}

/** `dmar_fault_do_one`'s line; `segment` non-null prints the source as segment:bus:dev.fn (7.3). */
export function formatFault(f: DmarFault, segment: number | null = null): string {
  const r = `[fault reason 0x${f.reason.toString(16).padStart(2, "0")}] ${faultReasonText(f.reason)}`;
  if (f.interrupt)
    return `DMAR: [INTR-REMAP] Request device [${bdf(f.sourceId, segment)}] fault index 0x${f.addr.toString(16)} ${r}`;
  return `DMAR: [${f.isRead ? "DMA Read" : "DMA Write"} NO_PASID] Request device [${bdf(f.sourceId, segment)}] fault addr 0x${f.addr.toString(16)} ${r}`;
}
