/**
 * SMMUv2 register map (Arm IHI 0062, "SMMU_*"): global register space 0 (GR0: configuration, ID,
 * stream match and stream-to-context registers), global space 1 (GR1: context bank attributes) and
 * one 4 KiB page per context bank after the global space. AArch64 (VMSAv8-64) context formats only.
 */

/** GR0 offsets. */
export const V2_GR0 = {
  sCR0: 0x0,
  ID0: 0x20,
  ID1: 0x24,
  ID2: 0x28,
  sGFAR: 0x40,
  sGFSR: 0x48,
  sGFSYNR0: 0x50,
  TLBIALLNSNH: 0x68,
  sTLBGSYNC: 0x70,
  sTLBGSTATUS: 0x74,
  SMR: 0x800,
  S2CR: 0xc00,
} as const;

export const V2_SCR0 = {
  /** Client port disable: 1 = every transaction bypasses the SMMU. */
  CLIENTPD: 1 << 0,
  GFRE: 1 << 1,
  GFIE: 1 << 2,
  /** Unidentified stream fault: 1 = a stream matching no SMR faults, 0 = it bypasses. */
  USFCFG: 1 << 10,
} as const;

export const V2_ID0 = {
  S1TS: 1 << 30,
  S2TS: 1 << 29,
  /** Stream matching (SMRs) supported. */
  SMS: 1 << 27,
  /** Coherent translation table walks. */
  CTTW: 1 << 14,
  NUMSMRG_MASK: 0xff,
  NUMSIDB_SHIFT: 9,
  NUMSIDB_MASK: 0xf,
} as const;

export const V2_ID1 = {
  /** 0 = 4 KiB register pages. */
  PAGESIZE: 1 << 31,
  NUMPAGENDXB_SHIFT: 28,
  NUMPAGENDXB_MASK: 0x7,
  NUMCB_MASK: 0xff,
} as const;

export const V2_ID2 = {
  IAS_MASK: 0xf,
  OAS_SHIFT: 4,
  UBS_SHIFT: 8,
  PTFS_4K: 1 << 12,
  PTFS_16K: 1 << 13,
  PTFS_64K: 1 << 14,
} as const;

/** ID2.IAS/OAS/UBS encodings → bits (UBS: 0 → 32 … 5 → 49 treated as 48). */
export const V2_SIZE_BITS = [32, 36, 40, 42, 44, 48] as const;
export const V2_UBS_BITS = [32, 36, 40, 42, 44, 48] as const;

/** sGFSR bits. */
export const V2_GFSR = { USF: 1 << 1 } as const;

/** SMR: ID [14:0], MASK [30:16], VALID bit 31. S2CR: CBNDX [7:0], TYPE [17:16]. */
export const V2_SMR = { ID_MASK: 0x7fff, MASK_SHIFT: 16, VALID: 1 << 31 } as const;
export const V2_S2CR = { CBNDX_MASK: 0xff, TYPE_SHIFT: 16, TYPE_TRANS: 0, TYPE_BYPASS: 1, TYPE_FAULT: 2 } as const;

/** GR1 (one page after GR0): CBAR(n) at 4n, CBFRSYNRA(n) (faulting stream id) at 0x400 + 4n, CBA2R(n) at 0x800 + 4n. */
export const V2_GR1 = { CBAR: 0x0, CBFRSYNRA: 0x400, CBA2R: 0x800 } as const;
/** CBAR.TYPE [17:16]: 0 stage 2, 1 stage 1 with stage-2 bypass. */
export const V2_CBAR = { TYPE_SHIFT: 16, TYPE_S1_TRANS_S2_BYPASS: 1, VMID_MASK: 0xff } as const;
export const V2_CBA2R_VA64 = 1;

/** Context bank page offsets. */
export const V2_CB = {
  SCTLR: 0x0,
  TCR2: 0x10,
  TTBR0: 0x20,
  TCR: 0x30,
  MAIR0: 0x38,
  FSR: 0x58,
  FAR: 0x60,
  FSYNR0: 0x68,
  TLBIVA: 0x600,
  TLBIASID: 0x610,
  TLBIVAL: 0x620,
  TLBSYNC: 0x7f0,
  TLBSTATUS: 0x7f4,
} as const;

export const V2_SCTLR = { M: 1 << 0, TRE: 1 << 1, AFE: 1 << 2, AFFD: 1 << 3, CFRE: 1 << 5, CFIE: 1 << 6 } as const;
/** FSR: TF translation, AFF access flag, PF permission, MULTI (a second fault while one is pending). */
export const V2_FSR = { TF: 1 << 1, AFF: 1 << 2, PF: 1 << 3, EF: 1 << 4, MULTI: 1 << 31 } as const;
/** FSYNR0.WNR: the fault was a write. */
export const V2_FSYNR0_WNR = 1 << 4;
/** TCR (VMSAv8-64 TTBCR for AArch64 contexts): T0SZ [5:0], TG0 [15:14], EPD1 bit 23; TCR2.PASIZE [2:0]. */
export const V2_TCR = {
  T0SZ_MASK: 0x3f,
  TG0_SHIFT: 14,
  EPD0: 1 << 7,
  EPD1: 1 << 23,
  IRGN0_SHIFT: 8,
  ORGN0_SHIFT: 10,
  SH0_SHIFT: 12,
} as const;

/** Register space size: 8 global pages + 8 context banks of 4 KiB. */
export const V2_NUMPAGENDXB = 2;
export const V2_MMIO_SIZE = 0x10000n;
