/**
 * The invariant of the page-table layer: after every step of a random map/unmap sequence (through the
 * core's iommu_map/iommu_unmap), the tables the driver wrote — read back by the hardware walker through
 * a device's DMA, without any manual cache invalidation — equal a plain map of what should be mapped.
 */
import { IOMMU_READ, IOMMU_WRITE, type IommuDomain } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { q35 } from "../testing/q35.js";
import type { VtdDomain } from "./domain.js";
import type { SuperpageUnmap } from "./pgtable.js";

const PHYS_BASE_PFN = 0x100000; // 4 GiB: the RAM above 4G

type Step =
  | { kind: "map"; pfn: number; pages: number; delta: number; prot: number }
  | { kind: "unmap"; pick: number; from: number; len: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("map" as const),
    // Bias towards 2 MiB alignment so superpages appear.
    pfn: fc.oneof(
      fc.integer({ min: 0, max: 16383 }),
      fc.integer({ min: 0, max: 31 }).map((x) => x * 512),
    ),
    pages: fc.oneof(
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 3 }).map((x) => x * 512),
      fc.integer({ min: 500, max: 1100 }),
    ),
    delta: fc.oneof(
      fc.constant(0),
      fc.integer({ min: 0, max: 7 }).map((x) => x * 512),
      fc.integer({ min: 1, max: 600 }),
    ),
    prot: fc.constantFrom(IOMMU_READ, IOMMU_WRITE, IOMMU_READ | IOMMU_WRITE),
  }),
  fc.record({
    kind: fc.constant("unmap" as const),
    pick: fc.nat(),
    from: fc.nat(),
    len: fc.nat(),
  }),
);

function machine(mode: SuperpageUnmap) {
  const m = q35({ driver: { superpageUnmap: mode } });
  const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
  const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
  m.iommu.claimDmaOwner(g, {});
  m.iommu.attachGroup(d, g);
  return { ...m, d };
}

/** Compare tables, walker and iova_to_phys with the model. */
function check(
  m: ReturnType<typeof machine>,
  d: IommuDomain,
  model: Map<number, { phys: number; prot: number }>,
  probes: number[],
) {
  const vt = d.driver as unknown as VtdDomain;
  const flat = new Map<number, { phys: number; prot: number }>();
  for (const [pfn, phys, pages, rights] of vt.table?.leaves() ?? []) {
    for (let i = 0; i < pages; i++) flat.set(pfn + i, { phys: phys + i, prot: rights });
  }
  expect(flat.size).toBe(model.size);
  for (const [pfn, e] of model) expect(flat.get(pfn)).toEqual(e);
  for (const pfn of probes) {
    const iova = BigInt(pfn) << 12n;
    const e = model.get(pfn);
    const t = m.hw.translate({
      device: m.edu,
      requesterId: m.edu.requesterId,
      iova: iova + 8n,
      access: e && !(e.prot & 1) ? "write" : "read",
      data: new Uint8Array(4),
    });
    if (e) {
      expect(t).toMatchObject({ kind: "ok", phys: (BigInt(e.phys) << 12n) + 8n });
      expect(m.iommu.iovaToPhys(d, iova + 8n)).toBe((BigInt(e.phys) << 12n) + 8n);
    } else {
      expect(t.kind).toBe("fault");
      expect(m.iommu.iovaToPhys(d, iova)).toBe(0n);
    }
  }
}

function run(mode: SuperpageUnmap, steps: Step[]) {
  const m = machine(mode);
  const model = new Map<number, { phys: number; prot: number }>();
  const extents: { pfn: number; pages: number }[] = [];
  for (const s of steps) {
    const probes: number[] = [];
    if (s.kind === "map") {
      let clash = false;
      for (let i = 0; i < s.pages && !clash; i++) if (model.has(s.pfn + i)) clash = true;
      if (clash) continue;
      const physPfn = PHYS_BASE_PFN + s.pfn + s.delta;
      m.iommu.map(m.d, BigInt(s.pfn) << 12n, BigInt(physPfn) << 12n, BigInt(s.pages) << 12n, s.prot);
      // 6.1's dma_pte format: every leaf carries DMA_FL_PTE_PRESENT, which is the R bit.
      for (let i = 0; i < s.pages; i++) model.set(s.pfn + i, { phys: physPfn + i, prot: (s.prot & 3) | 1 });
      extents.push({ pfn: s.pfn, pages: s.pages });
      probes.push(s.pfn, s.pfn + s.pages - 1, s.pfn + s.pages, s.pfn + (s.pages >> 1));
    } else {
      if (extents.length === 0) continue;
      const i = s.pick % extents.length;
      const ext = extents[i] as { pfn: number; pages: number };
      // "whole" (Linux): unmap what was mapped, as VFIO does. "split": any page range inside an extent.
      let from = ext.pfn;
      let len = ext.pages;
      if (mode === "split") {
        from = ext.pfn + (s.from % ext.pages);
        len = 1 + (s.len % (ext.pages - (from - ext.pfn)));
      }
      const got = m.iommu.unmap(m.d, BigInt(from) << 12n, BigInt(len) << 12n);
      expect(got).toBeGreaterThanOrEqual(BigInt(len) << 12n);
      for (let p = from; p < from + len; p++) model.delete(p);
      extents.splice(i, 1);
      if (from > ext.pfn) extents.push({ pfn: ext.pfn, pages: from - ext.pfn });
      if (from + len < ext.pfn + ext.pages) extents.push({ pfn: from + len, pages: ext.pfn + ext.pages - from - len });
      probes.push(from, from + len - 1, from - 1, from + len);
    }
    check(
      m,
      m.d,
      model,
      probes.filter((p) => p >= 0),
    );
  }
  return m;
}

describe("second-level tables vs a plain map", () => {
  it("random map/unmap sequences, whole-range unmaps (Linux 6.1 'whole' superpage rule)", { tags: ["slow"] }, () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 25 }), (steps) => {
        run("whole", steps);
      }),
      { seed: 0x7d0, numRuns: 12 },
    );
  });

  it("random map/unmap sequences with partial unmaps, superpages split ('split' option)", { tags: ["slow"] }, () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 25 }), (steps) => {
        run("split", steps);
      }),
      { seed: 0x7d1, numRuns: 15 },
    );
  });

  it("an aligned 4 MiB map uses two 2 MiB superpages; a 1 GiB aligned map one 1 GiB page", () => {
    const m = machine("whole");
    m.iommu.map(m.d, 0x400000n, 0x100400000n, 0x400000n, IOMMU_READ);
    m.iommu.map(m.d, 0x40000000n, 0x100000000n, 0x40000000n, IOMMU_READ);
    const leaves = (m.d.driver as unknown as VtdDomain).table?.leaves();
    expect(leaves?.map(([, , pages]) => pages)).toEqual([512, 512, 512 * 512]);
  });

  it("Linux 6.1: unmapping 4 KiB at the start of a 2 MiB superpage removes (and reports) the whole superpage", () => {
    const m = machine("whole");
    m.iommu.map(m.d, 0x200000n, 0x100200000n, 0x200000n, IOMMU_READ);
    expect(m.iommu.unmap(m.d, 0x200000n, 0x1000n)).toBe(0x200000n);
    expect(m.iommu.iovaToPhys(m.d, 0x201000n)).toBe(0n);
  });

  it("split option: unmapping 4 KiB out of a 2 MiB superpage leaves the other 511 pages", () => {
    const m = machine("split");
    m.iommu.map(m.d, 0x200000n, 0x100200000n, 0x200000n, IOMMU_READ);
    expect(m.iommu.unmap(m.d, 0x201000n, 0x1000n)).toBe(0x1000n);
    expect(m.iommu.iovaToPhys(m.d, 0x201000n)).toBe(0n);
    expect(m.iommu.iovaToPhys(m.d, 0x202010n)).toBe(0x100202010n);
    expect(m.edu.dmaRead(0x200000n, 4).ok).toBe(true);
    expect(m.edu.dmaRead(0x201000n, 4).ok).toBe(false);
  });

  it("a superpage mapped over small pages drops their table (switch_to_super_page) and flushes it", () => {
    const m = q35();
    const vtPool = m.pool.framesInUse;
    const d = m.iommu.domainAlloc(m.driver.ops, "DMA");
    const vt = d.driver as unknown as VtdDomain;
    const t = vt.table as NonNullable<VtdDomain["table"]>;
    t.map(0x200, 0x100200, 1, 3n, () => {});
    expect(t.tablePages).toBe(3);
    const flushed: number[] = [];
    t.map(0x200, 0x100200, 512, 3n, (pfn) => flushed.push(pfn));
    expect(flushed).toEqual([0x200]);
    expect(t.tablePages).toBe(2);
    t.drainFreelist();
    expect(m.pool.framesInUse).toBe(vtPool + 2);
  });

  it("the domain invalidates the IOTLB when a superpage replaces small pages: no stale 4 KiB translation survives", () => {
    const m = q35();
    const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    m.iommu.claimDmaOwner(g, {});
    m.iommu.attachGroup(d, g);
    const a = 0x100000000n;
    const b = 0x100400000n;
    m.memory.write(a, new Uint8Array([0xaa]));
    m.memory.write(b, new Uint8Array([0xbb]));
    m.iommu.map(d, 0x200000n, a, 0x1000n, IOMMU_READ);
    expect(m.edu.dmaRead(0x200000n, 1)).toMatchObject({ ok: true, data: new Uint8Array([0xaa]) }); // cached
    const r = d.driver.mapPages?.(0x200000n, b, 0x200000n, 1, IOMMU_READ);
    expect(r?.error).toBeNull();
    expect(m.edu.dmaRead(0x200000n, 1)).toMatchObject({ ok: true, data: new Uint8Array([0xbb]) });
  });

  it("mapping over a present entry warns and keeps the old entry, as 6.1's __domain_mapping", () => {
    const m = machine("whole");
    m.iommu.map(m.d, 0x1000n, 0x100001000n, 0x1000n, IOMMU_READ);
    m.d.driver.mapPages?.(0x1000n, 0x100009000n, 0x1000n, 1, IOMMU_READ);
    expect(m.iommu.iovaToPhys(m.d, 0x1000n)).toBe(0x100001000n);
    expect((m.d.driver as unknown as VtdDomain).table?.warnings[0]).toMatch(/DMA PTE for vPFN 0x1 already set/);
  });

  it("a map beyond the 39-bit width fails with EFAULT and leaves no mapping; freeing the domain frees every table", () => {
    const m = machine("whole");
    const before = m.pool.framesInUse;
    expect(() => m.iommu.map(m.d, 0x7ffffff000n, 0x100000000n, 0x2000n, IOMMU_READ)).toThrow();
    expect(m.iommu.iovaToPhys(m.d, 0x7ffffff000n)).toBe(0n);
    m.iommu.map(m.d, 0x12345000n, 0x100000000n, 0x3000n, IOMMU_READ | IOMMU_WRITE);
    expect(m.pool.framesInUse).toBeGreaterThan(before);
    const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    m.iommu.releaseDmaOwner(g);
    const rootOnly = before - 1;
    m.iommu.domainFree(m.d);
    expect(m.pool.framesInUse).toBe(rootOnly);
  });

  it("page-table memory: a dense 1 GiB of 4 KiB pages costs the hardware format's own 513 tables (1 L2 + 512 L1)", () => {
    const m = machine("whole");
    const before = (m.d.driver as unknown as VtdDomain).table?.tablePages ?? 0;
    // Offset phys by one page so no superpage can be used.
    m.iommu.map(m.d, 0x40000000n, 0x100001000n, 0x3ffff000n, IOMMU_READ);
    const after = (m.d.driver as unknown as VtdDomain).table?.tablePages ?? 0;
    expect(after - before).toBe(1 + 512);
  });
});
