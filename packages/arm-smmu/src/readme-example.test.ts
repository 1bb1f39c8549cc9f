// The README's example, run as a test so it cannot rot.
import { IOMMU_READ, IOMMU_WRITE, Iommu, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import { expect, it } from "vitest";
import { createArmSmmuV3Driver, createSmmuV3Hardware } from "./index.js";

it("README example", () => {
  // --- README example start ---
  const memory = new PhysicalMemory();
  memory.addRam(0x40000000n, 0x40000000n, "ram"); // QEMU virt: RAM at 1 GiB
  const hw = createSmmuV3Hardware({ memory, mmioBase: 0x09050000n, oas: 44, streamIdBits: 16, qemuQuirks: true });
  const smmu = createArmSmmuV3Driver({
    memory,
    mmioBase: 0x09050000n, // probe reads IDR0/1/3/5 there, then builds the stream table and queues
    pageAllocator: new PageAllocator(memory, 0x40000000n, 0x4000000n), // the kernel's frames
  });
  const ops = smmu.ops; // the iommu_ops the core calls
  hw.onEventIrq = () => smmu.handleEventIrq(); // the board wires the event-queue interrupt

  const iommu = new Iommu({ defaultDomainType: "DMA", msiRemap: true }); // arm64 Debian: strict DMA
  const edu = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0x00ff00 });
  edu.upstream = hw; // the device's DMA goes through the SMMU
  const group = iommu.probeDevice(edu, ops);
  group.resvRegionsText(); // "0x0000000008000000 0x00000000080fffff msi\n"

  iommu.claimDmaOwner(group, {}); // as VFIO does
  const domain = iommu.domainAlloc(ops, "unmanaged"); // stage 1, its own ASID, 4 KiB granule
  iommu.attachGroup(domain, group); // writes the STE (+ CFGI_STE, CMD_SYNC)
  iommu.map(domain, 0x100000n, 0x48000000n, 0x200000n, IOMMU_READ | IOMMU_WRITE); // one 2 MiB block
  edu.dmaWrite(0x100010n, new Uint8Array([1, 2, 3])); // SMMU walks the driver's tables → 0x48000010
  iommu.unmap(domain, 0x101000n, 0x1000n); // splits the block, TLBI_NH_VA + CMD_SYNC
  const r = edu.dmaRead(0x101000n, 4); // F_TRANSLATION event → log lines, fault handler
  const log = smmu.drainLog(); // ["arm-smmu-v3 9050000.smmuv3: event 0x10 received:", …]
  // --- README example end ---
  expect(group.resvRegionsText()).toBe("0x0000000008000000 0x00000000080fffff msi\n");
  expect([...memory.read(0x48000010n, 3)]).toEqual([1, 2, 3]);
  expect(r.ok).toBe(false);
  expect(log[0]).toBe("arm-smmu-v3 9050000.smmuv3: event 0x10 received:");
  expect(iommu.iovaToPhys(domain, 0x102000n)).toBe(0x48002000n);
});
