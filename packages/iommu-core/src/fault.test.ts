import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Device, PciDevice } from "./device.js";
import type { IommuDomain } from "./domain.js";
import { ERRNO } from "./errno.js";
import { reportIommuFault } from "./fault.js";
import { Iommu } from "./iommu.js";
import { PhysicalMemory } from "./phys-mem.js";
import { IOMMU_FAULT_READ, IOMMU_FAULT_WRITE, IOMMU_READ, IOMMU_WRITE } from "./prot.js";
import { createMockIommu, MOCK_APERTURE_START, MOCK_IO_PAGE_SIZE } from "./testing.js";

const PG = MOCK_IO_PAGE_SIZE;

/** Byte equality without vitest's slow per-key diff of typed arrays. */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
const RAM = 0x10_0000n;

function setup(defaultDomainType: "DMA" | "identity" = "DMA") {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 2n << 20n);
  const mock = createMockIommu();
  const iommu = new Iommu({ defaultDomainType });
  const dev = new PciDevice(memory, { bus: 0, slot: 3, classCode: 0x00ff00 });
  const group = iommu.probeDevice(dev, mock.ops);
  return { memory, mock, iommu, dev, group };
}

/** VFIO-style: own the group and attach a fresh unmanaged domain. */
function vfio(s: ReturnType<typeof setup>): IommuDomain {
  s.iommu.claimDmaOwner(s.group, {});
  const d = s.iommu.domainAlloc(s.mock.ops, "unmanaged");
  s.iommu.attachGroup(d, s.group);
  return d;
}

describe("report_iommu_fault", () => {
  it("returns -ENOSYS without a handler and the handler's value with one", () => {
    const { iommu, mock, dev } = setup();
    const d = iommu.domainAlloc(mock.ops, "unmanaged");
    expect(reportIommuFault(d, dev, 0x1000n, IOMMU_FAULT_READ)).toBe(-ERRNO.ENOSYS);
    const seen: unknown[] = [];
    d.setFaultHandler((dom, dv, iova, flags) => {
      seen.push([dom, dv, iova, flags]);
      return 0;
    });
    expect(reportIommuFault(d, dev, 0x1000n, IOMMU_FAULT_WRITE)).toBe(0);
    expect(seen).toEqual([[d, dev, 0x1000n, IOMMU_FAULT_WRITE]]);
    d.setFaultHandler(null);
    expect(reportIommuFault(d, dev, 0x1000n, IOMMU_FAULT_READ)).toBe(-ERRNO.ENOSYS);
  });
});

describe("device DMA through the group's domain", () => {
  it("a write straddling a mapped and an unmapped page faults, writes nothing, and reaches the handler", () => {
    const s = setup();
    const d = vfio(s);
    s.iommu.map(d, MOCK_APERTURE_START, RAM, PG, IOMMU_READ | IOMMU_WRITE);
    const calls: [IommuDomain, Device, bigint, number][] = [];
    d.setFaultHandler((dom, dev, iova, flags) => {
      calls.push([dom, dev, iova, flags]);
      return 0;
    });
    const r = s.dev.dmaWrite(MOCK_APERTURE_START + PG - 2n, new Uint8Array([9, 9, 9, 9]));
    expect(r).toMatchObject({ ok: false, iova: MOCK_APERTURE_START + PG, access: "write", reason: "translation" });
    expect([...s.memory.read(RAM + PG - 2n, 4)]).toEqual([0, 0, 0, 0]);
    expect(calls).toEqual([[d, s.dev, MOCK_APERTURE_START + PG, IOMMU_FAULT_WRITE]]);
    expect(s.mock.faults).toMatchObject([{ iova: MOCK_APERTURE_START + PG, access: "write", handled: 0 }]);
  });

  it("permission faults: a read through a write-only mapping, a write through a read-only one", () => {
    const s = setup();
    const d = vfio(s);
    s.iommu.map(d, MOCK_APERTURE_START, RAM, PG, IOMMU_WRITE);
    s.iommu.map(d, MOCK_APERTURE_START + PG, RAM + PG, PG, IOMMU_READ);
    expect(s.dev.dmaRead(MOCK_APERTURE_START, 4)).toMatchObject({ ok: false, reason: "permission" });
    expect(s.dev.dmaWrite(MOCK_APERTURE_START + PG, new Uint8Array([1]))).toMatchObject({
      ok: false,
      reason: "permission",
    });
    expect(s.memory.read(RAM + PG, 1)[0]).toBe(0);
    // No handler installed: the fault is still recorded, report_iommu_fault said -ENOSYS.
    expect(s.mock.faults.map((f) => [f.access, f.handled])).toEqual([
      ["read", -ERRNO.ENOSYS],
      ["write", -ERRNO.ENOSYS],
    ]);
  });

  it("a claimed group (blocking domain) faults every DMA", () => {
    const s = setup();
    s.iommu.claimDmaOwner(s.group, {});
    expect(s.dev.dmaRead(0x1000n, 4)).toMatchObject({ ok: false, reason: "blocked" });
  });

  it("an identity default domain passes DMA through 1:1", () => {
    const s = setup("identity");
    expect(s.group.typeText()).toBe("identity\n");
    expect(s.dev.dmaWrite(0x2000n, new Uint8Array([7, 8])).ok).toBe(true);
    expect([...s.memory.read(0x2000n, 2)]).toEqual([7, 8]);
  });

  it("either lands exactly the bytes or faults and writes nothing (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { maxLength: 10 }),
        fc.integer({ min: 0, max: 16 * 2048 - 1 }),
        fc.uint8Array({ minLength: 1, maxLength: 5000 }),
        (mappedPages, off, data) => {
          const s = setup();
          const d = vfio(s);
          for (const p of mappedPages) {
            s.iommu.map(d, MOCK_APERTURE_START + BigInt(p) * PG, RAM + BigInt(p) * PG, PG, IOMMU_READ | IOMMU_WRITE);
          }
          const before = s.memory.read(RAM, 20 * 2048);
          const iova = MOCK_APERTURE_START + BigInt(off);
          const r = s.dev.dmaWrite(iova, data);
          const first = Math.floor(off / 2048);
          const last = Math.floor((off + data.length - 1) / 2048);
          const allMapped = Array.from({ length: last - first + 1 }, (_, i) => first + i).every((p) =>
            mappedPages.includes(p),
          );
          expect(r.ok).toBe(allMapped);
          if (allMapped) {
            expect(same(s.memory.read(RAM + BigInt(off), data.length), data)).toBe(true);
            const back = s.dev.dmaRead(iova, data.length);
            expect(back.ok && same(back.data, data)).toBe(true);
          } else {
            expect(same(s.memory.read(RAM, 20 * 2048), before)).toBe(true);
            expect(s.mock.faults).toHaveLength(1);
          }
        },
      ),
      { seed: 31, numRuns: 150 },
    );
  });
});
