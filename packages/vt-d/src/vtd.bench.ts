/**
 * Speed of the VT-d model against the targets (IOTLB hit ≤ 200 ns, full walk ≤ 1 µs, ≥ 1 M 4 KiB
 * map+unmap pairs per second). Each describe holds a reference bench in the same process — a plain JS
 * Map lookup, a raw read64 walk, the core mock driver — and vitest prints the ratio between them.
 */
import { emptyGather, IOMMU_READ, IOMMU_WRITE, type TranslateRequest } from "@iommu/core";
import { createMockIommu, MOCK_APERTURE_START } from "@iommu/core/testing";
import { bench, describe } from "vitest";
import { q35 } from "./testing/q35.js";

const RW = IOMMU_READ | IOMMU_WRITE;
const m = q35();
const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
m.iommu.claimDmaOwner(g, {});
m.iommu.attachGroup(d, g);
const drv = d.driver;

// 16 MiB of 4 KiB pages (no superpages: phys offset by a page) for walks; one hot page for hits.
const WALK_PAGES = 4096;
m.iommu.map(d, 0x10000000n, 0x100001000n, BigInt(WALK_PAGES) * 0x1000n, RW);
const hot: TranslateRequest = { device: m.edu, requesterId: m.edu.requesterId, iova: 0x10000010n, access: "read" };
m.hw.translate(hot);
const walkReqs: TranslateRequest[] = Array.from({ length: WALK_PAGES }, (_, i) => ({
  device: m.edu,
  requesterId: m.edu.requesterId,
  iova: 0x10000000n + BigInt(i) * 0x1000n,
  access: "read" as const,
}));
let w = 0;

const refMap = new Map<number, bigint>([[0x10000, 0x100001000n]]);

describe("translate: IOTLB hit", () => {
  bench("vt-d hw.translate (IOTLB hit)", () => {
    m.hw.translate(hot);
  });
  bench("reference: Map.get + bigint page math", () => {
    const pfn = Number(hot.iova >> 12n);
    const p = refMap.get(pfn) as bigint;
    void (p + (hot.iova & 0xfffn));
  });
});

describe("translate: full 3-level walk (IOTLB miss)", () => {
  bench("vt-d hw.translate (IOTLB flushed each time)", () => {
    m.hw.iotlb.invalidateAll();
    m.hw.translate(walkReqs[w++ % WALK_PAGES] as TranslateRequest);
  });
  bench("reference: three raw read64s of the same tables", () => {
    const r = walkReqs[w++ % WALK_PAGES] as TranslateRequest;
    const t = (drv as unknown as { table: { root: bigint } }).table;
    const pfn = Number(r.iova >> 12n);
    const l3 = m.memory.read64(t.root + BigInt(((pfn >>> 18) & 511) * 8));
    const l2 = m.memory.read64((l3 & ~0xfffn) + BigInt(((pfn >>> 9) & 511) * 8));
    void m.memory.read64((l2 & ~0xfffn) + BigInt((pfn & 511) * 8));
  });
});

const mock = createMockIommu();
const mockDomain = m.iommu.domainAlloc(mock.ops, "unmanaged");
describe("4 KiB map + unmap pair (driver ops, with the IOTLB sync)", () => {
  bench("vt-d mapPages + unmapPages + iotlbSync", () => {
    drv.mapPages?.(0x20000000n, 0x100002000n, 0x1000n, 1, RW);
    const gather = emptyGather();
    drv.unmapPages?.(0x20000000n, 0x1000n, 1, gather);
    drv.iotlbSync?.(gather);
  });
  bench("reference: core mock driver mapPages + unmapPages", () => {
    mockDomain.driver.mapPages?.(MOCK_APERTURE_START, 0x100002000n, 0x800n, 2, RW);
    mockDomain.driver.unmapPages?.(MOCK_APERTURE_START, 0x800n, 2, emptyGather());
  });
});

let batch = emptyGather();
let inBatch = 0;
describe("4 KiB map + unmap pair, IOTLB sync per 512 unmaps (type1's gather batching; DMA-FQ defers further)", () => {
  bench("vt-d mapPages + unmapPages, batched sync", () => {
    drv.mapPages?.(0x20000000n, 0x100002000n, 0x1000n, 1, RW);
    drv.unmapPages?.(0x20000000n, 0x1000n, 1, batch);
    if (++inBatch === 512) {
      drv.iotlbSync?.(batch);
      batch = emptyGather();
      inBatch = 0;
    }
  });
  bench("reference: core mock driver mapPages + unmapPages", () => {
    mockDomain.driver.mapPages?.(MOCK_APERTURE_START, 0x100002000n, 0x800n, 2, RW);
    mockDomain.driver.unmapPages?.(MOCK_APERTURE_START, 0x800n, 2, emptyGather());
  });
});

describe("4 KiB map + unmap pair through the core (iommu_map / iommu_unmap)", () => {
  bench("vt-d via core iommu.map/unmap", () => {
    m.iommu.map(d, 0x20000000n, 0x100002000n, 0x1000n, RW);
    m.iommu.unmap(d, 0x20000000n, 0x1000n);
  });
  bench("reference: mock driver via core", () => {
    m.iommu.map(mockDomain, MOCK_APERTURE_START, 0x100002000n, 0x1000n, RW);
    m.iommu.unmap(mockDomain, MOCK_APERTURE_START, 0x1000n);
  });
});

describe("superpage map + unmap (2 MiB and 1 GiB)", () => {
  bench("vt-d 2 MiB superpage pair", () => {
    m.iommu.map(d, 0x40000000n, 0x100200000n, 0x200000n, RW);
    m.iommu.unmap(d, 0x40000000n, 0x200000n);
  });
  bench("vt-d 1 GiB superpage pair", () => {
    m.iommu.map(d, 0x40000000n, 0x100000000n, 0x40000000n, RW);
    m.iommu.unmap(d, 0x40000000n, 0x40000000n);
  });
  bench("reference: 4 KiB pair via core", () => {
    m.iommu.map(d, 0x20000000n, 0x100002000n, 0x1000n, RW);
    m.iommu.unmap(d, 0x20000000n, 0x1000n);
  });
});
