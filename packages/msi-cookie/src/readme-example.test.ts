// The README's example, verbatim apart from the import paths (kept in sync by hand).
import { Iommu, PciDevice, PhysicalMemory } from "@iommu/core";
import { createMockIommu } from "@iommu/core/testing";
import { expect, it } from "vitest";
import { composeMsiMsg, dmaMap, dmaUnmap, getMsiCookie, prepareMsi, setupDmaOps } from "./index.js";

it("README example runs and prints what it says", () => {
  const lines: string[] = [];
  const log = (s: string) => lines.push(s);
  const hex = (v: bigint | number) => `0x${v.toString(16)}`;

  // --- README example start
  const memory = new PhysicalMemory();
  memory.addRam(0x4000_0000n, 0x100_0000n);
  const mock = createMockIommu(); // 2 KiB pages, aperture [16 MiB, 2 GiB - 1]
  const iommu = new Iommu({ defaultDomainType: "DMA-FQ" });
  const dev = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0x00ff00 });
  const group = iommu.probeDevice(dev, mock.ops);

  // Kernel-owned device: the default domain gets a DMA cookie and the streaming DMA API.
  setupDmaOps(iommu, dev);
  const dma = dmaMap(iommu, dev, 0x4000_1234n, 0x100n, "to-device");
  log(`dma address ${hex(dma)}`); // 0x7ffffa34: top of the 32-bit, aperture-clipped space
  dmaUnmap(iommu, dev, dma, 0x100n, "to-device"); // queued until the flush queue's timer

  // VFIO-owned device: an unmanaged domain with an MSI-only cookie at the SW_MSI window.
  const vfio = iommu.domainAlloc(mock.ops, "unmanaged");
  iommu.claimDmaOwner(group, {});
  iommu.attachGroup(vfio, group);
  getMsiCookie(vfio, 0x800_0000n);
  const doorbell = 0x0809_0040n; // GITS_TRANSLATER of the QEMU virt ITS
  const page = prepareMsi(iommu, dev, doorbell); // maps 0x8000000 -> 0x8090000 (W, no-exec, MMIO)
  const msg = composeMsiMsg(page, { addressHi: 0, addressLo: Number(doorbell), data: 0 });
  log(`MSI address ${hex(msg.addressLo)}`); // 0x8000040, as the arm64 kernel programs it
  // --- README example end

  expect(lines).toEqual(["dma address 0x7ffffa34", "MSI address 0x8000040"]);
});
