import { IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { makeRig, RAM_BASE } from "../testing/rig.js";

describe("arm_smmu_attach_dev_blocked (arm_smmu_ops.blocked_domain, Linux 6.9 on): an abort STE", () => {
  it("a device moved from a paging domain to the BLOCKED domain has its DMA terminated without an event", () => {
    const rig = makeRig({}, { blockedDomain: true });
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    d.mapPages(0x200000n, RAM_BASE, 0x1000n, 1, IOMMU_READ | IOMMU_WRITE);
    expect(dev.dmaWrite(0x200000n, new Uint8Array(4)).ok).toBe(true);
    const blocked = rig.ops.domainAlloc("blocked", rig.ctx);
    if (!blocked) throw new Error("no BLOCKED domain");
    blocked.attachDev(dev);
    expect(d.masters.size).toBe(0);
    expect(dev.dmaWrite(0x200000n, new Uint8Array(4)).ok).toBe(false);
    expect(rig.log).toEqual([]);
    expect(rig.faults).toEqual([]);
    // back on the paging domain, the mapping answers again
    d.attachDev(dev);
    expect(dev.dmaWrite(0x200000n, new Uint8Array(4)).ok).toBe(true);
  });

  it("6.1 (no BLOCKED domain): domainAlloc('blocked') is null, so the core falls back to an empty UNMANAGED domain", () => {
    const rig = makeRig({}, { blockedDomain: false });
    const dev = rig.pci(1);
    expect(rig.ops.domainAlloc("blocked", rig.ctx)).toBeNull();
    rig.domain([dev]);
    expect(dev.dmaWrite(0x200000n, new Uint8Array(4)).ok).toBe(false);
    expect(rig.log[0]).toMatch(/event 0x10 received:/);
  });
});
