import { describe, expect, it } from "vitest";
import { q35 } from "../testing/q35.js";

describe("blocking_domain_attach_dev (intel_iommu_ops.blocked_domain, 6.12): device_block_translation", () => {
  const claimAndDma = (blockedDomain: boolean) => {
    const m = q35({ driver: { blockedDomain } });
    const group = m.iommu.groupOf(m.edu);
    if (!group) throw new Error("edu has no group");
    m.iommu.claimDmaOwner(group, {});
    m.driver.drainLog();
    const ok = m.edu.dmaWrite(0x10_0000n, new Uint8Array(4)).ok;
    return { m, group, ok, log: m.driver.drainLog() };
  };

  it("a claimed, unattached device has no context entry: its DMA faults 'Present bit in context entry is clear'", () => {
    const { m, group, ok, log } = claimAndDma(true);
    expect(group.domain?.type).toBe("blocked");
    expect(ok).toBe(false);
    expect(log.join("\n")).toContain("[fault reason 0x02] Present bit in context entry is clear");
    // released: the default domain's context entry is back (a miss there is a PTE fault, not a context one)
    m.iommu.releaseDmaOwner(group);
    expect(m.edu.dmaWrite(0x10_0000n, new Uint8Array(4)).ok).toBe(false);
    expect(m.driver.drainLog().join("\n")).toContain("[fault reason 0x05] PTE Write access is not set");
  });

  it("6.1 (no BLOCKED domain): the core's empty UNMANAGED fallback keeps a context entry, so the fault is a PTE one", () => {
    const { group, ok, log } = claimAndDma(false);
    expect(group.domain?.type).toBe("unmanaged");
    expect(ok).toBe(false);
    expect(log.join("\n")).toContain("[fault reason 0x05] PTE Write access is not set");
  });
});
