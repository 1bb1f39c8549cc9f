/**
 * Issue 13 rule 4: running out of the kernel's page pool is ENOMEM (an ErrnoError) wherever it shows —
 * domain allocation, attach (a bus's first context table), map (page-table pages) — never another
 * exception, and a failed call leaves no mapping behind.
 */
import { ErrnoError, IOMMU_READ, IOMMU_WRITE, PciDevice, type PhysicalMemory } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { q35 } from "../testing/q35.js";

/** Devices on buses 1..3: their first attach needs a fresh context table. */
const otherBuses = (memory: PhysicalMemory) =>
  [1, 2, 3].map((bus) => new PciDevice(memory, { bus, slot: 0, classCode: 0x00ff00 }));

/** A q35 whose bus 1..3 devices are known to the driver but attached nowhere (no context table yet). */
function machine() {
  // 64 frames: the unit's root, queue and a one-frame IR table fit, with room for a few tables.
  const m = q35({ extra: otherBuses, probe: false, poolSize: 64n << 12n, driver: { irtOrder: 8 } });
  for (const d of m.extra) m.driver.ops.probeDevice(d);
  return m;
}

/** Take every free frame of the pool, then give back `left` of them. */
function drain(pool: ReturnType<typeof q35>["pool"], left: number): void {
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

describe("page_pool_exhaustion_is_enomem (vt-d)", () => {
  it("an empty pool: domain alloc, first attach on a bus and a map needing a table each fail with ENOMEM", () => {
    const m = machine();
    const dom = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    drain(m.pool, 0);
    expect(() => m.iommu.domainAlloc(m.driver.ops, "unmanaged")).toThrow(
      expect.objectContaining({ code: "ENOMEM", op: "iommu_domain_alloc" }),
    );
    const dev = m.extra[0] as PciDevice;
    expect(() => dom.driver.attachDev(dev)).toThrow(
      expect.objectContaining({ code: "ENOMEM", op: "domain_context_mapping_one" }),
    );
    // A map at an IOVA whose level-2 and level-1 tables do not exist yet.
    expect(() => m.iommu.map(dom, 0x4000_0000n, 0x20_0000n, 0x1000n, IOMMU_READ | IOMMU_WRITE)).toThrow(
      expect.objectContaining({ code: "ENOMEM", op: "__domain_mapping" }),
    );
    expect(m.iommu.iovaToPhys(dom, 0x4000_0000n)).toBe(0n);
  });

  it("whatever the pool has left, every failure of alloc/attach/map is ENOMEM and a failed map maps nothing", () => {
    const op = fc.oneof(
      fc.constant({ kind: "alloc" as const }),
      fc.record({ kind: fc.constant("attach" as const), dev: fc.integer({ min: 0, max: 2 }) }),
      fc.record({
        kind: fc.constant("map" as const),
        // 1 GiB-apart slots so most maps need new tables; sizes up to a 2 MiB superpage and beyond.
        slot: fc.integer({ min: 0, max: 7 }),
        pages: fc.constantFrom(1, 3, 512, 515),
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.array(op, { minLength: 1, maxLength: 12 }), (left, ops) => {
        const m = machine();
        const domains = [m.iommu.domainAlloc(m.driver.ops, "unmanaged")];
        drain(m.pool, left);
        for (const o of ops) {
          const dom = domains[domains.length - 1] as (typeof domains)[number];
          if (o.kind === "alloc") {
            onlyEnomem(() => void domains.push(m.iommu.domainAlloc(m.driver.ops, "unmanaged")));
          } else if (o.kind === "attach") {
            onlyEnomem(() => dom.driver.attachDev(m.extra[o.dev] as PciDevice));
          } else {
            const iova = BigInt(o.slot) << 30n;
            const size = BigInt(o.pages) << 12n;
            if (m.iommu.iovaToPhys(dom, iova) !== 0n) continue;
            const ok = onlyEnomem(() => m.iommu.map(dom, iova, 0x4000_0000n, size, IOMMU_READ | IOMMU_WRITE));
            expect(m.iommu.iovaToPhys(dom, iova + size - 0x1000n) !== 0n).toBe(ok);
            if (!ok) expect(m.iommu.iovaToPhys(dom, iova)).toBe(0n);
          }
        }
      }),
      { seed: 0x13e4, numRuns: 40 },
    );
  });
});
