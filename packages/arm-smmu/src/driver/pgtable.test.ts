import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  PageAllocator,
  PhysicalMemory,
} from "@iommu/core";
import { describe, expect, it } from "vitest";
import { LpaePageTable } from "./pgtable.js";

function table(stage: 1 | 2, granule: 12 | 14 | 16 = 12, ias = 48) {
  const m = new PhysicalMemory();
  m.addRam(0x40000000n, 0x4000000n);
  return new LpaePageTable(m, new PageAllocator(m, 0x40000000n, 0x4000000n), { stage, granule, ias, oas: 44 });
}

describe("io-pgtable-arm descriptor bits (arm_lpae_prot_to_pte)", () => {
  const s1 = table(1);
  it("stage 1: nG, AF, EL0 access, outer-shareable normal non-cacheable for a plain RW mapping", () => {
    // nG 0x800 | AF 0x400 | SH=OS 0x200 | AP[1] 0x40 | AttrIndx 0
    expect(s1.protToPte(IOMMU_READ | IOMMU_WRITE)).toBe(0xe40n);
  });
  it("stage 1: read-only sets AP[2]; PRIV drops AP[1]; CACHE picks AttrIndx 1 and inner-shareable; NOEXEC sets XN", () => {
    expect(s1.protToPte(IOMMU_READ)).toBe(0xec0n);
    expect(s1.protToPte(IOMMU_READ | IOMMU_WRITE | IOMMU_PRIV)).toBe(0xe00n);
    expect(s1.protToPte(IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE)).toBe(0xf44n);
    expect(s1.protToPte(IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO)).toBe((1n << 54n) | 0xe48n);
  });
  it("stage 1 cannot say write-only: a WRITE mapping is RW", () => {
    expect(s1.protToPte(IOMMU_WRITE)).toBe(s1.protToPte(IOMMU_READ | IOMMU_WRITE));
  });
  it("stage 2: S2AP read/write bits and MemAttr", () => {
    const s2 = table(2, 12, 40);
    expect(s2.protToPte(IOMMU_READ)).toBe(0x400n | 0x200n | 0x40n | (0x5n << 2n));
    expect(s2.protToPte(IOMMU_WRITE)).toBe(0x400n | 0x200n | 0x80n | (0x5n << 2n));
    expect(s2.protToPte(IOMMU_READ | IOMMU_WRITE | IOMMU_MMIO)).toBe(0x400n | 0x200n | 0xc0n | (0x1n << 2n));
  });
});

describe("table geometry", () => {
  it("4K granule, 48-bit: 4 levels, 4K|2M|1G", () => {
    const t = table(1);
    expect([t.startLevel, t.pgdEntries, t.pgsizeBitmap]).toEqual([0, 512, 0x40201000n]);
  });
  it("16K granule, 48-bit: starts at level 0 with 2 entries, 16K|32M", () => {
    const t = table(1, 14);
    expect([t.startLevel, t.pgdEntries, t.pgsizeBitmap]).toEqual([0, 2, 0x2004000n]);
  });
  it("64K granule, 48-bit: 3 levels from level 1 with 64 entries, 64K|512M", () => {
    const t = table(1, 16);
    expect([t.startLevel, t.pgdEntries, t.pgsizeBitmap]).toEqual([1, 64, 0x20010000n]);
  });
  it("stage 2, 4K, 40-bit: two concatenated level-1 tables (8 KiB pgd, one level saved)", () => {
    const t = table(2, 12, 40);
    expect([t.startLevel, t.pgdEntries, t.framesInUse]).toEqual([1, 1024, 2]);
  });
  it("maps a block and a page, refuses a size not in the bitmap (EINVAL) and an output beyond OAS (ERANGE)", () => {
    const t = table(1);
    expect(t.map(0x200000n, 0x80000000n, 0x200000n, 1, IOMMU_READ).error).toBeNull();
    expect(t.iovaToPhys(0x400000n)).toBe(0n);
    expect(t.iovaToPhys(0x212345n)).toBe(0x80012345n);
    expect(t.map(0x0n, 0n, 0x10000n, 1, IOMMU_READ).error).toMatchObject({ code: "EINVAL" });
    expect(t.map(0x1000n, 0x1000n, 0x1000n, 1, IOMMU_READ).error).toBeNull();
    expect(t.map(0x2000n, 1n << 44n, 0x1000n, 1, IOMMU_READ).error).toMatchObject({ code: "ERANGE" });
  });
  it("leaves no trace when EEXIST stops a map below tables it created", () => {
    const t = table(1);
    expect(t.map(0x40000000n, 0n, 0x40000000n, 1, IOMMU_READ).error).toBeNull(); // 1 GiB block
    const frames = t.framesInUse;
    // 4 KiB pages spanning a fresh 1 GiB region and then the block: tables for the first region are
    // created and filled; nothing is created under the block.
    const r = t.map(0x40000000n - 0x2000n, 0n, 0x1000n, 3, IOMMU_READ);
    expect(r).toMatchObject({ mapped: 0x2000n, error: { code: "EEXIST" } });
    expect(t.framesInUse).toBe(frames + 2); // the filled level-2/level-3 tables stay for the core's unwind
    const fresh = table(1);
    fresh.map(0x200000n, 0n, 0x200000n, 1, IOMMU_READ);
    const before = fresh.framesInUse;
    expect(fresh.map(0x200000n, 0n, 0x1000n, 1, IOMMU_READ).error).toMatchObject({ code: "EEXIST" });
    expect(fresh.framesInUse).toBe(before);
  });

  it("arm_lpae_map_pages: a mapping with neither read nor write is EINVAL and writes nothing (6.12)", () => {
    // linux-6.12-iommufd-compat arm64 random-5/-8: a no-access compat map fails once a domain holds it
    const t = table(1);
    const frames = t.framesInUse;
    for (const prot of [0, IOMMU_CACHE, IOMMU_CACHE | IOMMU_NOEXEC]) {
      const r = t.map(0x200000n, 0x40000000n, 0x1000n, 4, prot);
      expect(r).toMatchObject({ mapped: 0n, error: { code: "EINVAL", op: "arm_lpae_map_pages" } });
    }
    expect(t.iovaToPhys(0x200000n)).toBe(0n);
    expect(t.framesInUse).toBe(frames);
    expect(t.map(0x200000n, 0x40000000n, 0x1000n, 4, IOMMU_READ)).toEqual({ mapped: 0x4000n, error: null });
  });

  it("reports ENOMEM when no frame is left for a table, having mapped nothing", () => {
    const m = new PhysicalMemory();
    m.addRam(0x40000000n, 0x1000000n);
    const t = new LpaePageTable(m, new PageAllocator(m, 0x40000000n, 0x2000n), {
      stage: 1,
      granule: 12,
      ias: 48,
      oas: 44,
    });
    const r = t.map(0x1000n, 0x1000n, 0x1000n, 1, IOMMU_READ);
    expect(r).toMatchObject({ mapped: 0n, error: { code: "ENOMEM", op: "arm_lpae_map_pages" } });
    expect(t.iovaToPhys(0x1000n)).toBe(0n);
    // No trace: the level-1 table it managed to create was empty and is gone again.
    expect(t.framesInUse).toBe(1);
  });
});
