import { describe, expect, it } from "vitest";
import { q35 } from "../testing/q35.js";

describe("blocking_domain (Linux 6.5 on): attach is device_block_translation, the context entry cleared", () => {
  it("regression (linux-6.12-iommufd x86 iommufd-dma-msi line 34): a claimed device's DMA faults on the context entry (reason 0x02)", () => {
    const m = q35({ driver: { blockingDomain: true } });
    const g = m.iommu.groupOf(m.edu)!;
    m.driver.drainLog();
    m.iommu.claimDmaOwner(g, {});
    expect(g.blockingDomain?.type).toBe("blocked");
    expect(m.driver.units[0]?.contextPresent(m.edu.requesterId)).toBe(false);
    expect(m.edu.dmaRead(0x200000n, 0x100).ok).toBe(false);
    expect(m.driver.drainLog()).toEqual([
      "DMAR: DRHD: handling fault status reg 2",
      "DMAR: [DMA Read NO_PASID] Request device [00:01.0] fault addr 0x200000 [fault reason 0x02] Present bit in context entry is clear",
    ]);
  });

  it("6.1 has none: the core blocks with an empty UNMANAGED domain, whose empty table faults on the PTE (reason 0x06)", () => {
    const m = q35();
    const g = m.iommu.groupOf(m.edu)!;
    m.driver.drainLog();
    m.iommu.claimDmaOwner(g, {});
    expect(g.blockingDomain?.type).toBe("unmanaged");
    expect(m.edu.dmaRead(0x200000n, 0x100).ok).toBe(false);
    expect(m.driver.drainLog()[1]).toContain("[fault reason 0x06] PTE Read access is not set");
  });

  it("leaving it for a paging domain maps the context again, and the blocking domain is shared by every group", () => {
    const m = q35({ edus: 2, driver: { blockingDomain: true } });
    const [a, b] = m.edus.map((d) => m.iommu.groupOf(d)!);
    m.iommu.claimDmaOwner(a!, {});
    m.iommu.claimDmaOwner(b!, {});
    const dom = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    m.iommu.attachGroup(dom, a!);
    expect(m.driver.units[0]?.contextPresent(m.edus[0]!.requesterId)).toBe(true);
    expect(m.driver.units[0]?.contextPresent(m.edus[1]!.requesterId)).toBe(false);
    m.iommu.detachGroup(dom, a!);
    expect(m.driver.units[0]?.contextPresent(m.edus[0]!.requesterId)).toBe(false);
    expect(a!.blockingDomain?.driver).toBe(b!.blockingDomain?.driver);
  });
});
