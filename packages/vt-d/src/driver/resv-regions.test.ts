import { IOMMU_READ, IOMMU_WRITE, PageAllocator, PciDevice } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { q35 } from "../testing/q35.js";
import { createIntelIommuDriver } from "./ops.js";

const msiRegion = { start: 0xfee00000n, length: 0x100000n, prot: 0, type: "msi" };

describe("intel_iommu_get_resv_regions (6.1)", () => {
  const rmrr = { base: 0x7f7e0000n, end: 0x7f7fffffn };

  function machine() {
    return q35({
      extra: (memory) => {
        const bridge = new PciDevice(memory, { bus: 0, slot: 0x1e, classCode: 0x060400 });
        return [
          new PciDevice(memory, { bus: 0, slot: 0x1d, classCode: 0x0c0330 }), // xHCI: USB
          new PciDevice(memory, { bus: 0, slot: 0x1f, classCode: 0x060100 }), // ISA bridge
          new PciDevice(memory, { bus: 0, slot: 0x1c, classCode: 0x010802 }), // NVMe: not relaxable
          bridge,
          new PciDevice(memory, { bus: 1, slot: 0, classCode: 0x030000, parent: bridge }), // GPU behind the bridge
        ];
      },
      dmar: {
        rmrrs: [
          {
            ...rmrr,
            scopes: [
              { bus: 0, devfn: 0x1d << 3, kind: "endpoint" },
              { bus: 0, devfn: 0x1c << 3, kind: "endpoint" },
            ],
          },
          { base: 0x7f000000n, end: 0x7f0fffffn, scopes: [{ bus: 0, devfn: 0x1e << 3, kind: "bridge" }] },
        ],
      },
      probe: false,
    });
  }

  it("an endpoint without RMRR: only the msi window", () => {
    const m = machine();
    expect(m.driver.ops.getResvRegions(m.edu)).toEqual([msiRegion]);
  });

  it("USB with an RMRR: direct-relaxable, prot RW, then msi", () => {
    const m = machine();
    expect(m.driver.ops.getResvRegions(m.extra[0] as PciDevice)).toEqual([
      { start: rmrr.base, length: 0x20000n, prot: IOMMU_READ | IOMMU_WRITE, type: "direct-relaxable" },
      msiRegion,
    ]);
  });

  it("a non-USB/GFX device with an RMRR: direct", () => {
    const m = machine();
    expect(m.driver.ops.getResvRegions(m.extra[2] as PciDevice)[0]?.type).toBe("direct");
  });

  it("ISA bridge: [0, 16 MiB) direct-relaxable (floppy workaround), unless the option is off", () => {
    const m = machine();
    expect(m.driver.ops.getResvRegions(m.extra[1] as PciDevice)).toEqual([
      { start: 0n, length: 0x1000000n, prot: IOMMU_READ | IOMMU_WRITE, type: "direct-relaxable" },
      msiRegion,
    ]);
    const off = q35({ driver: { floppyWorkaround: false }, probe: false });
    const isa = new PciDevice(off.memory, { bus: 0, slot: 0x1f, classCode: 0x060100 });
    expect(off.driver.ops.getResvRegions(isa)).toEqual([msiRegion]);
  });

  it("a device behind a bridge named by an RMRR scope inherits it (graphics: relaxable)", () => {
    const m = machine();
    expect(m.driver.ops.getResvRegions(m.extra[4] as PciDevice)[0]).toMatchObject({
      start: 0x7f000000n,
      type: "direct-relaxable",
    });
  });

  it("an RMRR-locked device cannot join an unmanaged (VFIO) domain: EPERM; its default domain maps the RMRR 1:1", () => {
    const m = machine();
    const nvme = m.extra[2] as PciDevice;
    for (const d of [m.hostBridge, ...m.edus, ...m.extra]) m.iommu.probeDevice(d, m.driver.ops);
    const g = m.iommu.groupOf(nvme) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    expect(m.iommu.iovaToPhys(g.defaultDomain as NonNullable<typeof g.defaultDomain>, rmrr.base + 0x10n)).toBe(
      rmrr.base + 0x10n,
    );
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    expect(() => m.iommu.attachGroup(d, g)).toThrow(
      expect.objectContaining({ code: "EPERM", op: "intel_iommu_attach_device" }),
    );
    // The USB controller's relaxable RMRR does not lock it.
    const usb = m.iommu.groupOf(m.extra[0] as PciDevice) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    const d2 = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    m.iommu.attachGroup(d2, usb);
    expect(usb.domain).toBe(d2);
  });
});

describe("DMAR shorthands", () => {
  it("`mmioBase` alone means one include-all unit; an RMRR may list devices instead of scopes", () => {
    const m = q35({ probe: false });
    const usb = new PciDevice(m.memory, { bus: 0, slot: 0x1d, classCode: 0x0c0330 });
    const drv = createIntelIommuDriver({
      memory: m.memory,
      pageAllocator: new PageAllocator(m.memory, 0x8000000n, 0x1000000n),
      mmioBase: 0xfed90000n,
      dmar: { rmrrs: [{ base: 0x7f7e0000n, end: 0x7f7fffffn, devices: [usb] }] },
    });
    expect(drv.unitFor(usb)?.name).toBe("dmar0");
    expect(drv.ops.getResvRegions(usb)[0]).toMatchObject({ start: 0x7f7e0000n, type: "direct-relaxable" });
  });
});
