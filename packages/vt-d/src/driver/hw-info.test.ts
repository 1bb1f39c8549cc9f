import { Iommu, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import { expect, it } from "vitest";
import { createIntelIommuDriver, createVtdHardware } from "../index.js";

it("intel_iommu_hw_info: the unit's CAP/ECAP with the SPR17 erratum flag, as QEMU 7.2's intel-iommu answered 6.12", () => {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 0x8000_0000n);
  const hw = createVtdHardware({ memory, mmioBase: 0xfed9_0000n, aw: 39, qemuQuirks: true, eim: false });
  const driver = createIntelIommuDriver({
    memory,
    pageAllocator: new PageAllocator(memory, 0x100_0000n, 0x400_0000n),
    dmar: { drhds: [{ registerBase: 0xfed9_0000n, includeAll: true }] },
  });
  const edu = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0x00ff00 });
  edu.upstream = hw;
  new Iommu().probeDevice(edu, driver.ops);
  const info = driver.ops.hwInfo?.(edu);
  expect(info?.type).toBe(1);
  // linux-6.12-iommufd/x86/iommufd-basic: vtd_flags 0x1, vtd_cap_reg 0xd2008c22260206, vtd_ecap_reg 0xf00f4a.
  expect(Buffer.from(info?.data ?? []).toString("hex")).toBe("0100000000000000060226228c00d2004a0ff00000000000");
});
