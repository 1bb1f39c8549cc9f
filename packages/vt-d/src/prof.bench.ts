import { emptyGather, IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import { bench, describe } from "vitest";
import { q35 } from "./testing/q35.js";
const RW = IOMMU_READ | IOMMU_WRITE;
const m = q35();
const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
m.iommu.claimDmaOwner(g, {});
m.iommu.attachGroup(d, g);
const drv = d.driver;
drv.mapPages?.(0x20001000n, 0x100002000n, 0x1000n, 1, RW);
describe("parts", () => {
  bench("map only+unmap only (no sync)", () => {
    drv.mapPages?.(0x20000000n, 0x100002000n, 0x1000n, 1, RW);
    drv.unmapPages?.(0x20000000n, 0x1000n, 1, emptyGather());
  });
  bench("sync only", () => {
    const gg = emptyGather(); gg.start = 0x20000000n; gg.end = 0x20000fffn;
    drv.iotlbSync?.(gg);
  });
  bench("read64", () => { m.memory.read64(0x1000000n); });
  bench("write64 mmio", () => { m.memory.write64(0xfed90000n + 0xf0n, 0n); });
});
