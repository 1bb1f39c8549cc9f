/**
 * The driver under the real IOMMU core (`Iommu` from @iommu/core), with the hardware model behind
 * the devices: what the conformance transcripts of linux-6.1/arm64 show at the group and domain
 * level, and VFIO-like use of an unmanaged domain.
 */
import { IOMMU_FAULT_WRITE, IOMMU_READ, IOMMU_WRITE, Iommu, PciDevice } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { makeRig, RAM_BASE } from "../testing/rig.js";

const RW = IOMMU_READ | IOMMU_WRITE;

function host(devices = 1) {
  const rig = makeRig();
  const iommu = new Iommu({ defaultDomainType: "DMA", msiRemap: true });
  const devs: PciDevice[] = [];
  for (let i = 1; i <= devices; i++) {
    const dev = new PciDevice(rig.memory, { bus: 0, slot: i, classCode: 0x00ff00 });
    dev.upstream = rig.hw;
    iommu.probeDevice(dev, rig.ops);
    devs.push(dev);
  }
  return { rig, iommu, devs };
}

describe("under the IOMMU core (conformance: linux-6.1/arm64 basic, two-groups, edu-dma)", () => {
  it("puts edu 0000:00:01.0 in group 0 of type DMA with the one sw-msi line in reserved_regions", () => {
    const { iommu, devs } = host();
    const g = iommu.groupOf(devs[0] as PciDevice);
    expect(g?.id).toBe(0);
    expect(g?.typeText()).toBe("DMA\n");
    expect(g?.resvRegionsText()).toBe("0x0000000008000000 0x00000000080fffff msi\n");
    expect(g?.defaultDomain?.pgsizeBitmap).toBe(0x40201000n);
    expect(g?.defaultDomain?.geometry.apertureEnd).toBe(0xffffffffffffn);
  });

  it("gives every edu function its own group", () => {
    const { iommu } = host(3);
    expect(iommu.groups().map((g) => g.devices.map((d) => d.name))).toEqual([
      ["0000:00:01.0"],
      ["0000:00:02.0"],
      ["0000:00:03.0"],
    ]);
  });

  it("maps, DMAs and unmaps through a VFIO-style unmanaged domain; after unmap the DMA faults", () => {
    const { rig, iommu, devs } = host();
    const dev = devs[0] as PciDevice;
    const group = iommu.groupOf(dev)!;
    const owner = {};
    iommu.claimDmaOwner(group, owner);
    // Blocking domain: the driver has no BLOCKED type, so the core uses an empty unmanaged one.
    expect(dev.dmaRead(0x100000n, 4).ok).toBe(false);
    const dom = iommu.domainAlloc(rig.ops, "unmanaged");
    iommu.attachGroup(dom, group);
    iommu.map(dom, 0x100000n, RAM_BASE + 0x10000n, 0x2000n, RW);
    expect(dev.dmaWrite(0x101000n, new Uint8Array([0xaa, 0xbb])).ok).toBe(true);
    expect([...rig.memory.read(RAM_BASE + 0x11000n, 2)]).toEqual([0xaa, 0xbb]);
    expect(iommu.unmap(dom, 0x100000n, 0x2000n)).toBe(0x2000n);
    expect(dev.dmaRead(0x101000n, 2).ok).toBe(false);
    iommu.detachGroup(dom, group);
    iommu.domainFree(dom);
    iommu.releaseDmaOwner(group);
  });

  it("reports a DMA fault to the domain's fault handler", () => {
    const { rig, iommu, devs } = host();
    const dev = devs[0] as PciDevice;
    const dom = iommu.domainAlloc(rig.ops, "unmanaged");
    iommu.attachGroup(dom, iommu.groupOf(dev)!);
    const seen: [bigint, number][] = [];
    dom.setFaultHandler((_d, _dev, iova, flags) => {
      seen.push([iova, flags]);
      return 0;
    });
    expect(dev.dmaWrite(0x400000n, new Uint8Array(4)).ok).toBe(false);
    expect(seen).toEqual([[0x400000n, IOMMU_FAULT_WRITE]]);
  });

  it("maps a 4 MiB aligned range as two 2 MiB blocks and unmaps one page of it by splitting", () => {
    const { rig, iommu, devs } = host();
    const dev = devs[0] as PciDevice;
    const dom = iommu.domainAlloc(rig.ops, "unmanaged");
    iommu.attachGroup(dom, iommu.groupOf(dev)!);
    iommu.map(dom, 0x40000000n, RAM_BASE, 0x400000n, RW);
    expect(rig.hw.walkFromMemory(dev.requesterId, 0x40200000n)).toMatchObject({ kind: "leaf", level: 2 });
    expect(dev.dmaRead(0x40201000n, 4).ok).toBe(true);
    expect(iommu.unmap(dom, 0x40201000n, 0x1000n)).toBe(0x1000n);
    expect(dev.dmaRead(0x40201000n, 4).ok).toBe(false);
    expect(dev.dmaRead(0x40202000n, 4).ok).toBe(true);
    expect(iommu.iovaToPhys(dom, 0x403fffffn)).toBe(RAM_BASE + 0x3fffffn);
  });

  it("lets a failed map leave no trace: mapping over a live page unwinds the pages it mapped", () => {
    const { rig, iommu, devs } = host();
    const dom = iommu.domainAlloc(rig.ops, "unmanaged");
    iommu.attachGroup(dom, iommu.groupOf(devs[0] as PciDevice)!);
    iommu.map(dom, 0x103000n, RAM_BASE, 0x1000n, RW);
    expect(() => iommu.map(dom, 0x100000n, RAM_BASE, 0x8000n, RW)).toThrow(expect.objectContaining({ code: "EEXIST" }));
    expect(iommu.iovaToPhys(dom, 0x100000n)).toBe(0n);
    expect(iommu.iovaToPhys(dom, 0x103000n)).toBe(RAM_BASE);
  });

  it("releases a device: its stream aborts again", () => {
    const { iommu, devs } = host();
    const dev = devs[0] as PciDevice;
    iommu.releaseDevice(dev);
    expect(dev.dmaRead(0x1000n, 4)).toMatchObject({ ok: false, reason: "STE.Config abort" });
  });
});
