/**
 * The walker against hand-written descriptors (independent of the driver, so the two cannot agree
 * on a wrong format): VMSAv8-64 index bits, table/block/page encodings, AF, OAS, concatenation.
 */
import { PhysicalMemory } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { EVT } from "../arch/structures.js";
import { stage2StartLevel, type WalkConfig, walk } from "./walker.js";

const mem = () => {
  const m = new PhysicalMemory();
  m.addRam(0x40000000n, 0x1000000n);
  return m;
};
const T0 = 0x40000000n;
const T1 = 0x40001000n;
const T2 = 0x40002000n;
const T3 = 0x40003000n;
const cfg4k: WalkConfig = {
  stage: 1,
  ttb: T0,
  granule: 12,
  inputBits: 48,
  startLevel: 0,
  outputBits: 44,
  accessFlagFaults: true,
};
// AF | AP[1] (EL0) | page/table type bits.
const AF = 0x400n;
const EL0 = 0x40n;

describe("LPAE walker (4K granule, 48-bit VA, 4 levels)", () => {
  // VA 0x0000_8040_2030_1abc: L0 idx 1, L1 idx 1, L2 idx 1, L3 idx 0x301, offset 0xabc... computed below.
  const va = (1n << 39n) | (2n << 30n) | (3n << 21n) | (4n << 12n) | 0xabcn;
  function build() {
    const m = mem();
    m.write64(T0 + 1n * 8n, T1 | 3n);
    m.write64(T1 + 2n * 8n, T2 | 3n);
    m.write64(T2 + 3n * 8n, T3 | 3n);
    m.write64(T3 + 4n * 8n, 0x12345000n | AF | EL0 | 3n);
    return m;
  }

  it("resolves VA bits [47:39], [38:30], [29:21], [20:12] at levels 0..3", () => {
    expect(walk(build(), cfg4k, va)).toMatchObject({
      kind: "leaf",
      level: 3,
      shift: 12,
      inBase: va & ~0xfffn,
      outBase: 0x12345000n,
    });
  });

  it("faults F_TRANSLATION on an invalid entry at any level, naming the level", () => {
    const m = build();
    m.write64(T2 + 3n * 8n, 0n);
    expect(walk(m, cfg4k, va)).toEqual({ kind: "fault", event: EVT.F_TRANSLATION, level: 2 });
  });

  it("treats 0b01 at level 3 as invalid (reserved) and a block at level 0 as invalid", () => {
    const m = build();
    m.write64(T3 + 4n * 8n, 0x12345000n | AF | EL0 | 1n);
    expect(walk(m, cfg4k, va)).toMatchObject({ kind: "fault", event: EVT.F_TRANSLATION, level: 3 });
    m.write64(T0 + 8n, 0n | AF | 1n);
    expect(walk(m, cfg4k, va)).toMatchObject({ kind: "fault", event: EVT.F_TRANSLATION, level: 0 });
  });

  it("takes a 1 GiB block at level 1 and a 2 MiB block at level 2", () => {
    const m = build();
    m.write64(T1 + 2n * 8n, 0x80000000n | AF | EL0 | 1n);
    expect(walk(m, cfg4k, va)).toMatchObject({ kind: "leaf", level: 1, shift: 30, outBase: 0x80000000n });
    m.write64(T1 + 2n * 8n, T2 | 3n);
    m.write64(T2 + 3n * 8n, 0x600000n | AF | EL0 | 1n);
    expect(walk(m, cfg4k, va)).toMatchObject({ kind: "leaf", level: 2, shift: 21, outBase: 0x600000n });
  });

  it("faults F_ACCESS on AF=0 unless hardware AF update is on, and F_ADDR_SIZE beyond the OAS", () => {
    const m = build();
    m.write64(T3 + 4n * 8n, 0x12345000n | EL0 | 3n);
    expect(walk(m, cfg4k, va)).toMatchObject({ kind: "fault", event: EVT.F_ACCESS });
    expect(walk(m, { ...cfg4k, accessFlagFaults: false }, va)).toMatchObject({ kind: "leaf" });
    m.write64(T3 + 4n * 8n, (1n << 44n) | AF | EL0 | 3n);
    expect(walk(m, cfg4k, va)).toMatchObject({ kind: "fault", event: EVT.F_ADDR_SIZE });
  });
});

describe("stage 2 start level and concatenation", () => {
  it("maps S2SL0 to the start level per granule and accepts at most 16 concatenated tables", () => {
    // 4K: SL0 0/1/2 → level 2/1/0. 40-bit IPA from level 1: 2 tables; 44-bit from level 1: 32 (refused).
    expect(stage2StartLevel(12, 1, 40)).toBe(1);
    expect(stage2StartLevel(12, 1, 43)).toBe(1);
    expect(stage2StartLevel(12, 1, 44)).toBeNull();
    expect(stage2StartLevel(12, 2, 44)).toBe(0);
    // 64K: SL0 1 → level 2; 42 bits = 13 bits at level 2 + 16... from level 2: 42-29 = 13 bits: one table.
    expect(stage2StartLevel(16, 1, 42)).toBe(2);
  });

  it("indexes two concatenated level-1 tables with IPA bit 39", () => {
    const m = mem();
    const cfg: WalkConfig = { ...cfg4k, stage: 2, inputBits: 40, startLevel: 1 };
    // Entry 512 lives in the second table (T0 + 4K): IPA bit 39 set, bits [38:30] zero.
    m.write64(T0 + 512n * 8n, 0xc0000000n | AF | 0xc0n | 1n);
    expect(walk(m, cfg, 1n << 39n)).toMatchObject({ kind: "leaf", level: 1, outBase: 0xc0000000n });
    expect(walk(m, cfg, 0n)).toMatchObject({ kind: "fault", event: EVT.F_TRANSLATION, level: 1 });
  });
});
