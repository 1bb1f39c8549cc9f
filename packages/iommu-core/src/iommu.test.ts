import { describe, expect, it } from "vitest";
import { PciDevice } from "./device.js";
import { ErrnoError, isErrno } from "./errno.js";
import { Iommu } from "./iommu.js";
import { PhysicalMemory } from "./phys-mem.js";
import { IOMMU_READ, IOMMU_WRITE } from "./prot.js";
import { createMockIommu, MOCK_APERTURE_START } from "./testing.js";

function setup(opts: ConstructorParameters<typeof Iommu>[0] = {}) {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 1n << 30n);
  const mock = createMockIommu();
  const iommu = new Iommu(opts);
  const dev = (slot: number) => new PciDevice(memory, { bus: 0, slot, classCode: 0x00ff00 });
  return { memory, mock, iommu, dev };
}

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (isErrno(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe("Iommu probe and groups", () => {
  it("gives each group an id from 0 and a default DMA domain attached to the device", () => {
    const { mock, iommu, dev } = setup();
    const a = dev(1);
    const b = dev(2);
    const ga = iommu.probeDevice(a, mock.ops);
    const gb = iommu.probeDevice(b, mock.ops);
    expect([ga.id, gb.id]).toEqual([0, 1]);
    expect(ga.defaultDomain?.type).toBe("DMA");
    expect(ga.domain).toBe(ga.defaultDomain);
    expect(mock.attachedDomain(a)).toBe(ga.defaultDomain?.driver);
    expect(iommu.groupOf(a)).toBe(ga);
    expect(iommu.groups()).toEqual([ga, gb]);
    expect(ga.typeText()).toBe("DMA\n");
  });

  it("puts devices with equal device_group keys in one group sharing one domain", () => {
    const memory = new PhysicalMemory();
    const mock = createMockIommu({ deviceGroup: () => "all" });
    const iommu = new Iommu({ defaultDomainType: "DMA-FQ" });
    const a = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    const b = new PciDevice(memory, { bus: 0, slot: 1, fn: 1, classCode: 0 });
    const g = iommu.probeDevice(a, mock.ops);
    expect(iommu.probeDevice(b, mock.ops)).toBe(g);
    expect(g.devices).toEqual([a, b]);
    expect(mock.attachedDomain(b)).toBe(g.domain?.driver);
    expect(g.typeText()).toBe("DMA-FQ\n");
  });

  it("reuses the lowest free group id after a release", () => {
    const { mock, iommu, dev } = setup();
    const a = dev(1);
    iommu.probeDevice(a, mock.ops);
    const g1 = iommu.probeDevice(dev(2), mock.ops);
    iommu.releaseDevice(a);
    expect(iommu.groups()).toEqual([g1]);
    expect(iommu.probeDevice(dev(3), mock.ops).id).toBe(0);
  });

  it("fails probe with the driver's ENODEV and leaves no trace", () => {
    const memory = new PhysicalMemory();
    const mock = createMockIommu({ claims: () => false });
    const iommu = new Iommu();
    const a = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    expect(errnoOf(() => iommu.probeDevice(a, mock.ops))).toBe("ENODEV");
    expect(a.iommu).toBeNull();
    expect(iommu.groups()).toEqual([]);
  });
});

describe("attach, detach and DMA ownership", () => {
  it("claims a group onto its blocking domain, attaches an unmanaged domain, detaches back", () => {
    const { mock, iommu, dev } = setup();
    const a = dev(1);
    const g = iommu.probeDevice(a, mock.ops);
    const owner = {};
    iommu.claimDmaOwner(g, owner);
    expect(g.domain?.type).toBe("blocked");
    expect(errnoOf(() => iommu.claimDmaOwner(g, {}))).toBe("EPERM");
    const d = iommu.domainAlloc(mock.ops, "unmanaged");
    iommu.attachGroup(d, g);
    expect(g.domain).toBe(d);
    expect(mock.attachedDomain(a)).toBe(d.driver);
    const d2 = iommu.domainAlloc(mock.ops, "unmanaged");
    expect(errnoOf(() => iommu.attachGroup(d2, g))).toBe("EBUSY");
    expect(errnoOf(() => iommu.domainFree(d))).toBe("EBUSY");
    iommu.detachGroup(d, g);
    expect(g.domain?.type).toBe("blocked");
    iommu.releaseDmaOwner(g);
    expect(g.domain).toBe(g.defaultDomain);
    expect(g.typeText()).toBe("DMA\n");
  });

  it("maps and translates device DMA through an unmanaged domain", () => {
    const { memory, mock, iommu, dev } = setup();
    const a = dev(1);
    const g = iommu.probeDevice(a, mock.ops);
    iommu.claimDmaOwner(g, {});
    const d = iommu.domainAlloc(mock.ops, "unmanaged");
    iommu.attachGroup(d, g);
    iommu.map(d, MOCK_APERTURE_START, 0x10_0000n, 0x1000n, IOMMU_READ | IOMMU_WRITE);
    expect(iommu.iovaToPhys(d, MOCK_APERTURE_START + 0x804n)).toBe(0x10_0804n);
    const r = a.dmaWrite(MOCK_APERTURE_START + 0x7fen, new Uint8Array([1, 2, 3, 4]));
    expect(r.ok).toBe(true);
    expect([...memory.read(0x10_07fen, 4)]).toEqual([1, 2, 3, 4]);
    expect(iommu.unmap(d, MOCK_APERTURE_START, 0x1000n)).toBe(0x1000n);
    expect(iommu.iovaToPhys(d, MOCK_APERTURE_START)).toBe(0n);
  });

  it("rejects a misaligned map with EINVAL from __iommu_map", () => {
    const { mock, iommu } = setup();
    const d = iommu.domainAlloc(mock.ops, "unmanaged");
    try {
      iommu.map(d, MOCK_APERTURE_START + 0x400n, 0n, 0x800n, IOMMU_READ);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ErrnoError);
      expect((e as ErrnoError).code).toBe("EINVAL");
      expect((e as ErrnoError).op).toBe("__iommu_map");
    }
  });
});

describe("failure paths leave no trace", () => {
  it("an attach failing on the second device puts the first back on the previous domain", () => {
    const memory = new PhysicalMemory();
    const mock = createMockIommu({
      deviceGroup: () => "g",
      attachFails: (dev, dom) => dom.type === "unmanaged" && dev.name.endsWith(".1"),
    });
    const iommu = new Iommu();
    const a = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    const b = new PciDevice(memory, { bus: 0, slot: 1, fn: 1, classCode: 0 });
    const g = iommu.probeDevice(a, mock.ops);
    iommu.probeDevice(b, mock.ops);
    iommu.claimDmaOwner(g, {});
    const blocking = g.domain;
    const d = iommu.domainAlloc(mock.ops, "unmanaged");
    expect(errnoOf(() => iommu.attachGroup(d, g))).toBe("EINVAL");
    expect(g.domain).toBe(blocking);
    expect(mock.attachedDomain(a)).toBe(blocking?.driver);
    expect(mock.attachedDomain(b)).toBe(blocking?.driver);
  });

  it("refuses a domain of another driver or a freed domain with EINVAL", () => {
    const { mock, iommu, dev } = setup();
    const other = createMockIommu({ name: "other" });
    const g = iommu.probeDevice(dev(1), mock.ops);
    iommu.claimDmaOwner(g, {});
    expect(errnoOf(() => iommu.attachGroup(iommu.domainAlloc(other.ops, "unmanaged"), g))).toBe("EINVAL");
    const d = iommu.domainAlloc(mock.ops, "unmanaged");
    iommu.domainFree(d);
    expect(errnoOf(() => iommu.attachGroup(d, g))).toBe("EINVAL");
    expect(g.domain?.type).toBe("blocked");
  });

  it("claim fails with EBUSY while the group is attached to a non-default domain", () => {
    const { mock, iommu, dev } = setup();
    const g = iommu.probeDevice(dev(1), mock.ops);
    iommu.attachGroup(iommu.domainAlloc(mock.ops, "unmanaged"), g);
    expect(errnoOf(() => iommu.claimDmaOwner(g, {}))).toBe("EBUSY");
    expect(g.owner).toBeNull();
  });

  it("a kernel driver using the default domain makes claim fail with EPERM, and vice versa EBUSY", () => {
    const { mock, iommu, dev } = setup();
    const a = dev(1);
    const g = iommu.probeDevice(a, mock.ops);
    iommu.useDefaultDomain(a);
    expect(errnoOf(() => iommu.claimDmaOwner(g, {}))).toBe("EPERM");
    iommu.unuseDefaultDomain(a);
    iommu.claimDmaOwner(g, {});
    expect(errnoOf(() => iommu.useDefaultDomain(a))).toBe("EBUSY");
  });

  it("falls back to an empty unmanaged domain as blocking domain for drivers without BLOCKED", () => {
    const memory = new PhysicalMemory();
    const mock = createMockIommu({ domainTypes: ["DMA", "unmanaged"] });
    const iommu = new Iommu({ defaultDomainType: "DMA-FQ" });
    const a = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    const g = iommu.probeDevice(a, mock.ops);
    // DMA-FQ unsupported: the default domain falls back to DMA.
    expect(g.typeText()).toBe("DMA\n");
    iommu.claimDmaOwner(g, {});
    expect(g.domain?.type).toBe("unmanaged");
    expect(a.dmaRead(0x100_0000n, 4)).toMatchObject({ ok: false, reason: "translation" });
  });

  it("a device joining a claimed group joins its current (blocking) domain", () => {
    const memory = new PhysicalMemory();
    const mock = createMockIommu({ deviceGroup: () => "g" });
    const iommu = new Iommu();
    const a = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    const g = iommu.probeDevice(a, mock.ops);
    iommu.claimDmaOwner(g, {});
    const b = new PciDevice(memory, { bus: 0, slot: 1, fn: 1, classCode: 0 });
    iommu.probeDevice(b, mock.ops);
    expect(mock.attachedDomain(b)?.type).toBe("blocked");
  });

  it("probing a device twice is EEXIST and changes nothing", () => {
    const { mock, iommu, dev } = setup();
    const a = dev(1);
    const g = iommu.probeDevice(a, mock.ops);
    expect(errnoOf(() => iommu.probeDevice(a, mock.ops))).toBe("EEXIST");
    expect(g.devices).toEqual([a]);
    expect(iommu.groups()).toEqual([g]);
  });

  it("releasing the last device frees the group's domains", () => {
    const { mock, iommu, dev } = setup();
    const a = dev(1);
    const g = iommu.probeDevice(a, mock.ops);
    const dd = g.defaultDomain;
    iommu.releaseDevice(a);
    expect(dd?.freed).toBe(true);
    expect(mock.domains.size).toBe(0);
    expect(a.iommu).toBeNull();
    expect(iommu.groupOf(a)).toBeNull();
  });
});

describe("capabilities and MSI isolation", () => {
  it("answers capable from the driver, false for devices without an IOMMU", () => {
    const memory = new PhysicalMemory();
    const mock = createMockIommu({ caps: ["INTR_REMAP"] });
    const iommu = new Iommu();
    const a = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    const stray = new PciDevice(memory, { bus: 0, slot: 2, classCode: 0 });
    const g = iommu.probeDevice(a, mock.ops);
    expect(iommu.capable(a, "INTR_REMAP")).toBe(true);
    expect(iommu.capable(a, "CACHE_COHERENCY")).toBe(false);
    expect(iommu.capable(stray, "INTR_REMAP")).toBe(false);
    expect(iommu.getResvRegions(stray)).toEqual([]);
    expect(iommu.groupHasIsolatedMsi(g)).toBe(true);
  });

  it("isolated MSI comes from msiRemap (ITS) when the IOMMU has no interrupt remapping", () => {
    const { mock, iommu, dev } = setup();
    const g = iommu.probeDevice(dev(1), mock.ops);
    expect(iommu.groupHasIsolatedMsi(g)).toBe(false);
    iommu.msiRemap = true;
    expect(iommu.groupHasIsolatedMsi(g)).toBe(true);
    expect(new Iommu({ msiRemap: true }).msiRemap).toBe(true);
  });
});

describe("single-device attach and domain lookup", () => {
  it("attachDevice works for a one-device group, EINVAL for bigger groups, ENODEV without a group", () => {
    const memory = new PhysicalMemory();
    const mock = createMockIommu({ deviceGroup: (d) => (d.name.endsWith("2.0") ? "solo" : "pair") });
    const iommu = new Iommu();
    const a = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    const b = new PciDevice(memory, { bus: 0, slot: 1, fn: 1, classCode: 0 });
    const c = new PciDevice(memory, { bus: 0, slot: 2, classCode: 0 });
    const stray = new PciDevice(memory, { bus: 0, slot: 3, classCode: 0 });
    for (const d of [a, b, c]) iommu.probeDevice(d, mock.ops);
    const dom = iommu.domainAlloc(mock.ops, "unmanaged");
    expect(errnoOf(() => iommu.attachDevice(dom, a))).toBe("EINVAL");
    expect(errnoOf(() => iommu.attachDevice(dom, stray))).toBe("ENODEV");
    iommu.attachDevice(dom, c);
    expect(iommu.domainForDev(c)).toBe(dom);
    expect(iommu.domainForDev(stray)).toBeNull();
    iommu.detachDevice(dom, c);
    expect(iommu.domainForDev(c)).toBe(iommu.groupOf(c)?.defaultDomain);
  });
});

describe("onDomainAlloc (where 6.1 attaches the dma-iommu cookie)", () => {
  it("sees every allocated domain; a throwing hook fails the allocation and frees the driver domain", () => {
    const memory = new PhysicalMemory();
    const mock = createMockIommu();
    const seen: string[] = [];
    const iommu = new Iommu({
      onDomainAlloc: (d) => {
        seen.push(d.type);
        if (d.type === "DMA") d.iovaCookie = { kind: "dma" };
        if (d.type === "identity") throw new ErrnoError("ENOMEM", "iommu_get_dma_cookie", "no cookie memory");
      },
    });
    const g = iommu.probeDevice(new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 }), mock.ops);
    expect(g.defaultDomain?.iovaCookie).toEqual({ kind: "dma" });
    expect(errnoOf(() => iommu.domainAlloc(mock.ops, "identity"))).toBe("ENOMEM");
    expect(seen).toEqual(["DMA", "identity"]);
    expect(mock.domains.size).toBe(1);
  });
});
