/**
 * The SMMU's translation table walker: reads VMSAv8-64 descriptors from physical memory, stage 1
 * (CD.TTB0/T0SZ/TG0) or stage 2 (STE.S2TTB/S2T0SZ/S2SL0/S2TG, with up to 16 concatenated tables at
 * the start level). Returns the leaf it found or the fault the architecture names.
 */
import { type PhysicalMemory, U64_MAX } from "@iommu/core";
import { blockAllowed, DESC, descAddrMask, type GranuleShift, levelShift } from "../arch/lpae.js";
import { EVT } from "../arch/structures.js";

export interface WalkConfig {
  readonly stage: 1 | 2;
  /** Base of the start-level table (or of the concatenated start tables). */
  readonly ttb: bigint;
  readonly granule: GranuleShift;
  /** Input address size in bits (64 - T0SZ). */
  readonly inputBits: number;
  readonly startLevel: number;
  /** Output address size in bits (CD.IPS / STE.S2PS, capped by IDR5.OAS). */
  readonly outputBits: number;
  /** Stage 1 with CD.HA clear: AF=0 faults (F_ACCESS). Stage 2: S2AFFD clear likewise. */
  readonly accessFlagFaults: boolean;
}

export type WalkResult =
  | {
      readonly kind: "leaf";
      readonly desc: bigint;
      readonly level: number;
      /** Leaf size shift (granule for pages, block size for blocks). */
      readonly shift: number;
      readonly inBase: bigint;
      readonly outBase: bigint;
    }
  | { readonly kind: "fault"; readonly event: number; readonly level: number };

const POW2: number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);

/** Per-granule constants, computed once: divisors, masks and table geometry for each level. */
interface Geometry {
  readonly div: readonly number[];
  readonly shift: readonly number[];
  /** Output address bits of a leaf at each level. */
  readonly leafMask: readonly bigint[];
  /** Input address bits above a leaf at each level (clears the offset inside it). */
  readonly inMask: readonly bigint[];
  readonly addrMask: bigint;
  readonly entries: number;
  readonly block: readonly boolean[];
}

const GEOMETRY = new Map<number, Geometry>(
  ([12, 14, 16] as const).map((g) => {
    const shift = [0, 1, 2, 3].map((l) => levelShift(g, l));
    const addrMask = descAddrMask(g);
    return [
      g,
      {
        div: shift.map((x) => POW2[x] as number),
        shift,
        leafMask: shift.map((x) => addrMask & ~((1n << BigInt(x)) - 1n)),
        inMask: shift.map((x) => U64_MAX & ~((1n << BigInt(x)) - 1n)),
        addrMask,
        entries: POW2[g - 3] as number,
        block: [0, 1, 2, 3].map((l) => l === 3 || blockAllowed(g, l)),
      },
    ];
  }),
);

const OA_LIMIT: bigint[] = Array.from({ length: 65 }, (_, i) => 1n << BigInt(i));

/**
 * Walk `va` (already checked to be < 2^inputBits). Descriptors are read one level at a time with
 * `memory.read64`, exactly what the driver wrote.
 */
export function walk(memory: PhysicalMemory, cfg: WalkConfig, va: bigint): WalkResult {
  const geo = GEOMETRY.get(cfg.granule) as Geometry;
  const vaNum = Number(va);
  const oaLimit = OA_LIMIT[cfg.outputBits] as bigint;
  let table = cfg.ttb;
  for (let level = cfg.startLevel; level <= 3; level++) {
    // The start level resolves every remaining input bit (several concatenated tables at stage 2).
    const entries =
      level === cfg.startLevel ? (POW2[cfg.inputBits - (geo.shift[level] as number)] as number) : geo.entries;
    const idx = Math.floor(vaNum / (geo.div[level] as number)) % entries;
    const desc = memory.read64(table + BigInt(idx * 8));
    const type = Number(desc & 3n);
    if ((type & 1) === 0) return { kind: "fault", event: EVT.F_TRANSLATION, level };
    if (level === 3 || type === 1) {
      // Level 3 needs 0b11 (page); a block (0b01) only where the granule allows one.
      if (level === 3 ? type !== 3 : !geo.block[level]) return { kind: "fault", event: EVT.F_TRANSLATION, level };
      const outBase = desc & (geo.leafMask[level] as bigint);
      if (outBase >= oaLimit) return { kind: "fault", event: EVT.F_ADDR_SIZE, level };
      if (cfg.accessFlagFaults && (desc & DESC.AF) === 0n) return { kind: "fault", event: EVT.F_ACCESS, level };
      return {
        kind: "leaf",
        desc,
        level,
        shift: geo.shift[level] as number,
        inBase: va & (geo.inMask[level] as bigint),
        outBase,
      };
    }
    table = desc & geo.addrMask;
    if (table >= oaLimit) return { kind: "fault", event: EVT.F_ADDR_SIZE, level };
  }
  return { kind: "fault", event: EVT.F_TRANSLATION, level: 3 };
}

/** Leaf permissions seen by an unprivileged, non-instruction access (PCIe default). */
export function leafPermissions(stage: 1 | 2, desc: bigint): { readable: boolean; writable: boolean } {
  if (stage === 1) {
    // AP[1] grants EL0 (unprivileged) access; AP[2] makes it read-only.
    const unpriv = (desc & DESC.AP_UNPRIV) !== 0n;
    return { readable: unpriv, writable: unpriv && (desc & DESC.AP_RDONLY) === 0n };
  }
  return { readable: (desc & DESC.S2AP_READ) !== 0n, writable: (desc & DESC.S2AP_WRITE) !== 0n };
}

/**
 * Stage-2 start level from S2SL0 and the granule (4K: SL0 0/1/2 → level 2/1/0; 16K/64K: → 3/2/1),
 * checked against the input size: at most 16 concatenated tables, at least one. Null = C_BAD_STE.
 */
export function stage2StartLevel(g: GranuleShift, sl0: number, inputBits: number): number | null {
  const level = g === 12 ? 2 - sl0 : 3 - sl0;
  if (level < 0 || level > 3 || sl0 > 2) return null;
  const extra = inputBits - levelShift(g, level) - (g - 3);
  if (extra > 4 || inputBits <= levelShift(g, level)) return null;
  return level;
}
