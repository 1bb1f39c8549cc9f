// The README's example, kept runnable.
import { IOMMU_READ, IOMMU_WRITE, Iommu, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import { expect, it } from "vitest";
import { createIntelIommuDriver, createVtdHardware } from "./index.js";

it("README example", () => {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 0x80000000n);
  const kernelPages = new PageAllocator(memory, 0x1000000n, 0x4000000n);
  const delivered: number[] = [];
  const hw = createVtdHardware({
    memory,
    mmioBase: 0xfed90000n,
    aw: 39,
    qemuQuirks: true,
    onInterrupt: (irq) => delivered.push(irq.vector),
  });
  const driver = createIntelIommuDriver({
    memory,
    pageAllocator: kernelPages,
    // One unit for every device; q35's IOAPIC (source id 0xff00) is under it.
    dmar: { drhds: [{ registerBase: 0xfed90000n, includeAll: true, ioapics: [{ ioapicId: 0, bus: 0xff, devfn: 0 }] }] },
  });
  hw.onFaultEvent = () => driver.handleFaultIrq(0);

  const hostBridge = new PciDevice(memory, { bus: 0, slot: 0, classCode: 0x060000 });
  const edu = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0x00ff00 });
  for (const d of [hostBridge, edu]) d.upstream = hw;
  const iommu = new Iommu({ defaultDomainType: "DMA-FQ" });
  iommu.probeDevice(hostBridge, driver.ops);
  const group = iommu.probeDevice(edu, driver.ops); // group 1, type DMA-FQ

  // What VFIO does: claim the group, attach an unmanaged domain, map.
  const domain = iommu.domainAlloc(driver.ops, "unmanaged"); // pgsizes 0x40201000, aperture [0, 0x7fffffffff]
  iommu.claimDmaOwner(group, {});
  iommu.attachGroup(domain, group);
  iommu.map(domain, 0x100000n, 0x40000000n, 0x2000n, IOMMU_READ | IOMMU_WRITE);

  edu.dmaWrite(0x100000n, new Uint8Array([1, 2, 3])); // lands at 0x40000000
  edu.dmaRead(0x400000n, 4); // unmapped: a fault record, then the kernel's log line
  const log = driver.drainLog();
  // ["DMAR: DRHD: handling fault status reg 2",
  //  "DMAR: [DMA Read NO_PASID] Request device [00:01.0] fault addr 0x400000 [fault reason 0x06] PTE Read access is not set"]

  // MSI through interrupt remapping, remappable format: IRTE 0 on a fresh table.
  // (On the q35 board the 15 ISA IOAPIC pins take 0-14 at boot and the device's INTx pin 15 when
  // vfio-pci enables it, so there it is 16: 0xfee00218.)
  const msi = driver.irq.alloc(edu, 0x21); // { address: 0xfee00018n, data: 0, index: 0 }
  edu.dmaWrite(msi.address, new Uint8Array([msi.data, 0, 0, 0])); // delivered: vector 0x21

  expect(group.id).toBe(1);
  expect(domain.pgsizeBitmap).toBe(0x40201000n);
  expect(memory.read(0x40000000n, 3)).toEqual(new Uint8Array([1, 2, 3]));
  expect(log[1]).toBe(
    "DMAR: [DMA Read NO_PASID] Request device [00:01.0] fault addr 0x400000 [fault reason 0x06] PTE Read access is not set",
  );
  expect(msi).toEqual({ address: 0xfee00018n, data: 0, index: 0 });
  expect(delivered).toEqual([0x21]);
});
