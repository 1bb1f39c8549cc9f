/**
 * An SMMUv3 domain (`struct arm_smmu_domain`): a stage-1 context (ASID, one CD, LPAE tables) or a
 * stage-2 context (VMID, LPAE tables with concatenated start tables), or bypass for identity. Attach
 * writes the device's STE; unmaps are gathered and invalidated by TLBI commands at sync.
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
import { levelShift, MAIR_VALUE, walkAttributes } from "../arch/lpae.js";
import { oasEncoding } from "../arch/regs.js";
import { CD, CD_BYTES, CMD, CMDF, S2TG, STE, STE_CONFIG, shiftToTg, shiftToTlbiTg } from "../arch/structures.js";
import { LpaePageTable } from "./pgtable.js";
import type { Command, SmmuDevice } from "./smmu-device.js";

/** Per-device driver state (`struct arm_smmu_master`), kept in `dev.iommuPriv`. */
export interface SmmuMaster {
  readonly dev: Device;
  readonly sid: number;
  domain: SmmuDomain | null;
}

export interface SmmuDomainInit {
  readonly smmu: SmmuDevice;
  readonly type: DomainType;
  readonly ctx: DomainAllocContext;
  /** Stage for paging domains. */
  readonly stage: 1 | 2;
  /** The CPU page size io-pgtable prefers for the granule. */
  readonly pageShift: 12 | 14 | 16;
}

const STAGE1_IAS = 48;

export class SmmuDomain implements DriverDomain {
  readonly type: DomainType;
  readonly ctx: DomainAllocContext;
  readonly stage: 1 | 2 | "bypass";
  readonly pgsizeBitmap: bigint;
  readonly geometry: DomainGeometry;
  readonly pgtable: LpaePageTable | null;
  readonly masters = new Set<SmmuMaster>();
  /** ASID (stage 1) or VMID (stage 2); 0 for bypass. */
  readonly tag: number;
  private readonly smmu: SmmuDevice;
  private cd = 0n;
  private freed = false;

  /** Throws ENOMEM when no ASID/VMID or memory is left (domain_alloc then answers null). */
  constructor(init: SmmuDomainInit) {
    this.smmu = init.smmu;
    this.type = init.type;
    this.ctx = init.ctx;
    const f = init.smmu.features;
    if (init.type === "identity") {
      this.stage = "bypass";
      this.pgsizeBitmap = f.pgsizeBitmap;
      this.geometry = { apertureStart: 0n, apertureEnd: 0n, forceAperture: false };
      this.pgtable = null;
      this.tag = 0;
      return;
    }
    this.stage = init.stage;
    // io-pgtable picks the CPU page size's granule if the SMMU has it, else the smallest larger one.
    const g = f.granules.includes(init.pageShift)
      ? init.pageShift
      : (f.granules.find((x) => x > init.pageShift) ?? f.granules[0]);
    if (g === undefined) throw new ErrnoError("ENODEV", "arm_smmu_domain_finalise", "no granule");
    const ias = init.stage === 1 ? STAGE1_IAS : f.ias;
    // Stage 1 outputs IPAs of smmu->ias bits; stage 2 outputs PAs of OAS bits.
    const oas = init.stage === 1 ? f.ias : f.oas;
    const tag = init.stage === 1 ? init.smmu.allocAsid() : init.smmu.allocVmid();
    if (tag === null) throw new ErrnoError("ENOSPC", "arm_smmu_domain_finalise", "no ASID/VMID left");
    this.tag = tag;
    let pgtable: LpaePageTable | null = null;
    try {
      pgtable = new LpaePageTable(init.smmu.memory, init.smmu.pages, { stage: init.stage, granule: g, ias, oas });
      this.pgtable = pgtable;
      if (init.stage === 1) this.cd = this.writeCd(g);
    } catch (e) {
      // Nothing of a domain that could not be finalised stays allocated.
      pgtable?.free();
      this.releaseTag();
      if (!isErrno(e, "ENOMEM")) throw e;
      throw new ErrnoError("ENOMEM", "arm_smmu_domain_finalise", "no memory for tables", {}, { cause: e });
    }
    this.pgtable.tlbOps = {
      addPage: (iova, size) => this.gatherAdd(iova, size),
      flushWalk: (iova, size) => this.invalidateRange(iova, size, this.granuleSize(), false),
    };
    this.pgsizeBitmap = this.pgtable.pgsizeBitmap;
    this.geometry = { apertureStart: 0n, apertureEnd: (1n << BigInt(ias)) - 1n, forceAperture: true };
  }

  // ---- attach ----

  attachDev(dev: Device): void {
    const master = dev.iommuPriv as SmmuMaster | undefined;
    if (!master || typeof master !== "object" || !("sid" in master)) {
      throw new ErrnoError("ENODEV", "arm_smmu_attach_dev", "device was not probed by this SMMU", { dev: dev.name });
    }
    if (this.freed) throw new ErrnoError("EINVAL", "arm_smmu_attach_dev", "domain was freed", { dev: dev.name });
    if (master.domain === this) return;
    master.domain?.masters.delete(master);
    this.smmu.writeSte(master.sid, this.steDwords());
    master.domain = this;
    this.masters.add(master);
  }

  /** Remove `master` without rewriting its STE (the caller writes the next one). */
  detach(master: SmmuMaster): void {
    this.masters.delete(master);
    if (master.domain === this) master.domain = null;
  }

  private steDwords(): bigint[] {
    const d = [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n];
    if (this.stage === "bypass") {
      d[0] = STE.V | (BigInt(STE_CONFIG.BYPASS) << STE.CONFIG_SHIFT);
      d[1] = 1n << STE.SHCFG_SHIFT;
      return d;
    }
    const pt = this.pgtable as LpaePageTable;
    if (this.stage === 1) {
      d[0] = STE.V | (BigInt(STE_CONFIG.S1_TRANS) << STE.CONFIG_SHIFT) | this.cd;
      // S1DSS = SSID0, inner/outer WBRA and inner-shareable CD fetches, NS-EL1 stream world.
      d[1] = STE.S1DSS_SSID0 | (1n << 2n) | (1n << 4n) | (3n << 6n);
      return d;
    }
    const g = pt.cfg.granule;
    const sl0 = g === 12 ? 2 - pt.startLevel : 3 - pt.startLevel;
    const walk = walkAttributes(this.smmu.features.coherent);
    d[0] = STE.V | (BigInt(STE_CONFIG.S2_TRANS) << STE.CONFIG_SHIFT);
    d[2] =
      BigInt(this.tag) |
      (BigInt(64 - pt.cfg.ias) << STE.S2T0SZ_SHIFT) |
      (BigInt(sl0) << STE.S2SL0_SHIFT) |
      (walk.irgn << STE.S2IR0_SHIFT) |
      (walk.orgn << STE.S2OR0_SHIFT) |
      (walk.sh << STE.S2SH0_SHIFT) |
      (BigInt(g === 12 ? S2TG.G4K : g === 16 ? S2TG.G64K : S2TG.G16K) << STE.S2TG_SHIFT) |
      (BigInt(oasEncoding(pt.cfg.oas)) << STE.S2PS_SHIFT) |
      STE.S2AA64 |
      STE.S2PTW |
      STE.S2R;
    d[3] = pt.pgd & STE.S2TTB_MASK;
    return d;
  }

  /** One context descriptor (S1CDMax = 0): TTB0, T0SZ, TG0, IPS, ASID, MAIR. */
  private writeCd(g: 12 | 14 | 16): bigint {
    const pt = this.pgtable as LpaePageTable;
    const cd = this.smmu.allocBytes(CD_BYTES);
    const walk = walkAttributes(this.smmu.features.coherent);
    const d0 =
      BigInt(64 - pt.cfg.ias) |
      (BigInt(shiftToTg(g)) << CD.TG0_SHIFT) |
      (walk.irgn << CD.IR0_SHIFT) |
      (walk.orgn << CD.OR0_SHIFT) |
      (walk.sh << CD.SH0_SHIFT) |
      CD.EPD1 |
      CD.V |
      (BigInt(oasEncoding(pt.cfg.oas)) << CD.IPS_SHIFT) |
      CD.AA64 |
      CD.R |
      CD.A |
      CD.ASET |
      (BigInt(this.tag) << CD.ASID_SHIFT);
    const m = this.smmu.memory;
    m.write64(cd + 8n, pt.pgd & CD.TTB0_MASK);
    m.write64(cd + 24n, MAIR_VALUE);
    m.write64(cd, d0);
    return cd;
  }

  // ---- map / unmap ----

  mapPages(iova: bigint, paddr: bigint, pgsize: bigint, pgcount: number, prot: number): MapPagesResult {
    return (this.pgtable as LpaePageTable).map(iova, paddr, pgsize, pgcount, prot);
  }

  private gather: IotlbGather = emptyGather();

  unmapPages(iova: bigint, pgsize: bigint, pgcount: number, gather: IotlbGather): bigint {
    this.gather = gather;
    return (this.pgtable as LpaePageTable).unmap(iova, pgsize, pgcount);
  }

  /** iommu_iotlb_gather_add_page: a different size or a disjoint range syncs what was gathered first. */
  private gatherAdd(iova: bigint, size: bigint): void {
    const g = this.gather;
    const end = iova + size - 1n;
    const empty = g.start > g.end;
    if (!empty && (g.pgsize !== size || end + 1n < g.start || iova > g.end + 1n)) {
      this.iotlbSync(g);
    }
    if (g.start > iova) g.start = iova;
    if (g.end < end || g.start > g.end) g.end = end;
    g.pgsize = size;
  }

  iovaToPhys(iova: bigint): bigint {
    return (this.pgtable as LpaePageTable).iovaToPhys(iova);
  }

  /** iotlb_sync: invalidate the gathered range (leaf TLBIs) and wait; the gather is emptied. */
  iotlbSync(gather: IotlbGather): void {
    if (gather.start > gather.end) return;
    this.invalidateRange(gather.start, gather.end - gather.start + 1n, gather.pgsize || this.granuleSize(), true);
    const e = emptyGather();
    gather.start = e.start;
    gather.end = e.end;
    gather.pgsize = e.pgsize;
  }

  flushIotlbAll(): void {
    if (this.stage === "bypass") return;
    this.smmu.submit([this.contextInvalidation()]);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    // The core detaches first; a stream still pointing here would walk freed tables, so abort it.
    for (const m of [...this.masters]) {
      this.smmu.writeSte(m.sid, [STE.V | (BigInt(STE_CONFIG.ABORT) << STE.CONFIG_SHIFT)]);
      this.detach(m);
    }
    if (this.stage === "bypass") return;
    // Nothing may hit the old context once its ASID/VMID is reused.
    this.smmu.submit([this.contextInvalidation()]);
    (this.pgtable as LpaePageTable).free();
    if (this.cd !== 0n) this.smmu.pages.freeFrame(this.cd);
    this.releaseTag();
  }

  private releaseTag(): void {
    if (this.stage === 1) this.smmu.freeAsid(this.tag);
    else if (this.stage === 2) this.smmu.freeVmid(this.tag);
  }

  private contextInvalidation(): Command {
    return this.stage === 1
      ? [BigInt(CMD.TLBI_NH_ASID) | (BigInt(this.tag) << CMDF.ASID_SHIFT), 0n]
      : [BigInt(CMD.TLBI_S12_VMALL) | (BigInt(this.tag) << CMDF.VMID_SHIFT), 0n];
  }

  private granuleSize(): bigint {
    return 1n << BigInt((this.pgtable as LpaePageTable).cfg.granule);
  }

  /**
   * arm_smmu_tlb_inv_range: TLBI_NH_VA (stage 1) or TLBI_S2_IPA (stage 2) over `[iova, iova+size)`.
   * With RIL, ranges of (NUM+1) << SCALE granules; without, one command per `granule`.
   */
  private invalidateRange(iova: bigint, size: bigint, granule: bigint, leaf: boolean): void {
    const pt = this.pgtable as LpaePageTable;
    const g = pt.cfg.granule;
    const op = this.stage === 1 ? CMD.TLBI_NH_VA : CMD.TLBI_S2_IPA;
    const d0Base =
      BigInt(op) | (this.stage === 1 ? BigInt(this.tag) << CMDF.ASID_SHIFT : BigInt(this.tag) << CMDF.VMID_SHIFT);
    const leafBit = leaf ? CMDF.LEAF : 0n;
    const cmds: Command[] = [];
    const end = iova + size;
    if (this.smmu.features.rangeInvalidation) {
      const tg = BigInt(shiftToTlbiTg(g));
      // TTL: the level of the leaves being invalidated (a hint the hardware may use).
      const granuleShift = bitLen(granule) - 1;
      let ttl = 0;
      for (let l = 1; l <= 3; l++) if (levelShift(g, l) === granuleShift) ttl = l;
      let pages = size >> BigInt(g);
      let at = iova;
      while (pages > 0n) {
        const scale = trailingZeros(pages);
        const num = (pages >> BigInt(scale)) & 31n;
        const d0 = d0Base | ((num - 1n) << CMDF.NUM_SHIFT) | (BigInt(scale) << CMDF.SCALE_SHIFT);
        cmds.push([d0, (at & CMDF.ADDR_MASK) | leafBit | (BigInt(ttl) << CMDF.TTL_SHIFT) | (tg << CMDF.TG_SHIFT)]);
        const span = num << BigInt(scale + g);
        pages -= num << BigInt(scale);
        at += span;
      }
    } else {
      for (let at = iova; at < end; at += granule) cmds.push([d0Base, (at & CMDF.ADDR_MASK) | leafBit]);
    }
    this.smmu.submit(cmds);
  }
}

function bitLen(v: bigint): number {
  return v.toString(2).length;
}

function trailingZeros(v: bigint): number {
  let n = 0;
  while ((v & 1n) === 0n) {
    v >>= 1n;
    n++;
  }
  return n;
}
