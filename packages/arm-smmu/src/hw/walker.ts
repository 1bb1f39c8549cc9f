/**
 * The SMMU's translation table walker: reads VMSAv8-64 descriptors from physical memory, stage 1
 * (CD.TTB0/T0SZ/TG0) or stage 2 (STE.S2TTB/S2T0SZ/S2SL0/S2TG, with up to 16 concatenated tables at
 * the start level). Returns the leaf it found or the fault the architecture names.
 */
import type { PhysicalMemory } from "@iommu/core";
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

/**
 * Walk `va` (already checked to be < 2^inputBits). Descriptors are read one level at a time with
 * `memory.read64`, exactly what the driver wrote.
 */
export function walk(memory: PhysicalMemory, cfg: WalkConfig, va: bigint): WalkResult {
  const g = cfg.granule;
  const vaNum = Number(va);
  const addrMask = descAddrMask(g);
  const entriesPerTable = POW2[g - 3] as number;
  let table = cfg.ttb;
  for (let level = cfg.startLevel; level <= 3; level++) {
    const shift = levelShift(g, level);
    // The start level resolves every remaining input bit (several concatenated tables at stage 2).
    const entries = level === cfg.startLevel ? (POW2[cfg.inputBits - shift] as number) : entriesPerTable;
    const idx = Math.floor(vaNum / (POW2[shift] as number)) % entries;
    const desc = memory.read64(table + BigInt(idx * 8));
    const type = desc & DESC.TYPE_MASK;
    if ((type & DESC.VALID) === 0n) return { kind: "fault", event: EVT.F_TRANSLATION, level };
    const isLeaf = level === 3 || type === DESC.TYPE_BLOCK;
    if (isLeaf) {
      if (level === 3 && type !== DESC.TYPE_PAGE) return { kind: "fault", event: EVT.F_TRANSLATION, level };
      if (level < 3 && !blockAllowed(g, level)) return { kind: "fault", event: EVT.F_TRANSLATION, level };
      const outBase = desc & addrMask & ~((1n << BigInt(shift)) - 1n);
      if (cfg.outputBits < 64 && outBase >> BigInt(cfg.outputBits) !== 0n) {
        return { kind: "fault", event: EVT.F_ADDR_SIZE, level };
      }
      if (cfg.accessFlagFaults && (desc & DESC.AF) === 0n) return { kind: "fault", event: EVT.F_ACCESS, level };
      const inBase = va & ~((1n << BigInt(shift)) - 1n);
      return { kind: "leaf", desc, level, shift, inBase, outBase };
    }
    table = desc & addrMask;
    if (cfg.outputBits < 64 && table >> BigInt(cfg.outputBits) !== 0n) {
      return { kind: "fault", event: EVT.F_ADDR_SIZE, level };
    }
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
