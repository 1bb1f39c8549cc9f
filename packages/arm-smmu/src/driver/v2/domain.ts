/**
 * An SMMUv2 domain: a stage-1 context bank (allocated at first attach, as
 * `arm_smmu_init_domain_context` does; ASID = bank index) with io-pgtable-arm tables, or bypass
 * S2CRs for identity. Invalidation is TLBIVA(L) per granule and TLBSYNC.
 */
import {
  type Device,
  type DomainAllocContext,
  type DomainGeometry,
  type DomainType,
  type DriverDomain,
  ErrnoError,
  emptyGather,
  type IotlbGather,
  isErrno,
  type MapPagesResult,
} from "@iommu/core";
import { type GranuleShift, MAIR_VALUE, walkAttributes } from "../../arch/lpae.js";
import {
  V2_CB,
  V2_CBA2R_VA64,
  V2_CBAR,
  V2_GR0,
  V2_GR1,
  V2_S2CR,
  V2_SCTLR,
  V2_SIZE_BITS,
  V2_TCR,
} from "../../arch/smmu-v2-regs.js";
import { shiftToTg } from "../../arch/structures.js";
import { LpaePageTable } from "../pgtable.js";
import type { SmmuV2Device } from "./smmu-device.js";

/** Per-device state (`struct arm_smmu_master_cfg`): its stream id and stream match entry. */
export interface SmmuV2Master {
  readonly dev: Device;
  readonly sid: number;
  /** Stream match register index (SMR and S2CR). */
  readonly smr: number;
  domain: SmmuV2Domain | null;
}

const U48 = (1n << 48n) - 1n;

export class SmmuV2Domain implements DriverDomain {
  /** Context bank, -1 until the first attach. */
  cb = -1;
  pgtable: LpaePageTable | null = null;
  readonly masters = new Set<SmmuV2Master>();
  private gather: IotlbGather = emptyGather();

  constructor(
    private readonly smmu: SmmuV2Device,
    readonly type: DomainType,
    readonly ctx: DomainAllocContext,
    private readonly pageShift: GranuleShift,
  ) {}

  get pgsizeBitmap(): bigint {
    return this.pgtable?.pgsizeBitmap ?? this.smmu.features.pgsizeBitmap;
  }

  get geometry(): DomainGeometry {
    // Known once the bank is set up, as in arm_smmu_init_domain_context.
    return this.pgtable
      ? { apertureStart: 0n, apertureEnd: (1n << BigInt(this.smmu.features.vaBits)) - 1n, forceAperture: true }
      : { apertureStart: 0n, apertureEnd: 0n, forceAperture: false };
  }

  /** A context bank, tables, and the bank's registers. Throws ENOSPC (no bank) or ENOMEM. */
  private finalise(): void {
    const s = this.smmu;
    const f = s.features;
    const cb = s.allocCb(this);
    if (cb === null) throw new ErrnoError("ENOSPC", "arm_smmu_init_domain_context", "no free context bank", {});
    const g = f.granules.includes(this.pageShift) ? this.pageShift : (f.granules[0] as GranuleShift);
    let pt: LpaePageTable;
    try {
      pt = new LpaePageTable(s.memory, s.pages, { stage: 1, granule: g, ias: f.vaBits, oas: f.ipaBits });
    } catch (e) {
      s.freeCb(cb);
      if (!isErrno(e, "ENOMEM")) throw e;
      throw new ErrnoError("ENOMEM", "arm_smmu_init_domain_context", "no memory for tables", {}, { cause: e });
    }
    pt.tlbOps = {
      addPage: (iova, size) => this.gatherAdd(iova, size),
      flushWalk: (iova, size) => this.invalidate(iova, size, 1n << BigInt(g), false),
    };
    this.cb = cb;
    this.pgtable = pt;
    const base = s.cbBase(cb);
    s.wr(s.gr1 + V2_GR1.CBA2R + 4 * cb, V2_CBA2R_VA64);
    s.wr(s.gr1 + V2_GR1.CBAR + 4 * cb, V2_CBAR.TYPE_S1_TRANS_S2_BYPASS << V2_CBAR.TYPE_SHIFT);
    s.wr(base + V2_CB.TCR2, V2_SIZE_BITS.indexOf(f.ipaBits as (typeof V2_SIZE_BITS)[number]));
    const walk = walkAttributes(f.coherentWalk);
    s.wr(
      base + V2_CB.TCR,
      (64 - f.vaBits) |
        (shiftToTg(g) << V2_TCR.TG0_SHIFT) |
        (Number(walk.irgn) << V2_TCR.IRGN0_SHIFT) |
        (Number(walk.orgn) << V2_TCR.ORGN0_SHIFT) |
        (Number(walk.sh) << V2_TCR.SH0_SHIFT) |
        V2_TCR.EPD1,
    );
    // ASID = context bank index (cfg->asid = cfg->cbndx).
    s.wr64(base + V2_CB.TTBR0, (pt.pgd & U48) | (BigInt(cb) << 48n));
    s.wr(base + V2_CB.MAIR0, Number(MAIR_VALUE & 0xffffffffn));
    s.wr(base + V2_CB.SCTLR, V2_SCTLR.M | V2_SCTLR.TRE | V2_SCTLR.AFE | V2_SCTLR.CFRE | V2_SCTLR.CFIE);
  }

  attachDev(dev: Device): void {
    const m = dev.iommuPriv as SmmuV2Master | undefined;
    if (!m || typeof m !== "object" || !("smr" in m)) {
      throw new ErrnoError("ENODEV", "arm_smmu_attach_dev", "device not probed by this SMMU", { dev: dev.name });
    }
    if (this.type !== "identity" && !this.pgtable) this.finalise();
    m.domain?.masters.delete(m);
    const s2cr =
      this.type === "identity"
        ? V2_S2CR.TYPE_BYPASS << V2_S2CR.TYPE_SHIFT
        : (V2_S2CR.TYPE_TRANS << V2_S2CR.TYPE_SHIFT) | this.cb;
    this.smmu.wr(V2_GR0.S2CR + 4 * m.smr, s2cr);
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

  /** iommu_iotlb_gather_add_page: a different size or a disjoint range syncs what was gathered first. */
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
    const reg = this.smmu.cbBase(this.cb) + (leaf ? V2_CB.TLBIVAL : V2_CB.TLBIVA);
    for (let at = iova; at < iova + size; at += granule) this.smmu.wr64(reg, (at >> 12n) | (BigInt(this.cb) << 48n));
    this.smmu.tlbSync(this.cb);
  }

  flushIotlbAll(): void {
    if (this.cb < 0) return;
    this.smmu.wr(this.smmu.cbBase(this.cb) + V2_CB.TLBIASID, this.cb);
    this.smmu.tlbSync(this.cb);
  }

  free(): void {
    for (const m of [...this.masters]) {
      this.smmu.wr(V2_GR0.S2CR + 4 * m.smr, V2_S2CR.TYPE_FAULT << V2_S2CR.TYPE_SHIFT);
      m.domain = null;
    }
    this.masters.clear();
    if (this.cb < 0) return;
    // arm_smmu_destroy_domain_context: disable the bank, drop its TLB entries, free the tables.
    this.smmu.wr(this.smmu.cbBase(this.cb) + V2_CB.SCTLR, 0);
    this.flushIotlbAll();
    this.pgtable?.free();
    this.smmu.freeCb(this.cb);
    this.cb = -1;
  }
}
