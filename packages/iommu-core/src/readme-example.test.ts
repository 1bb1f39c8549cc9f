// The README's example, run as written (imports go through the package's own entry points).
import { describe, expect, it } from "vitest";
import { IOMMU_READ, IOMMU_WRITE, Iommu, PciDevice, PhysicalMemory } from "./index.js";
import { createMockIommu, MOCK_APERTURE_START } from "./testing.js";

describe("README example", () => {
  it("runs and gives the answers the README states", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0n, 64n << 20n);
    const mock = createMockIommu();
    const iommu = new Iommu({ defaultDomainType: "DMA-FQ" });
    const dev = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0x00ff00 });

    const group = iommu.probeDevice(dev, mock.ops);
    expect(group.id).toBe(0);
    expect(group.resvRegionsText()).toBe("0x0000000080000000 0x00000000800fffff msi\n");
    expect(group.typeText()).toBe("DMA-FQ\n");

    const owner = {};
    iommu.claimDmaOwner(group, owner);
    const domain = iommu.domainAlloc(mock.ops, "unmanaged");
    iommu.attachGroup(domain, group);
    const faults: bigint[] = [];
    domain.setFaultHandler((_d, _dev, iova) => {
      faults.push(iova);
      return 0;
    });

    iommu.map(domain, MOCK_APERTURE_START, 0x10_0000n, 0x1000n, IOMMU_READ | IOMMU_WRITE);
    expect(dev.dmaWrite(MOCK_APERTURE_START + 0x10n, new Uint8Array([1, 2])).ok).toBe(true);
    expect([...memory.read(0x10_0010n, 2)]).toEqual([1, 2]);
    expect(dev.dmaWrite(MOCK_APERTURE_START + 0x1000n, new Uint8Array([1])).ok).toBe(false);
    expect(faults).toEqual([MOCK_APERTURE_START + 0x1000n]);
    expect(iommu.iovaToPhys(domain, MOCK_APERTURE_START + 0x10n)).toBe(0x10_0010n);
    expect(iommu.unmap(domain, MOCK_APERTURE_START, 0x1000n)).toBe(0x1000n);

    iommu.detachGroup(domain, group);
    iommu.domainFree(domain);
    iommu.releaseDmaOwner(group);
    expect(group.domain).toBe(group.defaultDomain);
  });
});
