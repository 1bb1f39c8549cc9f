import { IOMMU_READ, PciDevice, PlatformDevice } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { makeRig, RAM_BASE } from "../testing/rig.js";

describe("configuration cache", () => {
  it("regression: an STE rewritten without CFGI_STE is not seen until the configuration is invalidated", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    d.mapPages(0x1000n, RAM_BASE, 0x1000n, 1, IOMMU_READ);
    expect(dev.dmaRead(0x1000n, 4).ok).toBe(true);
    // Find the STE through the stream table the driver programmed and clobber it to abort.
    const base = rig.memory.read64(0x9050000n + 0x80n) & ((1n << 52n) - 1n) & ~0x3fn;
    const l2 = rig.memory.read64(base) & ((1n << 52n) - 1n) & ~0x3fn;
    const ste = l2 + BigInt(dev.requesterId * 64);
    expect(rig.memory.read64(ste) & 0xfn).toBe(0xbn); // V | Config S1_TRANS (0b101)
    rig.memory.write64(ste, 1n);
    expect(dev.dmaRead(0x1000n, 4).ok).toBe(true);
    rig.ops.releaseDevice?.(dev); // writes abort + CFGI_STE
    expect(dev.dmaRead(0x1000n, 4).ok).toBe(false);
  });
});

describe("stream tables", () => {
  it("works with a linear stream table when the SMMU has no 2-level support", () => {
    const rig = makeRig({ twoLevelStreamTable: false, streamIdBits: 8 });
    expect(rig.driver.features.twoLevelStreamTable).toBe(false);
    const cfg = rig.memory.read32(0x9050000n + 0x88n);
    expect(cfg).toBe(8); // FMT linear, LOG2SIZE 8
    const dev = rig.pci(3);
    rig.domain([dev]).mapPages(0x1000n, RAM_BASE, 0x1000n, 1, IOMMU_READ);
    expect(dev.dmaRead(0x1000n, 4).ok).toBe(true);
  });

  it("gives each 256-stream span its own level-2 table (split 8): sids 0x008 and 0x108", () => {
    const rig = makeRig();
    const a = rig.pci(1);
    const b = new PciDevice(rig.memory, { bus: 1, slot: 1, classCode: 0 });
    b.upstream = rig.hw;
    rig.ops.probeDevice(b);
    const base = rig.memory.read64(0x9050000n + 0x80n) & ((1n << 52n) - 1n) & ~0x3fn;
    const l1a = rig.memory.read64(base);
    const l1b = rig.memory.read64(base + 8n);
    expect(l1a & 0x1fn).toBe(9n); // Span = split + 1
    expect(l1b & 0x1fn).toBe(9n);
    expect(l1a & ~0x3fn).not.toBe(l1b & ~0x3fn);
    rig.domain([a]).mapPages(0x1000n, RAM_BASE, 0x1000n, 1, IOMMU_READ);
    rig.domain([b]).mapPages(0x1000n, RAM_BASE + 0x1000n, 0x1000n, 1, IOMMU_READ);
    expect(rig.hw.walkFromMemory(0x108, 0x1000n)).toMatchObject({ kind: "leaf", outBase: RAM_BASE + 0x1000n });
    expect(rig.hw.walkFromMemory(0x008, 0x1000n)).toMatchObject({ kind: "leaf", outBase: RAM_BASE });
    // A stream in a span without a level-2 table is C_BAD_STREAMID.
    expect(rig.hw.walkFromMemory(0x208, 0x1000n)).toMatchObject({ kind: "error" });
  });
});

describe("stream table size (arm_smmu_init_strtab_2lvl)", () => {
  it("caps the level-1 table at 2^17 descriptors: a 32-bit SIDSIZE gets LOG2SIZE 25 and stream ids above are refused", () => {
    const sids: Record<string, number> = { top: 2 ** 25 - 1, beyond: 2 ** 25 };
    const rig = makeRig({ streamIdBits: 32 }, { streamIdOf: (d) => sids[d.name] ?? d.requesterId });
    const cfg = rig.memory.read32(0x9050000n + 0x88n);
    expect(cfg & 0x3f).toBe(25); // LOG2SIZE
    expect((cfg >> 6) & 0x1f).toBe(8); // SPLIT
    expect(() => rig.ops.probeDevice(new PlatformDevice(rig.memory, "top", 1))).not.toThrow();
    expect(() => rig.ops.probeDevice(new PlatformDevice(rig.memory, "beyond", 2))).toThrow(
      expect.objectContaining({ code: "ERANGE" }),
    );
  });
});
