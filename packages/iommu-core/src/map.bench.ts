/**
 * Core overhead of iommu_map/iommu_unmap (validation, iommu_pgsize, unwind bookkeeping, syncs) over
 * calling the mock driver's map_pages/unmap_pages directly. vitest prints the ratio between the
 * two benches of each describe ("x times faster than").
 */
import { bench, describe } from "vitest";
import { Iommu } from "./iommu.js";
import { emptyGather } from "./iommu-ops.js";
import { IOMMU_READ, IOMMU_WRITE } from "./prot.js";
import { type ResvType, resvRegion } from "./resv-region.js";
import { insertResvRegions } from "./resv-regions.js";
import { createMockIommu, MOCK_APERTURE_START, MOCK_IO_PAGE_SIZE } from "./testing.js";

const PAGES = 256;
const SIZE = BigInt(PAGES) * MOCK_IO_PAGE_SIZE;
const RW = IOMMU_READ | IOMMU_WRITE;

const mock = createMockIommu();
const iommu = new Iommu();
const domain = iommu.domainAlloc(mock.ops, "unmanaged");
const drv = domain.driver;

describe(`map + unmap ${PAGES} × 2 KiB`, () => {
  bench("core iommu.map/unmap", () => {
    iommu.map(domain, MOCK_APERTURE_START, 0x10_0000n, SIZE, RW);
    iommu.unmap(domain, MOCK_APERTURE_START, SIZE);
  });
  bench("reference: driver mapPages/unmapPages", () => {
    drv.mapPages?.(MOCK_APERTURE_START, 0x10_0000n, MOCK_IO_PAGE_SIZE, PAGES, RW);
    drv.unmapPages?.(MOCK_APERTURE_START, MOCK_IO_PAGE_SIZE, PAGES, emptyGather());
  });
});

// 64 regions of 4 types, inserted one by one (the 6.1 rule re-walks the list each time) versus a
// plain sort of the same regions: the price of the faithful algorithm.
const TYPES: readonly ResvType[] = ["direct", "reserved", "msi", "sw-msi"];
const regions = Array.from({ length: 64 }, (_, i) =>
  resvRegion(BigInt((i * 7919) % 251) * 0x1000n, 0x1800n, 0, TYPES[i % 4] ?? "reserved"),
);
describe("group reserved regions: 64 inserts", () => {
  bench("core insertResvRegions", () => {
    insertResvRegions([], regions);
  });
  bench("reference: one sort", () => {
    [...regions].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  });
});
