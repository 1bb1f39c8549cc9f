/**
 * The driver's side of one SMMUv2 (`struct arm_smmu_device`): `arm_smmu_device_cfg_probe` reads
 * ID0/ID1/ID2, `arm_smmu_device_reset` invalidates every stream match and makes unmatched streams
 * fault; stream match entries and context banks are allocated here. Registers only.
 */
import { ErrnoError, type PageAllocator, type PhysicalMemory } from "@iommu/core";
import { type GranuleShift, granulePgsizeBitmap } from "../../arch/lpae.js";
import { V2_CB, V2_GR0, V2_ID0, V2_ID1, V2_ID2, V2_S2CR, V2_SCR0, V2_SIZE_BITS } from "../../arch/smmu-v2-regs.js";
import type { SmmuV2Domain } from "./domain.js";

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

export class SmmuV2Device {
  readonly features: SmmuV2Features;
  readonly name: string;
  private readonly smrUsed = new Set<number>();
  /** Context bank → the domain that owns it. */
  private readonly cbOwners = new Map<number, SmmuV2Domain>();

  constructor(
    readonly memory: PhysicalMemory,
    readonly mmioBase: bigint,
    readonly pages: PageAllocator,
    name?: string,
  ) {
    this.name = name ?? `${mmioBase.toString(16)}.iommu`;
    this.features = this.probe();
    this.reset();
  }

  private probe(): SmmuV2Features {
    const id0 = this.rd(V2_GR0.ID0);
    const id1 = this.rd(V2_GR0.ID1);
    const id2 = this.rd(V2_GR0.ID2);
    const granules: GranuleShift[] = [];
    if (id2 & V2_ID2.PTFS_4K) granules.push(12);
    if (id2 & V2_ID2.PTFS_16K) granules.push(14);
    if (id2 & V2_ID2.PTFS_64K) granules.push(16);
    let pgsizeBitmap = 0n;
    for (const g of granules) pgsizeBitmap |= granulePgsizeBitmap(g);
    const f: SmmuV2Features = {
      stage1: (id0 & V2_ID0.S1TS) !== 0,
      streamMatching: (id0 & V2_ID0.SMS) !== 0,
      coherentWalk: (id0 & V2_ID0.CTTW) !== 0,
      numSmr: id0 & V2_ID0.NUMSMRG_MASK,
      numCb: id1 & 0xff,
      sidBits: (id0 >>> V2_ID0.NUMSIDB_SHIFT) & V2_ID0.NUMSIDB_MASK,
      pageShift: id1 & V2_ID1.PAGESIZE ? 16 : 12,
      numPage: 2 ** (((id1 >>> V2_ID1.NUMPAGENDXB_SHIFT) & V2_ID1.NUMPAGENDXB_MASK) + 1),
      ipaBits: V2_SIZE_BITS[id2 & V2_ID2.IAS_MASK] ?? 48,
      vaBits: Math.min(48, V2_SIZE_BITS[(id2 >>> V2_ID2.UBS_SHIFT) & 0xf] ?? 48),
      pgsizeBitmap,
      granules,
    };
    if (!f.stage1 || !f.streamMatching || granules.length === 0) {
      throw new ErrnoError(
        "ENODEV",
        "arm_smmu_device_cfg_probe",
        "need stage 1, stream matching and an AArch64 format",
      );
    }
    return f;
  }

  /** No stream matches; unmatched and unattached streams fault (`disable_bypass`). */
  private reset(): void {
    const f = this.features;
    for (let i = 0; i < f.numSmr; i++) {
      this.wr(V2_GR0.SMR + 4 * i, 0);
      this.wr(V2_GR0.S2CR + 4 * i, V2_S2CR.TYPE_FAULT << V2_S2CR.TYPE_SHIFT);
    }
    for (let cb = 0; cb < f.numCb; cb++) {
      this.wr(this.cbBase(cb) + V2_CB.SCTLR, 0);
      this.wr(this.cbBase(cb) + V2_CB.FSR, 0xffffffff);
    }
    this.wr(V2_GR0.TLBIALLNSNH, 0);
    this.wr(V2_GR0.sTLBGSYNC, 0);
    this.wr(V2_GR0.sCR0, V2_SCR0.GFRE | V2_SCR0.GFIE | V2_SCR0.USFCFG);
  }

  // ---- registers ----

  rd(off: number): number {
    return this.memory.read32(this.mmioBase + BigInt(off));
  }
  wr(off: number, v: number): void {
    this.memory.write32(this.mmioBase + BigInt(off), v);
  }
  rd64(off: number): bigint {
    return this.memory.read64(this.mmioBase + BigInt(off));
  }
  wr64(off: number, v: bigint): void {
    this.memory.write64(this.mmioBase + BigInt(off), v);
  }

  /** Offset of context bank `cb`'s page: after the global pages. */
  cbBase(cb: number): number {
    return (this.features.numPage + cb) << this.features.pageShift;
  }

  /** Offset of global register space 1 (CBAR, CBFRSYNRA, CBA2R). */
  get gr1(): number {
    return 1 << this.features.pageShift;
  }

  /** TLBSYNC, then poll TLBSTATUS.SACTIVE (this model completes at once). */
  tlbSync(cb: number): void {
    this.wr(this.cbBase(cb) + V2_CB.TLBSYNC, 0);
    for (let i = 0; i < 4 && this.rd(this.cbBase(cb) + V2_CB.TLBSTATUS) & 1; i++);
  }

  // ---- stream match entries and context banks ----

  allocSmr(): number | null {
    return allocLowest(this.smrUsed, this.features.numSmr);
  }
  freeSmr(i: number): void {
    this.smrUsed.delete(i);
  }
  allocCb(owner: SmmuV2Domain): number | null {
    for (let cb = 0; cb < this.features.numCb; cb++) {
      if (!this.cbOwners.has(cb)) {
        this.cbOwners.set(cb, owner);
        return cb;
      }
    }
    return null;
  }
  freeCb(cb: number): void {
    this.cbOwners.delete(cb);
  }
  /** The domain using context bank `cb` (the context fault handler's `smmu->cbs[idx].cfg`). */
  cbOwner(cb: number): SmmuV2Domain | undefined {
    return this.cbOwners.get(cb);
  }
}

function allocLowest(used: Set<number>, limit: number): number | null {
  for (let i = 0; i < limit; i++) {
    if (!used.has(i)) {
      used.add(i);
      return i;
    }
  }
  return null;
}
