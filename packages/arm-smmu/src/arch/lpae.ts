/**
 * VMSAv8-64 long-descriptor (LPAE) translation table format as the SMMU uses it (reference §4.3):
 * descriptor bits and the level geometry of a granule. Stage 1 and stage 2 differ only in the
 * attribute bits.
 */

export type GranuleShift = 12 | 14 | 16;

export const DESC = {
  VALID: 1n,
  /** bits[1:0] = 0b11: table (levels < 3) or page (level 3); 0b01: block. */
  TYPE_TABLE: 3n,
  TYPE_BLOCK: 1n,
  TYPE_PAGE: 3n,
  TYPE_MASK: 3n,
  // stage-1 lower attributes
  ATTRINDX_SHIFT: 2n,
  NS: 1n << 5n,
  /** AP[1]: EL0 (unprivileged) access allowed. */
  AP_UNPRIV: 1n << 6n,
  /** AP[2]: read-only. */
  AP_RDONLY: 1n << 7n,
  SH_SHIFT: 8n,
  AF: 1n << 10n,
  NG: 1n << 11n,
  // stage-2 lower attributes
  S2_MEMATTR_SHIFT: 2n,
  S2AP_READ: 1n << 6n,
  S2AP_WRITE: 1n << 7n,
  // upper attributes
  CONT: 1n << 52n,
  PXN: 1n << 53n,
  /** UXN/XN (stage 1) or XN[1] (stage 2). */
  XN: 1n << 54n,
} as const;

/** Shareability: SH field values. */
export const SH = { NON: 0n, OUTER: 2n, INNER: 3n } as const;

/**
 * MAIR indices io-pgtable-arm uses: 0 non-cacheable, 1 write-back cacheable, 2 device-nGnRE, 3 inner
 * non-cacheable / outer write-back (the system-cache attribute; no mapping of ours selects it).
 */
export const MAIR_IDX = { NC: 0n, CACHE: 1n, DEV: 2n, INC_OCACHE: 3n } as const;
/** The MAIR value io-pgtable-arm programs (6.1): 0x44 NC, 0xff WB RWA, 0x04 Device-nGnRE, 0xf4 INC/OWB RWA. */
export const MAIR_VALUE = 0xf404ff44n;

/**
 * Table-walk attributes io-pgtable-arm puts in TCR/VTCR: a coherent walker gets inner-shareable,
 * write-back write-allocate walks; otherwise outer-shareable, non-cacheable (`coherent_walk`).
 */
export function walkAttributes(coherent: boolean): {
  readonly sh: bigint;
  readonly irgn: bigint;
  readonly orgn: bigint;
} {
  return coherent ? { sh: SH.INNER, irgn: 1n, orgn: 1n } : { sh: SH.OUTER, irgn: 0n, orgn: 0n };
}

/** Stage-2 MemAttr [5:2] values: 0x1 device-nGnRE, 0x5 normal NC, 0xf normal WB. */
export const S2_MEMATTR = { DEV: 0x1n, NC: 0x5n, CACHE: 0xfn } as const;

/** Output/next-table address of a descriptor for a granule (bits [47:granule]). */
export function descAddrMask(g: GranuleShift): bigint {
  return ((1n << 48n) - 1n) & ~((1n << BigInt(g)) - 1n);
}

/** Bits resolved per level: a table is one granule of 8-byte descriptors. */
export function bitsPerLevel(g: GranuleShift): number {
  return g - 3;
}

/** Shift of the address bits a level's descriptor maps (level 3 = the granule itself). */
export function levelShift(g: GranuleShift, level: number): number {
  return g + (3 - level) * (g - 3);
}

/** First level of a stage-1 walk over `inputBits` of VA: ceil((ias - g) / (g - 3)) levels end at 3. */
export function stage1StartLevel(g: GranuleShift, inputBits: number): number {
  const levels = Math.ceil((inputBits - g) / (g - 3));
  return 4 - levels;
}

/** Whether a block (not page) descriptor is allowed at `level` for granule `g` (48-bit OA). */
export function blockAllowed(g: GranuleShift, level: number): boolean {
  if (g === 12) return level === 1 || level === 2;
  return level === 2;
}

/** The page sizes a granule can map (leaf sizes), as a pgsize bitmap: 4K → 0x40201000. */
export function granulePgsizeBitmap(g: GranuleShift): bigint {
  let bm = 1n << BigInt(g);
  for (let lvl = 0; lvl < 3; lvl++) if (blockAllowed(g, lvl)) bm |= 1n << BigInt(levelShift(g, lvl));
  return bm;
}
