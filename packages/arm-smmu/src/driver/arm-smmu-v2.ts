/**
 * The arm-smmu (SMMUv2) driver's `iommu_ops`, Linux 6.1 `drivers/iommu/arm/arm-smmu/arm-smmu.c`
 * in outline: probe reads ID0/ID1/ID2, each device gets a stream match entry (SMR + S2CR), each
 * paging domain a stage-1 context bank (finalised at first attach, ASID = bank index) with
 * io-pgtable-arm tables, invalidation by TLBIVA/TLBIASID + TLBSYNC, and context faults read from
 * FSR/FAR/FSYNR0 and passed to `report_iommu_fault`. Same reserved regions as SMMUv3 (§4.1).
 */
import {
  type Device,
  type DomainAllocContext,
  type DomainGeometry,
  type DomainType,
  type DriverDomain,
  ErrnoError,
  emptyGather,
  IOMMU_FAULT_READ,
  IOMMU_FAULT_WRITE,
  type IommuCap,
  type IommuOps,
  type IotlbGather,
  type MapPagesResult,
  type PageAllocator,
  type PhysicalMemory,
  type ResvRegion,
} from "@iommu/core";
import { type GranuleShift, granulePgsizeBitmap, MAIR_VALUE } from "../arch/lpae.js";
import {
  V2_CB,
  V2_CBA2R_VA64,
  V2_CBAR,
  V2_FSR,
  V2_FSYNR0_WNR,
  V2_GR0,
  V2_GR1,
  V2_ID0,
  V2_ID1,
  V2_ID2,
  V2_S2CR,
  V2_SCR0,
  V2_SCTLR,
  V2_SIZE_BITS,
  V2_SMR,
  V2_TCR,
} from "../arch/smmu-v2-regs.js";
import { shiftToTg } from "../arch/structures.js";
import { LpaePageTable } from "./io-pgtable-arm.js";
import { type ResvRegionOptions, smmuResvRegions } from "./resv-regions.js";

export interface SmmuV2Features {
  readonly stage1: boolean;
  readonly streamMatching: boolean;
  readonly coherentWalk: boolean;
  readonly numSmr: number;
  readonly numCb: number;
  readonly sidBits: number;
  /** Register page size and the number of global pages (context banks follow them). */
  readonly pageShift: 12 | 16;
  readonly numPage: number;
  /** ID2.IAS (the IPA size: stage-1 output) and ID2.UBS (the VA size) in bits. */
  readonly ipaBits: number;
  readonly vaBits: number;
  readonly pgsizeBitmap: bigint;
  readonly granules: readonly GranuleShift[];
}

export interface ArmSmmuV2DriverOptions extends ResvRegionOptions {
  readonly memory: PhysicalMemory;
  readonly mmioBase: bigint;
  readonly pageAllocator: PageAllocator;
  /** Device name in log lines, default `<mmioBase hex>.iommu`. */
  readonly name?: string;
  readonly pageSize?: 4096 | 16384 | 65536;
  readonly streamIdOf?: (dev: Device) => number | null;
  readonly log?: (line: string) => void;
}

export type ArmSmmuV2Ops = IommuOps & {
  /** Context bank `cb`'s fault interrupt (`arm_smmu_context_fault`). */
  readonly handleContextIrq: (cb: number) => void;
  readonly features: SmmuV2Features;
};

interface V2Master {
  readonly dev: Device;
  readonly sid: number;
  /** Stream match register index. */
  readonly smr: number;
  domain: { readonly masters: Set<V2Master> } | null;
}

const U48 = (1n << 48n) - 1n;

/** Probe the SMMUv2 at `mmioBase`, reset it, and return its `iommu_ops`. */
export function createArmSmmuV2Driver(opts: ArmSmmuV2DriverOptions): ArmSmmuV2Ops {
  const { memory, mmioBase } = opts;
  const name = opts.name ?? `${mmioBase.toString(16)}.iommu`;
  const log = opts.log ?? (() => {});
  const rd = (off: number) => memory.read32(mmioBase + BigInt(off));
  const wr = (off: number, v: number) => memory.write32(mmioBase + BigInt(off), v);
  const wr64 = (off: number, v: bigint) => memory.write64(mmioBase + BigInt(off), v);
  const rd64 = (off: number) => memory.read64(mmioBase + BigInt(off));

  // ---- arm_smmu_device_cfg_probe ----
  const id0 = rd(V2_GR0.ID0);
  const id1 = rd(V2_GR0.ID1);
  const id2 = rd(V2_GR0.ID2);
  const granules: GranuleShift[] = [];
  if (id2 & V2_ID2.PTFS_4K) granules.push(12);
  if (id2 & V2_ID2.PTFS_16K) granules.push(14);
  if (id2 & V2_ID2.PTFS_64K) granules.push(16);
  let pgsizeBitmap = 0n;
  for (const g of granules) pgsizeBitmap |= granulePgsizeBitmap(g);
  const pageShift: 12 | 16 = id1 & V2_ID1.PAGESIZE ? 16 : 12;
  const f: SmmuV2Features = {
    stage1: (id0 & V2_ID0.S1TS) !== 0,
    streamMatching: (id0 & V2_ID0.SMS) !== 0,
    coherentWalk: (id0 & V2_ID0.CTTW) !== 0,
    numSmr: id0 & V2_ID0.NUMSMRG_MASK,
    numCb: id1 & 0xff,
    sidBits: (id0 >>> V2_ID0.NUMSIDB_SHIFT) & V2_ID0.NUMSIDB_MASK,
    pageShift,
    numPage: 2 ** (((id1 >>> V2_ID1.NUMPAGENDXB_SHIFT) & V2_ID1.NUMPAGENDXB_MASK) + 1),
    ipaBits: V2_SIZE_BITS[id2 & V2_ID2.IAS_MASK] ?? 48,
    vaBits: Math.min(48, V2_SIZE_BITS[(id2 >>> V2_ID2.UBS_SHIFT) & 0xf] ?? 48),
    pgsizeBitmap,
    granules,
  };
  if (!f.stage1 || !f.streamMatching || granules.length === 0) {
    throw new ErrnoError("ENODEV", "arm_smmu_device_cfg_probe", "need stage 1, stream matching and an AArch64 format");
  }
  const cbBase = (cb: number) => (f.numPage + cb) << f.pageShift;
  const gr1 = 1 << f.pageShift;

  // ---- arm_smmu_device_reset: no stream matches; unmatched streams fault (disable_bypass) ----
  for (let i = 0; i < f.numSmr; i++) {
    wr(V2_GR0.SMR + 4 * i, 0);
    wr(V2_GR0.S2CR + 4 * i, V2_S2CR.TYPE_FAULT << V2_S2CR.TYPE_SHIFT);
  }
  for (let cb = 0; cb < f.numCb; cb++) {
    wr(cbBase(cb) + V2_CB.SCTLR, 0);
    wr(cbBase(cb) + V2_CB.FSR, 0xffffffff);
  }
  wr(V2_GR0.TLBIALLNSNH, 0);
  wr(V2_GR0.sTLBGSYNC, 0);
  wr(V2_GR0.sCR0, V2_SCR0.GFRE | V2_SCR0.GFIE | V2_SCR0.USFCFG);

  const pageShiftPref = opts.pageSize === 65536 ? 16 : opts.pageSize === 16384 ? 14 : 12;
  const streamIdOf = opts.streamIdOf ?? ((dev: Device) => dev.requesterId);
  const masters = new Map<number, V2Master>();
  const smrUsed = new Set<number>();
  const cbOwner = new Map<number, SmmuV2Domain>();

  const tlbSync = (cb: number) => {
    // TLBSYNC then poll TLBSTATUS.SACTIVE (this model completes at once).
    wr(cbBase(cb) + V2_CB.TLBSYNC, 0);
    for (let i = 0; i < 4 && rd(cbBase(cb) + V2_CB.TLBSTATUS) & 1; i++);
  };

  class SmmuV2Domain implements DriverDomain {
    cb = -1;
    pgtable: LpaePageTable | null = null;
    readonly masters = new Set<V2Master>();
    private gather: IotlbGather = emptyGather();
    constructor(
      readonly type: DomainType,
      readonly ctx: DomainAllocContext,
    ) {}

    get pgsizeBitmap(): bigint {
      return this.pgtable?.pgsizeBitmap ?? f.pgsizeBitmap;
    }

    get geometry(): DomainGeometry {
      // Set at finalise (first attach), as arm_smmu_init_domain_context does.
      return this.pgtable
        ? { apertureStart: 0n, apertureEnd: (1n << BigInt(f.vaBits)) - 1n, forceAperture: true }
        : { apertureStart: 0n, apertureEnd: 0n, forceAperture: false };
    }

    /** arm_smmu_init_domain_context: a context bank, tables, and the bank's registers. */
    private finalise(): void {
      let cb = -1;
      for (let i = 0; i < f.numCb; i++) {
        if (!cbOwner.has(i)) {
          cb = i;
          break;
        }
      }
      if (cb < 0) throw new ErrnoError("ENOSPC", "arm_smmu_init_domain_context", "no free context bank", {});
      const g = f.granules.includes(pageShiftPref as GranuleShift)
        ? (pageShiftPref as GranuleShift)
        : (f.granules[0] as GranuleShift);
      let pt: LpaePageTable;
      try {
        pt = new LpaePageTable(memory, opts.pageAllocator, { stage: 1, granule: g, ias: f.vaBits, oas: f.ipaBits });
      } catch (e) {
        throw new ErrnoError("ENOMEM", "arm_smmu_init_domain_context", "no memory for tables", {}, { cause: e });
      }
      pt.tlbOps = {
        addPage: (iova, size) => this.gatherAdd(iova, size),
        flushWalk: (iova, size) => this.invalidate(iova, size, 1n << BigInt(g), false),
      };
      cbOwner.set(cb, this);
      this.cb = cb;
      this.pgtable = pt;
      const base = cbBase(cb);
      wr(gr1 + V2_GR1.CBA2R + 4 * cb, V2_CBA2R_VA64);
      wr(gr1 + V2_GR1.CBAR + 4 * cb, V2_CBAR.TYPE_S1_TRANS_S2_BYPASS << V2_CBAR.TYPE_SHIFT);
      wr(base + V2_CB.TCR2, V2_SIZE_BITS.indexOf(f.ipaBits as (typeof V2_SIZE_BITS)[number]));
      wr(
        base + V2_CB.TCR,
        (64 - f.vaBits) |
          (shiftToTg(g) << V2_TCR.TG0_SHIFT) |
          (1 << V2_TCR.IRGN0_SHIFT) |
          (1 << V2_TCR.ORGN0_SHIFT) |
          (3 << V2_TCR.SH0_SHIFT) |
          V2_TCR.EPD1,
      );
      // ASID = context bank index (cfg->asid = cfg->cbndx).
      wr64(base + V2_CB.TTBR0, (pt.pgd & U48) | (BigInt(cb) << 48n));
      wr(base + V2_CB.MAIR0, Number(MAIR_VALUE & 0xffffffffn));
      wr(base + V2_CB.SCTLR, V2_SCTLR.M | V2_SCTLR.TRE | V2_SCTLR.AFE | V2_SCTLR.CFRE | V2_SCTLR.CFIE);
    }

    attachDev(dev: Device): void {
      const m = dev.iommuPriv as V2Master | undefined;
      if (!m || masters.get(m.sid) !== m) {
        throw new ErrnoError("ENODEV", "arm_smmu_attach_dev", "device not probed by this SMMU", { dev: dev.name });
      }
      if (this.type !== "identity" && !this.pgtable) this.finalise();
      m.domain?.masters.delete(m);
      const s2cr =
        this.type === "identity"
          ? V2_S2CR.TYPE_BYPASS << V2_S2CR.TYPE_SHIFT
          : (V2_S2CR.TYPE_TRANS << V2_S2CR.TYPE_SHIFT) | this.cb;
      wr(V2_GR0.S2CR + 4 * m.smr, s2cr);
      m.domain = this;
      this.masters.add(m);
    }

    mapPages(iova: bigint, paddr: bigint, pgsize: bigint, pgcount: number, prot: number): MapPagesResult {
      if (!this.pgtable) {
        return { mapped: 0n, error: new ErrnoError("ENODEV", "arm_smmu_map_pages", "domain not attached yet", {}) };
      }
      return this.pgtable.map(iova, paddr, pgsize, pgcount, prot);
    }

    unmapPages(iova: bigint, pgsize: bigint, pgcount: number, gather: IotlbGather): bigint {
      if (!this.pgtable) return 0n;
      this.gather = gather;
      return this.pgtable.unmap(iova, pgsize, pgcount);
    }

    iovaToPhys(iova: bigint): bigint {
      return this.pgtable?.iovaToPhys(iova) ?? 0n;
    }

    private gatherAdd(iova: bigint, size: bigint): void {
      const g = this.gather;
      const end = iova + size - 1n;
      if (g.start <= g.end && (g.pgsize !== size || end + 1n < g.start || iova > g.end + 1n)) this.iotlbSync(g);
      if (g.start > iova) g.start = iova;
      if (g.end < end || g.start > g.end) g.end = end;
      g.pgsize = size;
    }

    iotlbSync(gather: IotlbGather): void {
      if (gather.start > gather.end || this.cb < 0) return;
      this.invalidate(gather.start, gather.end - gather.start + 1n, gather.pgsize, true);
      const e = emptyGather();
      gather.start = e.start;
      gather.end = e.end;
      gather.pgsize = e.pgsize;
    }

    /** arm_smmu_tlb_inv_range_s1: one TLBIVA(L) per granule (VA >> 12 | ASID << 48), then TLBSYNC. */
    private invalidate(iova: bigint, size: bigint, granule: bigint, leaf: boolean): void {
      const reg = cbBase(this.cb) + (leaf ? V2_CB.TLBIVAL : V2_CB.TLBIVA);
      for (let at = iova; at < iova + size; at += granule) wr64(reg, (at >> 12n) | (BigInt(this.cb) << 48n));
      tlbSync(this.cb);
    }

    flushIotlbAll(): void {
      if (this.cb < 0) return;
      wr(cbBase(this.cb) + V2_CB.TLBIASID, this.cb);
      tlbSync(this.cb);
    }

    free(): void {
      for (const m of [...this.masters]) {
        wr(V2_GR0.S2CR + 4 * m.smr, V2_S2CR.TYPE_FAULT << V2_S2CR.TYPE_SHIFT);
        m.domain = null;
      }
      this.masters.clear();
      if (this.cb < 0) return;
      // arm_smmu_destroy_domain_context: disable the bank, drop its TLB entries, free the tables.
      wr(cbBase(this.cb) + V2_CB.SCTLR, 0);
      this.flushIotlbAll();
      this.pgtable?.free();
      cbOwner.delete(this.cb);
      this.cb = -1;
    }
  }

  const handleContextIrq = (cb: number): void => {
    const base = cbBase(cb);
    const fsr = rd(base + V2_CB.FSR);
    if ((fsr & (V2_FSR.TF | V2_FSR.AFF | V2_FSR.PF | V2_FSR.EF)) === 0) return;
    const fsynr = rd(base + V2_CB.FSYNR0);
    const iova = rd64(base + V2_CB.FAR);
    const cbfrsynra = rd(gr1 + V2_GR1.CBFRSYNRA + 4 * cb);
    const dom = cbOwner.get(cb);
    const m = masters.get(cbfrsynra);
    const flags = fsynr & V2_FSYNR0_WNR ? IOMMU_FAULT_WRITE : IOMMU_FAULT_READ;
    const ret = dom && m ? dom.ctx.reportFault(m.dev, iova, flags) : -38;
    if (ret === -38) {
      log(
        `arm-smmu ${name}: Unhandled context fault: fsr=0x${fsr.toString(16)}, iova=0x${iova.toString(16).padStart(8, "0")}, fsynr=0x${fsynr.toString(16)}, cbfrsynra=0x${cbfrsynra.toString(16)}, cb=${cb}`,
      );
    }
    wr(base + V2_CB.FSR, fsr);
  };

  const masterOf = (dev: Device): V2Master => {
    const m = dev.iommuPriv as V2Master | undefined;
    if (!m || masters.get(m.sid) !== m) {
      throw new ErrnoError("ENODEV", "arm_smmu_probe_device", "device not probed by this SMMU", { dev: dev.name });
    }
    return m;
  };

  return Object.freeze({
    name: "arm-smmu",
    pgsizeBitmap: f.pgsizeBitmap,
    features: f,
    handleContextIrq,

    probeDevice(dev: Device): void {
      const sid = streamIdOf(dev);
      if (sid === null)
        throw new ErrnoError("ENODEV", "arm_smmu_probe_device", "device not behind this SMMU", { dev: dev.name });
      if (masters.get(sid)?.dev === dev) return;
      if (masters.has(sid)) throw new ErrnoError("EBUSY", "arm_smmu_master_alloc_smes", "stream id in use", { sid });
      if (sid < 0 || sid >= 2 ** f.sidBits) {
        throw new ErrnoError("ERANGE", "arm_smmu_probe_device", "stream id beyond ID0.NUMSIDB", { sid });
      }
      let smr = -1;
      for (let i = 0; i < f.numSmr; i++) {
        if (!smrUsed.has(i)) {
          smr = i;
          break;
        }
      }
      if (smr < 0) throw new ErrnoError("ENOSPC", "arm_smmu_find_sme", "no free stream match register", { sid });
      smrUsed.add(smr);
      // S2CR first (fault until attached), then the SMR that makes the stream match it.
      wr(V2_GR0.S2CR + 4 * smr, V2_S2CR.TYPE_FAULT << V2_S2CR.TYPE_SHIFT);
      wr(V2_GR0.SMR + 4 * smr, (V2_SMR.VALID | (sid & V2_SMR.ID_MASK)) >>> 0);
      const m: V2Master = { dev, sid, smr, domain: null };
      masters.set(sid, m);
      dev.iommuPriv = m;
    },

    releaseDevice(dev: Device): void {
      const m = masterOf(dev);
      m.domain?.masters.delete(m);
      wr(V2_GR0.SMR + 4 * m.smr, 0);
      wr(V2_GR0.S2CR + 4 * m.smr, V2_S2CR.TYPE_FAULT << V2_S2CR.TYPE_SHIFT);
      smrUsed.delete(m.smr);
      masters.delete(m.sid);
      dev.iommuPriv = undefined;
    },

    deviceGroup(dev: Device): string {
      const m = masterOf(dev);
      return dev.bus === "pci" ? `pci:${m.sid}` : `platform:${dev.name}`;
    },

    domainAlloc(type: DomainType, ctx: DomainAllocContext): DriverDomain | null {
      // 6.1 arm_smmu_domain_alloc: UNMANAGED, DMA, DMA_FQ, IDENTITY; the bank comes at first attach.
      if (type === "blocked") return null;
      return new SmmuV2Domain(type, ctx);
    },

    getResvRegions(dev: Device): ResvRegion[] {
      return smmuResvRegions(dev, masterOf(dev).sid, opts);
    },

    capable(_dev: Device, cap: IommuCap): boolean {
      // arm_smmu_capable: coherent walks give CACHE_COHERENCY; NOEXEC always.
      if (cap === "CACHE_COHERENCY") return f.coherentWalk;
      return cap === "NOEXEC";
    },
  } satisfies ArmSmmuV2Ops);
}
