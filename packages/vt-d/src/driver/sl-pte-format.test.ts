/**
 * Issue 16, x86 row: with the same QEMU, Linux 6.1 and 6.12 let edu read through a write-only mapping and
 * 7.3 faults. The difference is the leaf the driver writes (`SecondLevelPteFormat`), not the hardware: the
 * hardware checks R/W on a walk either way (QEMU quirks on, as on the recorded machines).
 */
import { IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PTE } from "../arch/regs.js";
import { q35 } from "../testing/q35.js";
import type { SecondLevelPteFormat } from "./domain.js";

function machine(slPteFormat: SecondLevelPteFormat, faultLogSegment = false) {
  const m = q35({ hw: { qemuQuirks: true }, driver: { slPteFormat, faultLogSegment } });
  const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
  const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
  m.iommu.claimDmaOwner(g, {});
  m.iommu.attachGroup(d, g);
  m.driver.drainLog();
  return { ...m, d };
}

describe("second-level PTE format (dma_pte 5.13-6.15, vtdss 6.16+/7.x)", () => {
  it("dma_pte (6.1, 6.12): a write-only map is readable: the leaf carries DMA_FL_PTE_PRESENT = R", () => {
    const m = machine("dma_pte");
    m.iommu.map(m.d, 0x300000n, 0x100020000n, 0x1000n, IOMMU_WRITE);
    const leaf = m.d.driver as unknown as { table: { lookup(pfn: number): { value: bigint } } };
    expect(leaf.table.lookup(0x300).value & (PTE.R | PTE.W)).toBe(PTE.R | PTE.W);
    m.memory.write(0x100020000n, new Uint8Array([1, 2, 3, 4]));
    const r = m.edu.dmaRead(0x300000n, 4);
    expect(r.ok && [...r.data]).toEqual([1, 2, 3, 4]);
    expect(m.driver.drainLog()).toEqual([]);
    expect(m.driver.units[0]?.faults).toEqual([]);
  });

  it("vtdss (7.3): the read faults with reason 0x06, its record and log lines are 7.3's (linux-7.3/x86/edu-dma line 12)", () => {
    const m = machine("vtdss", true);
    m.iommu.map(m.d, 0x300000n, 0x100020000n, 0x1000n, IOMMU_WRITE);
    const leaf = m.d.driver as unknown as { table: { lookup(pfn: number): { value: bigint } } };
    expect(leaf.table.lookup(0x300).value & (PTE.R | PTE.W)).toBe(PTE.W);
    expect(m.edu.dmaRead(0x300000n, 0x100).ok).toBe(false);
    expect(m.driver.units[0]?.faults).toEqual([
      { reason: 0x06, sourceId: m.edu.requesterId, addr: 0x300000n, isRead: true, interrupt: false },
    ]);
    // The recorded klog of `dma 0x300000 0x100 to-dev` on Debian 7.3.4 (QEMU 7.2 q35, intel-iommu).
    expect(m.driver.drainLog()).toEqual([
      "DMAR: DRHD: handling fault status reg 2",
      "DMAR: [DMA Read NO_PASID] Request device [0000:00:01.0] fault addr 0x300000 [fault reason 0x06] PTE Read access is not set",
    ]);
    // The write through the same mapping is fine on both.
    expect(m.edu.dmaWrite(0x300000n, new Uint8Array(0x100)).ok).toBe(true);
  });

  it("for any rights, page count and format: writes need IOMMU_WRITE; reads need IOMMU_READ, or the dma_pte format", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<SecondLevelPteFormat>("dma_pte", "vtdss"),
        fc.constantFrom(IOMMU_READ, IOMMU_WRITE, IOMMU_READ | IOMMU_WRITE),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 0, max: 599 }),
        (format, prot, pages, at) => {
          const m = machine(format);
          m.iommu.map(m.d, 0x4000_0000n, 0x1_0000_0000n, BigInt(pages) << 12n, prot);
          const iova = 0x4000_0000n + (BigInt(at % pages) << 12n);
          expect(m.edu.dmaWrite(iova, new Uint8Array(8)).ok).toBe((prot & IOMMU_WRITE) !== 0);
          // A fresh machine for the read, so no IOTLB entry of the write answers it.
          const n = machine(format);
          n.iommu.map(n.d, 0x4000_0000n, 0x1_0000_0000n, BigInt(pages) << 12n, prot);
          expect(n.edu.dmaRead(iova, 8).ok).toBe((prot & IOMMU_READ) !== 0 || format === "dma_pte");
        },
      ),
      { seed: 0x16a6, numRuns: 30 },
    );
  });
});
