/**
 * In-memory structures of SMMUv3 (Arm IHI 0070 §5, §4, §7): stream table entries, context
 * descriptors, commands and event records. Each is little-endian 64-bit dwords; positions here.
 */

export const STE_BYTES = 64;
export const STE_DWORDS = 8;
export const CD_BYTES = 64;
export const CMD_BYTES = 16;
export const EVT_BYTES = 32;

/** Level-1 stream table descriptor: L2Ptr [51:6], Span [4:0] (2^(Span-1) STEs; 0 = invalid). */
export const L1STD = {
  SPAN_MASK: 0x1fn,
  L2PTR_MASK: ((1n << 52n) - 1n) & ~0x3fn,
} as const;

/** STE dword 0..3 fields. */
export const STE = {
  V: 1n,
  CONFIG_SHIFT: 1n,
  CONFIG_MASK: 0x7n,
  S1FMT_SHIFT: 4n,
  S1CTXPTR_MASK: ((1n << 52n) - 1n) & ~0x3fn,
  S1CDMAX_SHIFT: 59n,
  // dword 1
  S1DSS_MASK: 0x3n,
  /** S1DSS = 0b10: a transaction without a substream uses CD 0 (what 6.1 writes). */
  S1DSS_SSID0: 2n,
  /** STRW [31:30]: 0 = NS-EL1 stream world. */
  STRW_SHIFT: 30n,
  /** SHCFG [45:44]: 1 = use incoming shareability. */
  SHCFG_SHIFT: 44n,
  // dword 2
  S2VMID_MASK: 0xffffn,
  S2T0SZ_SHIFT: 32n,
  S2SL0_SHIFT: 38n,
  S2IR0_SHIFT: 40n,
  S2OR0_SHIFT: 42n,
  S2SH0_SHIFT: 44n,
  S2TG_SHIFT: 46n,
  S2PS_SHIFT: 48n,
  S2AA64: 1n << 51n,
  S2AFFD: 1n << 53n,
  S2PTW: 1n << 54n,
  S2R: 1n << 58n,
  // dword 3
  S2TTB_MASK: ((1n << 52n) - 1n) & ~0xfn,
} as const;

/** STE.Config values. */
export const STE_CONFIG = {
  ABORT: 0b000,
  BYPASS: 0b100,
  S1_TRANS: 0b101,
  S2_TRANS: 0b110,
  NESTED: 0b111,
} as const;

/** CD dword 0/1/3 fields. */
export const CD = {
  T0SZ_MASK: 0x3fn,
  TG0_SHIFT: 6n,
  IR0_SHIFT: 8n,
  OR0_SHIFT: 10n,
  SH0_SHIFT: 12n,
  EPD0: 1n << 14n,
  EPD1: 1n << 30n,
  V: 1n << 31n,
  IPS_SHIFT: 32n,
  AFFD: 1n << 35n,
  AA64: 1n << 41n,
  HA: 1n << 43n,
  R: 1n << 45n,
  A: 1n << 46n,
  ASET: 1n << 47n,
  ASID_SHIFT: 48n,
  // dword 1
  TTB0_MASK: ((1n << 52n) - 1n) & ~0xfn,
} as const;

/** CD.TG0 encodings (note: not in size order). */
export const TG0 = { G4K: 0, G64K: 1, G16K: 2 } as const;
/** STE.S2TG encodings. */
export const S2TG = { G4K: 0, G64K: 1, G16K: 2 } as const;

/** Granule shift for a TG0/S2TG encoding (both use the same code points). */
export function tgToShift(tg: number): 12 | 14 | 16 | null {
  return tg === 0 ? 12 : tg === 1 ? 16 : tg === 2 ? 14 : null;
}
export function shiftToTg(shift: 12 | 14 | 16): number {
  return shift === 12 ? 0 : shift === 16 ? 1 : 2;
}

/** Command opcodes (dword 0 [7:0]). */
export const CMD = {
  PREFETCH_CONFIG: 0x01,
  CFGI_STE: 0x03,
  CFGI_STE_RANGE: 0x04,
  CFGI_CD: 0x05,
  CFGI_CD_ALL: 0x06,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_EL2_ALL: 0x20,
  TLBI_S12_VMALL: 0x28,
  TLBI_S2_IPA: 0x2a,
  TLBI_NSNH_ALL: 0x30,
  CMD_SYNC: 0x46,
} as const;

/** Command fields. */
export const CMDF = {
  SID_SHIFT: 32n,
  SSID_SHIFT: 12n,
  /** dword 1 bit 0: leaf-only invalidation (CFGI_STE/CD, TLBI_*_VA). */
  LEAF: 1n,
  /** CFGI_STE_RANGE dword 1 [4:0]: 2^(Range+1) STEs. */
  RANGE_MASK: 0x1fn,
  NUM_SHIFT: 12n,
  SCALE_SHIFT: 20n,
  VMID_SHIFT: 32n,
  ASID_SHIFT: 48n,
  /** TLBI dword 1: TTL [9:8], TG [11:10], address [63:12]. */
  TTL_SHIFT: 8n,
  TG_SHIFT: 10n,
  ADDR_MASK: ~0xfffn & ((1n << 64n) - 1n),
  /** CMD_SYNC dword 0: CS [13:12] (0 none, 1 IRQ, 2 SEV), MSIData [63:32]; dword 1 MSIAddress [51:2]. */
  CS_SHIFT: 12n,
  SYNC_MSIDATA_SHIFT: 32n,
  SYNC_MSIADDR_MASK: ((1n << 52n) - 1n) & ~0x3n,
} as const;

/** TLBI TG field: granule of a range invalidation (1 = 4K, 2 = 16K, 3 = 64K; 0 = not a range). */
export function tlbiTgToShift(tg: number): 12 | 14 | 16 | null {
  return tg === 1 ? 12 : tg === 2 ? 14 : tg === 3 ? 16 : null;
}
export function shiftToTlbiTg(shift: 12 | 14 | 16): number {
  return shift === 12 ? 1 : shift === 14 ? 2 : 3;
}

/** Event ids (record dword 0 [7:0]). */
export const EVT = {
  F_UUT: 0x01,
  C_BAD_STREAMID: 0x02,
  F_STE_FETCH: 0x03,
  C_BAD_STE: 0x04,
  F_STREAM_DISABLED: 0x06,
  C_BAD_SUBSTREAMID: 0x08,
  F_CD_FETCH: 0x09,
  C_BAD_CD: 0x0a,
  F_WALK_EABT: 0x0b,
  F_TRANSLATION: 0x10,
  F_ADDR_SIZE: 0x11,
  F_ACCESS: 0x12,
  F_PERMISSION: 0x13,
} as const;

/** Event record fields: dword 0 SID [63:32]; dword 1 RnW bit 35, S2 bit 39, CLASS [41:40]; dword 2 input address. */
export const EVTF = {
  SID_SHIFT: 32n,
  RNW: 1n << 35n,
  S2: 1n << 39n,
  CLASS_SHIFT: 40n,
  /** CLASS: 0 CD fetch, 1 TT fetch, 2 input address translation. */
  CLASS_IN: 2n,
} as const;
