/**
 * Issue 13 rule 4: running out of the kernel's page pool is ENOMEM (an ErrnoError) wherever it shows —
 * probe (a level-2 stream table), domain allocation (pgd, CD), map (tables) — never another exception,
 * and a failed map leaves no mapping behind.
 */
import { ErrnoError, IOMMU_READ, IOMMU_WRITE, Iommu, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createSmmuV3Hardware } from "../hw/smmu-v3.js";
import { RAM_BASE, SMMU_BASE } from "../testing/rig.js";
import { createArmSmmuV3Driver } from "./ops.js";

/**
 * An SMMUv3 whose driver has a 64-frame pool besides the 256 its event queue takes at probe (2^15 records);
 * devices on buses 0..3 (each bus its own level-2 stream table).
 */
function machine() {
  const memory = new PhysicalMemory();
  memory.addRam(RAM_BASE, 0x1000000n);
  const hw = createSmmuV3Hardware({ memory, mmioBase: SMMU_BASE, ias: 44, oas: 44 });
  const pool = new PageAllocator(memory, RAM_BASE, (64n + 256n) << 12n);
  const { ops } = createArmSmmuV3Driver({ memory, mmioBase: SMMU_BASE, pageAllocator: pool });
  const devs = [0, 1, 2, 3].map((bus) => {
    const d = new PciDevice(memory, { bus, slot: 1, classCode: 0x00ff00 });
    d.upstream = hw;
    return d;
  });
  return { pool, ops, devs, iommu: new Iommu({ defaultDomainType: "DMA" }) };
}

/** Take every free frame of the pool, then give back `left` of them. */
function drain(pool: PageAllocator, left: number): void {
  const taken: bigint[] = [];
  for (;;) {
    try {
      taken.push(pool.alloc());
    } catch (e) {
      expect(e).toMatchObject({ name: "ErrnoError", code: "ENOMEM", op: "alloc_pages" });
      break;
    }
  }
  for (let i = 0; i < left; i++) pool.freeFrame(taken.pop() as bigint);
}

/** Run `fn`; the only exception allowed out is ENOMEM. Returns whether it succeeded. */
function onlyEnomem(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    expect(e).toBeInstanceOf(ErrnoError);
    expect((e as ErrnoError).code).toBe("ENOMEM");
    return false;
  }
}

describe("page_pool_exhaustion_is_enomem (arm-smmu-v3)", () => {
  it("an empty pool: probe on a new bus, domain alloc and a map needing a table each fail with ENOMEM", () => {
    const m = machine();
    m.ops.probeDevice(m.devs[0] as PciDevice);
    const dom = m.iommu.domainAlloc(m.ops, "unmanaged");
    drain(m.pool, 0);
    expect(() => m.ops.probeDevice(m.devs[1] as PciDevice)).toThrow(
      expect.objectContaining({ code: "ENOMEM", op: "arm_smmu_init_l2_strtab" }),
    );
    expect(() => m.iommu.domainAlloc(m.ops, "unmanaged")).toThrow(
      expect.objectContaining({ code: "ENOMEM", op: "iommu_domain_alloc" }),
    );
    expect(() => m.iommu.map(dom, 0x4000_0000n, RAM_BASE, 0x1000n, IOMMU_READ | IOMMU_WRITE)).toThrow(
      expect.objectContaining({ code: "ENOMEM", op: "arm_lpae_map_pages" }),
    );
    expect(m.iommu.iovaToPhys(dom, 0x4000_0000n)).toBe(0n);
  });

  it("whatever the pool has left, every failure of probe/alloc/attach/map is ENOMEM and a failed map maps nothing", () => {
    const op = fc.oneof(
      fc.constant({ kind: "alloc" as const }),
      fc.record({ kind: fc.constant("probe" as const), dev: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant("attach" as const), dev: fc.integer({ min: 0, max: 3 }) }),
      fc.record({
        kind: fc.constant("map" as const),
        slot: fc.integer({ min: 0, max: 7 }),
        pages: fc.constantFrom(1, 3, 512, 515),
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.array(op, { minLength: 1, maxLength: 12 }), (left, ops) => {
        const m = machine();
        m.ops.probeDevice(m.devs[0] as PciDevice);
        const domains = [m.iommu.domainAlloc(m.ops, "unmanaged")];
        const probed = new Set([0]);
        drain(m.pool, left);
        for (const o of ops) {
          const dom = domains[domains.length - 1] as (typeof domains)[number];
          if (o.kind === "alloc") {
            onlyEnomem(() => void domains.push(m.iommu.domainAlloc(m.ops, "unmanaged")));
          } else if (o.kind === "probe") {
            if (!probed.has(o.dev) && onlyEnomem(() => m.ops.probeDevice(m.devs[o.dev] as PciDevice)))
              probed.add(o.dev);
          } else if (o.kind === "attach") {
            if (probed.has(o.dev)) onlyEnomem(() => dom.driver.attachDev(m.devs[o.dev] as PciDevice));
          } else {
            const iova = BigInt(o.slot) << 30n;
            const size = BigInt(o.pages) << 12n;
            if (m.iommu.iovaToPhys(dom, iova) !== 0n) continue;
            const ok = onlyEnomem(() => m.iommu.map(dom, iova, RAM_BASE, size, IOMMU_READ | IOMMU_WRITE));
            expect(m.iommu.iovaToPhys(dom, iova + size - 0x1000n) !== 0n).toBe(ok);
            if (!ok) expect(m.iommu.iovaToPhys(dom, iova)).toBe(0n);
          }
        }
      }),
      { seed: 0x13e4, numRuns: 40 },
    );
  });
});
