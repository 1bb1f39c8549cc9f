/**
 * SMMUv3 register map (Arm IHI 0070, "SMMU_*" registers): the offsets and fields both the hardware
 * model and the driver follow, as a real driver and a real SMMU both follow the architecture.
 * Page 1 (offset 0x10000) holds the event/PRI queue producer and consumer indices.
 */

export const SMMU_MMIO_SIZE = 0x20000n;
export const SMMU_PAGE1 = 0x10000;

export const REG = {
  IDR0: 0x00,
  IDR1: 0x04,
  IDR2: 0x08,
  IDR3: 0x0c,
  IDR4: 0x10,
  IDR5: 0x14,
  IIDR: 0x18,
  AIDR: 0x1c,
  CR0: 0x20,
  CR0ACK: 0x24,
  CR1: 0x28,
  CR2: 0x2c,
  STATUSR: 0x40,
  GBPA: 0x44,
  IRQ_CTRL: 0x50,
  IRQ_CTRLACK: 0x54,
  GERROR: 0x60,
  GERRORN: 0x64,
  STRTAB_BASE: 0x80,
  STRTAB_BASE_CFG: 0x88,
  CMDQ_BASE: 0x90,
  CMDQ_PROD: 0x98,
  CMDQ_CONS: 0x9c,
  EVTQ_BASE: 0xa0,
  /** Page-0 aliases of the event queue indices; Linux uses the page-1 copies. */
  EVTQ_PROD_PAGE0: 0xa8,
  EVTQ_CONS_PAGE0: 0xac,
  EVTQ_PROD: 0x100a8,
  EVTQ_CONS: 0x100ac,
} as const;

/** IDR0 fields. */
export const IDR0 = {
  S2P: 1 << 0,
  S1P: 1 << 1,
  /** TTF [3:2]: 2 = AArch64 tables only. */
  TTF_SHIFT: 2,
  TTF_AARCH64: 2,
  COHACC: 1 << 4,
  ASID16: 1 << 12,
  VMID16: 1 << 18,
  /** ST_LEVEL [28:27]: 0 linear only, 1 two-level supported. */
  ST_LEVEL_SHIFT: 27,
  ST_LEVEL_2LVL: 1,
  /** TERM_MODEL: 1 = aborted transactions terminate with an abort (no RAZ/WI). */
  TERM_MODEL: 1 << 26,
  /** STALL_MODEL [25:24]: 1 = stall not supported. */
  STALL_MODEL_SHIFT: 24,
} as const;

/** IDR1 fields. */
export const IDR1 = {
  SIDSIZE_SHIFT: 0,
  SIDSIZE_MASK: 0x3f,
  SSIDSIZE_SHIFT: 6,
  SSIDSIZE_MASK: 0x1f,
  EVTQS_SHIFT: 16,
  EVTQS_MASK: 0x1f,
  CMDQS_SHIFT: 21,
  CMDQS_MASK: 0x1f,
} as const;

/** IDR3: RIL = range invalidation (TLBI with NUM/SCALE). */
export const IDR3_RIL = 1 << 10;

/** IDR5 fields. */
export const IDR5 = {
  OAS_MASK: 0x7,
  GRAN4K: 1 << 4,
  GRAN16K: 1 << 5,
  GRAN64K: 1 << 6,
} as const;

/** IDR5.OAS / CD.IPS / STE.S2PS encodings → address bits. */
export const OAS_BITS = [32, 36, 40, 42, 44, 48, 52] as const;

/** Encoding of an address size in bits (the inverse of OAS_BITS). */
export function oasEncoding(bits: number): number {
  const i = OAS_BITS.indexOf(bits as (typeof OAS_BITS)[number]);
  if (i < 0) throw new RangeError(`address size ${bits} bits has no SMMUv3 encoding`);
  return i;
}

export const CR0 = {
  SMMUEN: 1 << 0,
  EVTQEN: 1 << 2,
  CMDQEN: 1 << 3,
} as const;

/** GBPA.ABORT: with SMMUEN clear, abort incoming transactions instead of bypassing. */
export const GBPA_ABORT = 1 << 20;

export const IRQ_CTRL = { GERROR_IRQEN: 1 << 0, EVTQ_IRQEN: 1 << 2 } as const;

/** GERROR bits (each toggles; GERRORN acknowledges by matching). */
export const GERROR = { CMDQ_ERR: 1 << 0 } as const;

/** STRTAB_BASE_CFG fields. */
export const STRTAB_CFG = {
  LOG2SIZE_MASK: 0x3f,
  SPLIT_SHIFT: 6,
  SPLIT_MASK: 0x1f,
  FMT_SHIFT: 16,
  FMT_LINEAR: 0,
  FMT_2LVL: 1,
} as const;

/** Address field of STRTAB_BASE (bits [51:6]) and of queue bases (bits [51:5]). */
export const STRTAB_BASE_ADDR_MASK = ((1n << 52n) - 1n) & ~0x3fn;
export const Q_BASE_ADDR_MASK = ((1n << 52n) - 1n) & ~0x1fn;
export const Q_BASE_LOG2SIZE_MASK = 0x1fn;
/** RA (read-allocate hint) in STRTAB_BASE and queue bases. */
export const BASE_RA = 1n << 62n;

/** Queue index registers: index + wrap bit at bit log2size; CONS.ERR [30:24]; OVFLG bit 31. */
export const Q_OVF = 0x80000000;
export const CONS_ERR_SHIFT = 24;
export const CONS_ERR_MASK = 0x7f;
/** CONS.ERR codes. */
export const CERROR = { NONE: 0, ILL: 1, ABT: 2 } as const;
