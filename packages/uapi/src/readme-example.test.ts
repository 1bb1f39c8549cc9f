/** The README's example, run as a test so it stays true. */
import { expect, it } from "vitest";
import {
  CapChain,
  DMA_MAP_SIZE,
  decodeDmaMap,
  decodeIommuInfo,
  encodeDmaMap,
  INFO_SIZE,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  view,
} from "./index.js";

it("README example", () => {
  // User side: the bytes of a MAP_DMA request, and the kernel side reading them back.
  const req = encodeDmaMap({
    argsz: DMA_MAP_SIZE,
    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
    vaddr: 0x1000_0000_0000n,
    iova: 0x10_0000n,
    size: 0x20_0000n,
  });
  expect(VFIO_IOMMU_MAP_DMA).toBe(0x3b71);
  expect(decodeDmaMap(req).iova).toBe(0x10_0000n);

  // Kernel side: GET_INFO's chain, built as vfio_info_cap_add does, then shifted behind the 24-byte struct.
  const caps = new CapChain();
  caps.add(12, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1).setUint32(8, 65535, true);
  const range = caps.add(32, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1);
  range.setUint32(8, 1, true); // nr_iovas
  range.setBigUint64(16, 0n, true);
  range.setBigUint64(24, 0xffff_ffffn, true);
  caps.shift(INFO_SIZE);
  const info = new Uint8Array(INFO_SIZE + caps.size);
  const v = view(info);
  v.setUint32(0, info.length, true); // argsz
  v.setUint32(4, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, true);
  v.setBigUint64(8, 0x4020_1000n, true); // iova_pgsizes
  v.setUint32(16, INFO_SIZE, true); // cap_offset
  info.set(caps.bytes, INFO_SIZE);

  // User side again: the one decoder.
  const d = decodeIommuInfo(info);
  expect(d.caps.map((c) => [c.id, c.offset])).toEqual([
    [3, 24],
    [1, 36],
  ]);
  expect(d.dmaAvail).toBe(65535);
  expect(d.iovaRanges).toEqual([{ start: 0n, end: 0xffff_ffffn }]);
  expect(d.migration).toBeNull();
});
