/**
 * Driver-side speed: map+unmap of 4 KiB pages and of 2 MiB blocks (with the TLB invalidation the
 * unmap needs), iova-to-phys, each against a naive reference in the same process (vitest prints
 * the ratio inside each group). Issue #5 target: ≥ 1 M 4 KiB map+unmap pairs per second.
 */
import { emptyGather, IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import { bench, describe } from "vitest";
import { makeRig, RAM_BASE } from "./testing/rig.js";

const RW = IOMMU_READ | IOMMU_WRITE;
const rig = makeRig({}, {}, false);
const dev = rig.pci(1);
const d = rig.domain([dev]);
const BASE = 0x40000000n;
const PAGE = 0x1000n;
const BLOCK = 0x200000n;

describe("map+unmap 2 MiB (512 pages' worth)", () => {
  bench("4 KiB pages: 512 × mapPages(4K) + 512 × unmapPages(4K), one sync", () => {
    for (let i = 0n; i < 512n; i++) d.mapPages(BASE + i * PAGE, RAM_BASE + i * PAGE, PAGE, 1, RW);
    const g = emptyGather();
    for (let i = 0n; i < 512n; i++) d.unmapPages(BASE + i * PAGE, PAGE, 1, g);
    d.iotlbSync(g);
  });
  bench("4 KiB pages: mapPages(4K × 512) + unmapPages(4K × 512), one sync", () => {
    d.mapPages(BASE, RAM_BASE, PAGE, 512, RW);
    const g = emptyGather();
    d.unmapPages(BASE, PAGE, 512, g);
    d.iotlbSync(g);
  });
  bench("2 MiB block: mapPages(2M) + unmapPages(2M) + sync", () => {
    d.mapPages(BASE, RAM_BASE, BLOCK, 1, RW);
    const g = emptyGather();
    d.unmapPages(BASE, BLOCK, 1, g);
    d.iotlbSync(g);
  });
});

describe("one 4 KiB map+unmap pair", () => {
  let i = 0n;
  bench("mapPages + unmapPages + iotlbSync (strict: a TLBI + CMD_SYNC per pair)", () => {
    const iova = BASE + (i++ % 512n) * PAGE;
    d.mapPages(iova, RAM_BASE, PAGE, 1, RW);
    const g = emptyGather();
    d.unmapPages(iova, PAGE, 1, g);
    d.iotlbSync(g);
  });
});

describe("iova_to_phys", () => {
  d.mapPages(0x80000000n, RAM_BASE, PAGE, 512, RW);
  d.mapPages(0xc0000000n, RAM_BASE, BLOCK, 4, RW);
  let i = 0n;
  bench("4-level walk to a 4 KiB page", () => {
    d.iovaToPhys(0x80000000n + (i++ % 512n) * PAGE + 0x10n);
  });
  bench("3-level walk to a 2 MiB block", () => {
    d.iovaToPhys(0xc0000000n + (i++ % 4n) * BLOCK + 0x10n);
  });
});
