import { IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { STE } from "../arch/structures.js";
import { makeRig, RAM_BASE } from "../testing/rig.js";

describe("stage-2 domains (real SMMUv3, not QEMU 7.2's stage-1-only model)", () => {
  it("writes an S2 STE with concatenated level-1 tables for a 40-bit IPA and translates through it", () => {
    const rig = makeRig({ qemuQuirks: false, oas: 40 }, { stage: 2 });
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    expect(d.pgtable?.startLevel).toBe(1);
    expect(d.pgtable?.pgdEntries).toBe(1024);
    expect(d.geometry.apertureEnd).toBe((1n << 40n) - 1n);
    d.mapPages(0x8000000000n - 0x1000n, RAM_BASE, 0x1000n, 1, IOMMU_READ | IOMMU_WRITE);
    expect(dev.dmaWrite(0x7ffffff000n, new Uint8Array([7])).ok).toBe(true);
    const cfg = rig.hw.cachedConfig(dev.requesterId);
    expect(cfg).toMatchObject({ kind: "translate", stage: 2, walk: { inputBits: 40, startLevel: 1, granule: 12 } });
    expect(rig.memory.read(RAM_BASE, 1)[0]).toBe(7);
  });

  it("can express write-only: a read faults on real hardware, succeeds with the QEMU quirk", () => {
    for (const qemuQuirks of [false, true]) {
      const rig = makeRig({ qemuQuirks, stages: { s1: true, s2: true } }, { stage: 2 });
      const dev = rig.pci(1);
      const d = rig.domain([dev]);
      d.mapPages(0x300000n, RAM_BASE, 0x1000n, 1, IOMMU_WRITE);
      expect(dev.dmaWrite(0x300000n, new Uint8Array(4)).ok).toBe(true);
      expect(dev.dmaRead(0x300000n, 4).ok).toBe(qemuQuirks);
    }
  });

  it("records stage-2 faults with the S2 bit and the IPA", () => {
    const rig = makeRig({ qemuQuirks: false }, { stage: 2 });
    const dev = rig.pci(1);
    rig.domain([dev]);
    expect(dev.dmaRead(0x5123n, 4).ok).toBe(false);
    // RnW (bit 35) | S2 (bit 39) | CLASS=IN (2 << 40)
    expect(rig.log[2]).toBe("arm-smmu-v3 9050000.smmuv3: \t0x0000028800000000");
    expect(rig.log[4]).toBe(`arm-smmu-v3 9050000.smmuv3: \t0x${0x5000n.toString(16).padStart(16, "0")}`);
  });

  it("refuses a stage the SMMU lacks (QEMU 7.2 has no stage 2)", () => {
    expect(() => makeRig({ qemuQuirks: true }, { stage: 2 })).toThrow(expect.objectContaining({ code: "ENODEV" }));
  });

  it("writes Config=S2, S2AA64, S2TG, S2SL0, S2T0SZ, the walk attributes and the VMID into the STE", () => {
    const rig = makeRig({ qemuQuirks: false }, { stage: 2 });
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    const base = rig.memory.read64(0x9050000n + 0x80n) & ((1n << 52n) - 1n) & ~0x3fn;
    const ste = (rig.memory.read64(base) & ((1n << 52n) - 1n) & ~0x3fn) + BigInt(dev.requesterId * 64);
    expect(rig.memory.read64(ste) & 0xfn).toBe(0xdn); // V | Config 0b110
    const d2 = rig.memory.read64(ste + 16n);
    expect(d2 & 0xffffn).toBe(BigInt(d.tag));
    expect((d2 >> 32n) & 0x3fn).toBe(64n - 44n); // S2T0SZ for the 44-bit IAS
    expect((d2 >> 38n) & 3n).toBe(2n); // S2SL0 = 2: start at level 0 (32 level-1 tables would be too many)
    expect((d2 >> 46n) & 3n).toBe(0n); // S2TG 4K
    expect([(d2 >> 40n) & 3n, (d2 >> 42n) & 3n, (d2 >> 44n) & 3n]).toEqual([1n, 1n, 3n]); // S2IR0/S2OR0/S2SH0
    expect(d2 & STE.S2AA64).toBe(STE.S2AA64);
    dev.dmaRead(0n, 1);
    expect(rig.hw.cachedConfig(dev.requesterId)).toMatchObject({ kind: "translate", stage: 2, tag: 0x10000 + d.tag });
  });
});
