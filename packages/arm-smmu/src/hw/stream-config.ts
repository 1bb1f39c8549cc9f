/**
 * Stream table and context descriptor fetch: what the SMMU reads from memory to learn how a stream
 * is translated (STE → Config; stage 1: CD → TTB0/T0SZ/TG0/ASID; stage 2: S2TTB/S2T0SZ/S2SL0/S2TG).
 * The decoded result is what the configuration cache holds until CFGI_STE / CFGI_CD.
 */
import type { PhysicalMemory } from "@iommu/core";
import type { GranuleShift } from "../arch/lpae.js";
import { stage1StartLevel } from "../arch/lpae.js";
import { OAS_BITS, STRTAB_CFG } from "../arch/regs.js";
import { CD, EVT, L1STD, STE, STE_BYTES, STE_CONFIG, tgToShift } from "../arch/structures.js";
import { stage2StartLevel, type WalkConfig } from "./walker.js";

/** A stream's decoded configuration. */
export type StreamConfig =
  | { readonly kind: "abort" }
  | { readonly kind: "bypass" }
  | {
      readonly kind: "translate";
      readonly stage: 1 | 2;
      /** TLB context: ASID for stage 1, 0x10000 + VMID for stage 2. */
      readonly tag: number;
      readonly walk: WalkConfig;
    }
  /** A configuration error: the event to record (C_BAD_STE, C_BAD_CD, C_BAD_STREAMID, ...). */
  | { readonly kind: "error"; readonly event: number };

/** Stream table registers as last written by the driver. */
export interface StreamTableRegs {
  readonly base: bigint;
  readonly cfg: number;
}

const err = (event: number): StreamConfig => ({ kind: "error", event });

/** Address of the STE for `sid`, or an error event (out of range, invalid L1 descriptor). */
export function steAddress(memory: PhysicalMemory, regs: StreamTableRegs, sid: number): bigint | StreamConfig {
  const log2size = regs.cfg & STRTAB_CFG.LOG2SIZE_MASK;
  if (sid >= 2 ** log2size) return err(EVT.C_BAD_STREAMID);
  const fmt = (regs.cfg >>> STRTAB_CFG.FMT_SHIFT) & 3;
  if (fmt === STRTAB_CFG.FMT_LINEAR) return regs.base + BigInt(sid * STE_BYTES);
  const split = (regs.cfg >>> STRTAB_CFG.SPLIT_SHIFT) & STRTAB_CFG.SPLIT_MASK;
  const l1 = memory.read64(regs.base + BigInt(Math.floor(sid / 2 ** split) * 8));
  const span = Number(l1 & L1STD.SPAN_MASK);
  // Span 0 means no level-2 table; otherwise it holds 2^(Span-1) STEs.
  if (span === 0 || span > split + 1) return err(EVT.C_BAD_STREAMID);
  const low = sid % 2 ** split;
  if (low >= 2 ** (span - 1)) return err(EVT.C_BAD_STREAMID);
  return (l1 & L1STD.L2PTR_MASK) + BigInt(low * STE_BYTES);
}

/** Decode the STE (and for stage 1 its CD) of `sid`. `oasBits` caps the output size (IDR5.OAS). */
export function fetchStreamConfig(
  memory: PhysicalMemory,
  regs: StreamTableRegs,
  sid: number,
  oasBits: number,
  stages: { s1: boolean; s2: boolean },
  s2InputBits = 48,
): StreamConfig {
  const at = steAddress(memory, regs, sid);
  if (typeof at !== "bigint") return at;
  const d0 = memory.read64(at);
  if ((d0 & STE.V) === 0n) return err(EVT.C_BAD_STE);
  const config = Number((d0 >> STE.CONFIG_SHIFT) & STE.CONFIG_MASK);
  if (config === STE_CONFIG.ABORT) return { kind: "abort" };
  if (config === STE_CONFIG.BYPASS) return { kind: "bypass" };
  if (config === STE_CONFIG.S1_TRANS && stages.s1) return stage1Config(memory, d0, oasBits);
  if (config === STE_CONFIG.S2_TRANS && stages.s2) return stage2Config(memory, at, oasBits, s2InputBits);
  // Nested, reserved encodings, or a stage this SMMU does not implement.
  return err(EVT.C_BAD_STE);
}

function stage1Config(memory: PhysicalMemory, d0: bigint, oasBits: number): StreamConfig {
  // S1CDMax = 0: a single CD, S1Fmt ignored; substreams are not modelled.
  if (d0 >> STE.S1CDMAX_SHIFT !== 0n) return err(EVT.C_BAD_STE);
  const cdAddr = d0 & STE.S1CTXPTR_MASK;
  const c0 = memory.read64(cdAddr);
  if ((c0 & CD.V) === 0n || (c0 & CD.AA64) === 0n) return err(EVT.C_BAD_CD);
  if ((c0 & CD.EPD0) !== 0n) return err(EVT.C_BAD_CD);
  const g = tgToShift(Number((c0 >> CD.TG0_SHIFT) & 3n)) as GranuleShift | null;
  const t0sz = Number(c0 & CD.T0SZ_MASK);
  const inputBits = 64 - t0sz;
  if (g === null || inputBits > 48 || inputBits < 25) return err(EVT.C_BAD_CD);
  const ips = Number((c0 >> CD.IPS_SHIFT) & 7n);
  const ipsBits = OAS_BITS[ips] ?? 48;
  const ttb = memory.read64(cdAddr + 8n) & CD.TTB0_MASK;
  return {
    kind: "translate",
    stage: 1,
    tag: Number(c0 >> CD.ASID_SHIFT),
    walk: {
      stage: 1,
      ttb,
      granule: g,
      inputBits,
      startLevel: stage1StartLevel(g, inputBits),
      outputBits: Math.min(ipsBits, oasBits),
      accessFlagFaults: (c0 & CD.HA) === 0n,
    },
  };
}

function stage2Config(memory: PhysicalMemory, steAddr: bigint, oasBits: number, maxInput: number): StreamConfig {
  const d2 = memory.read64(steAddr + 16n);
  const d3 = memory.read64(steAddr + 24n);
  if ((d2 & STE.S2AA64) === 0n) return err(EVT.C_BAD_STE);
  const g = tgToShift(Number((d2 >> STE.S2TG_SHIFT) & 3n)) as GranuleShift | null;
  const inputBits = 64 - Number((d2 >> STE.S2T0SZ_SHIFT) & 0x3fn);
  if (g === null || inputBits > Math.min(48, maxInput) || inputBits < 25) return err(EVT.C_BAD_STE);
  const start = stage2StartLevel(g, Number((d2 >> STE.S2SL0_SHIFT) & 3n), inputBits);
  if (start === null) return err(EVT.C_BAD_STE);
  const psBits = OAS_BITS[Number((d2 >> STE.S2PS_SHIFT) & 7n)] ?? 48;
  return {
    kind: "translate",
    stage: 2,
    tag: 0x10000 + Number(d2 & STE.S2VMID_MASK),
    walk: {
      stage: 2,
      ttb: d3 & STE.S2TTB_MASK,
      granule: g,
      inputBits,
      startLevel: start,
      outputBits: Math.min(psBits, oasBits),
      accessFlagFaults: (d2 & STE.S2AFFD) === 0n,
    },
  };
}
