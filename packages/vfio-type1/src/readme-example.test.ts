/** The README's example, run as a test so it stays true. */
import { Iommu, PciDevice, PhysicalMemory } from "@iommu/core";
import { createMockIommu } from "@iommu/core/testing";
import { expect, it } from "vitest";
import {
  infoBuffer,
  lazyPageSource,
  Process,
  SZ_2M,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_GET_INFO,
  VFIO_TYPE1v2_IOMMU,
  Vfio,
  walkCaps,
} from "./index.js";
import { type1State } from "./testing.js";

it("README example", () => {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 1n << 34n);
  const iommu = new Iommu({ msiRemap: true });
  const mock = createMockIommu();
  const group = iommu.probeDevice(new PciDevice(memory, { bus: 0, slot: 1, classCode: 0x00ff00 }), mock.ops);

  const vfio = new Vfio({ iommu, params: { dmaEntryLimit: 65535, allowUnsafeInterrupts: false } });
  const proc = new Process({
    pages: lazyPageSource(1n << 32n, 1n << 33n),
    memory,
    memlockBytes: 64n << 20n,
    capIpcLock: false,
  });
  proc.mmap({ start: 0x1000_0000_0000n, size: 1n << 30n });
  proc.mmap({ start: 0x2000_0000_0000n, size: 4n * SZ_2M, kind: "hugetlb-2M" });

  const container = vfio.openContainer(proc);
  const vgroup = vfio.openGroup(group.id);
  vgroup.setContainer(container);
  container.setIommu(VFIO_TYPE1v2_IOMMU);

  container.mapDma({
    vaddr: 0x2000_0000_0000n,
    iova: 0x100_0000n,
    size: 4n * SZ_2M,
    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
  });
  const info = container.getInfo();
  expect(info.iovaPgsizes).toBe(0x1000n);
  expect(info.iovaRanges).toEqual([{ start: 0x100_0000n, end: 0x7fff_ffffn }]);
  expect(info.dmaAvail).toBe(65534);
  expect(proc.lockedVm).toBe(2048);
  expect(type1State(container.backend!).dmas.all()[0]!.runs).toHaveLength(1);

  const buf = infoBuffer(4096);
  expect(container.ioctl(VFIO_IOMMU_GET_INFO, buf)).toBe(0);
  expect(walkCaps(buf, 24).map((c) => c.offset)).toEqual([24, 56, 68]);
  expect(container.unmapDma({ iova: 0n, size: 0n, flags: VFIO_DMA_UNMAP_FLAG_ALL })).toBe(0x80_0000n);
  expect(proc.lockedVm).toBe(0);
});
