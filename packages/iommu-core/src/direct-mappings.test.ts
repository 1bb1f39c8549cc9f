import { describe, expect, it } from "vitest";
import { PciDevice } from "./device.js";
import type { IommuDomain } from "./domain.js";
import { Iommu } from "./iommu.js";
import { PhysicalMemory } from "./phys-mem.js";
import { IOMMU_READ, IOMMU_WRITE } from "./prot.js";
import { createMockIommu, MOCK_IO_PAGE_SIZE, type MockDomain } from "./testing.js";

const PG = MOCK_IO_PAGE_SIZE;

function setup(defaultDomainType: "DMA" | "DMA-FQ" | "identity" = "DMA", deviceGroup?: () => string) {
  const memory = new PhysicalMemory();
  const mock = createMockIommu(deviceGroup ? { deviceGroup } : {});
  const iommu = new Iommu({ defaultDomainType });
  const dev = (slot: number) => new PciDevice(memory, { bus: 0, slot, classCode: 0x0c0300 });
  return { mock, iommu, dev };
}

/** The mock driver domain behind a core domain (which must exist). */
const mockOf = (d: IommuDomain | null): MockDomain => {
  if (!d) throw new Error("no domain");
  return d.driver as MockDomain;
};
const table = (d: IommuDomain | null) => mockOf(d).pgtable.entries();

describe("iommu_create_device_direct_mappings", () => {
  it("identity-maps a direct region into the default DMA domain with the region's prot", () => {
    const { mock, iommu, dev } = setup();
    const a = dev(1);
    mock.addReserved(0x3000_0000n, 3n * PG, "direct", a, IOMMU_READ | IOMMU_WRITE);
    const g = iommu.probeDevice(a, mock.ops);
    expect(table(g.defaultDomain)).toEqual(
      [0n, 1n, 2n].map((i) => ({ iova: 0x3000_0000n + i * PG, phys: 0x3000_0000n + i * PG, size: PG, prot: 3 })),
    );
    expect(iommu.iovaToPhys(g.defaultDomain as IommuDomain, 0x3000_0abcn)).toBe(0x3000_0abcn);
    expect(mockOf(g.defaultDomain).syncs.flushAll).toBe(1);
    expect(a.iommu?.requireDirect).toBe(true);
  });

  it("rounds start and end up to the minimum page, dropping an unaligned head page (as Linux)", () => {
    const { mock, iommu, dev } = setup();
    const a = dev(1);
    // [0x3000_0100, 0x3000_0900): start rounds up to 0x3000_0800, end up to 0x3000_1000.
    mock.addReserved(0x3000_0100n, 0x800n, "direct-relaxable", a, IOMMU_READ);
    const g = iommu.probeDevice(a, mock.ops);
    expect(table(g.defaultDomain).map((e) => e.iova)).toEqual([0x3000_0800n]);
    expect(a.iommu?.requireDirect).toBe(false);
  });

  it("skips pages already mapped (a second device of the group with an overlapping region)", () => {
    const { mock, iommu, dev } = setup("DMA-FQ", () => "g");
    const a = dev(1);
    const b = dev(2);
    mock.addReserved(0x3000_0000n, 2n * PG, "direct", a, IOMMU_READ);
    mock.addReserved(0x3000_0000n + PG, 2n * PG, "direct", b, IOMMU_WRITE);
    const g = iommu.probeDevice(a, mock.ops);
    iommu.probeDevice(b, mock.ops);
    expect(table(g.defaultDomain).map((e) => [e.iova - 0x3000_0000n, e.prot])).toEqual([
      [0n, IOMMU_READ],
      [PG, IOMMU_READ],
      [2n * PG, IOMMU_WRITE],
    ]);
  });

  it("maps nothing into an identity default domain and ignores other region types", () => {
    const { mock, iommu, dev } = setup("identity");
    const a = dev(1);
    mock.addReserved(0x3000_0000n, PG, "direct", a, IOMMU_READ);
    const g = iommu.probeDevice(a, mock.ops);
    expect(g.defaultDomain?.type).toBe("identity");
    expect(mockOf(g.defaultDomain).pgtable.size).toBe(0);

    const s = setup();
    s.mock.addReserved(0x3000_0000n, PG, "reserved");
    const g2 = s.iommu.probeDevice(s.dev(2), s.mock.ops);
    expect(table(g2.defaultDomain)).toEqual([]);
  });

  it("regression: Linux 6.1 still lets VFIO claim a require_direct device (the refusal came ≈6.5)", () => {
    const { mock, iommu, dev } = setup();
    const a = dev(1);
    mock.addReserved(0x3000_0000n, PG, "direct", a, IOMMU_READ);
    const g = iommu.probeDevice(a, mock.ops);
    expect(a.iommu?.requireDirect).toBe(true);
    iommu.claimDmaOwner(g, {});
    expect(g.domain?.type).toBe("blocked");
    const d = iommu.domainAlloc(mock.ops, "unmanaged");
    iommu.attachGroup(d, g);
    expect(g.domain).toBe(d);
  });
});
