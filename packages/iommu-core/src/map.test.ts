import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { IommuDomain } from "./domain.js";
import { type ErrnoError, isErrno } from "./errno.js";
import { Iommu } from "./iommu.js";
import { IOMMU_READ, IOMMU_WRITE } from "./prot.js";
import {
  createMockIommu,
  MOCK_APERTURE_START,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IO_PAGE_SIZE,
  type MockDomain,
} from "./testing.js";

const PG = MOCK_IO_PAGE_SIZE;
const RW = IOMMU_READ | IOMMU_WRITE;

function setup(hugePages = false) {
  const mock = createMockIommu({ hugePages });
  const iommu = new Iommu();
  const domain = iommu.domainAlloc(mock.ops, "unmanaged");
  return { mock, iommu, domain, table: domain.driver as MockDomain };
}

function caught(fn: () => unknown): ErrnoError {
  try {
    fn();
  } catch (e) {
    if (isErrno(e)) return e;
    throw e;
  }
  throw new Error("expected an ErrnoError");
}

/** Disjoint page-aligned ranges inside the first 4 MiB of the aperture. */
const arbRanges = fc
  .uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 12 })
  .chain((starts) => {
    const sorted = [...starts].sort((a, b) => a - b);
    return fc.tuple(
      ...sorted.map((s, i) => {
        const room = (sorted[i + 1] ?? 256) - s;
        return fc.record({
          page: fc.constant(s * 8),
          pages: fc.integer({ min: 1, max: room * 8 }),
          pfn: fc.integer({ min: 0, max: 1 << 16 }),
        });
      }),
    );
  })
  .map((rs) =>
    rs.map((r) => ({
      iova: MOCK_APERTURE_START + BigInt(r.page) * PG,
      size: BigInt(r.pages) * PG,
      paddr: BigInt(r.pfn) * PG,
    })),
  );

describe("iommu_map / iommu_unmap / iommu_iova_to_phys", () => {
  it("round-trips: every byte offset translates, unmap returns the size, then nothing translates (property)", () => {
    fc.assert(
      fc.property(arbRanges, fc.array(fc.nat(), { minLength: 8, maxLength: 8 }), (ranges, probes) => {
        const { iommu, domain, table } = setup();
        for (const r of ranges) iommu.map(domain, r.iova, r.paddr, r.size, RW);
        for (const r of ranges) {
          for (const p of probes) {
            const off = BigInt(p) % r.size;
            expect(iommu.iovaToPhys(domain, r.iova + off)).toBe(r.paddr + off);
          }
        }
        for (const r of ranges) expect(iommu.unmap(domain, r.iova, r.size)).toBe(r.size);
        for (const r of ranges) expect(iommu.iovaToPhys(domain, r.iova)).toBe(0n);
        expect(table.pgtable.size).toBe(0);
      }),
      { seed: 21, numRuns: 120 },
    );
  });

  it("a failed map leaves the table exactly as it was (overlap, property)", () => {
    fc.assert(
      fc.property(arbRanges, fc.nat(), fc.integer({ min: 1, max: 64 }), (ranges, pick, extra) => {
        const { iommu, domain, table } = setup(true);
        for (const r of ranges) iommu.map(domain, r.iova, r.paddr, r.size, RW);
        const before = table.pgtable.entries();
        const syncMaps = table.syncs.syncMap;
        // Start before an existing range so some pages map first, then EEXIST, then the unwind.
        const target = ranges[pick % ranges.length] as (typeof ranges)[number];
        const start = target.iova - BigInt(extra) * PG;
        const e = caught(() => iommu.map(domain, start, 0n, BigInt(extra) * PG + PG, IOMMU_READ));
        expect(e.code).toBe("EEXIST");
        expect(table.pgtable.entries()).toEqual(before);
        expect(table.syncs.syncMap).toBe(syncMaps);
      }),
      { seed: 22, numRuns: 150 },
    );
  });

  it("a map failing with ENOMEM after any number of pages leaves the table unchanged (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 48 }), (budget, pages) => {
        const { mock, iommu, domain, table } = setup();
        iommu.map(domain, MOCK_APERTURE_START, 0x100000n, PG, RW);
        const before = table.pgtable.entries();
        mock.failMapsAfter(budget);
        const go = () => iommu.map(domain, MOCK_APERTURE_START + PG, 0x200000n, BigInt(pages) * PG, RW);
        if (budget >= pages) {
          go();
          expect(table.pgtable.size).toBe(1 + pages);
        } else {
          expect(caught(go).code).toBe("ENOMEM");
          expect(table.pgtable.entries()).toEqual(before);
        }
      }),
      { seed: 23, numRuns: 150 },
    );
  });

  it("rejects misaligned iova, paddr or size with EINVAL, naming the minimum page", () => {
    const { iommu, domain } = setup();
    for (const [iova, pa, size] of [
      [MOCK_APERTURE_START + 0x400n, 0n, PG],
      [MOCK_APERTURE_START, 0x400n, PG],
      [MOCK_APERTURE_START, 0n, 0x400n],
    ] as const) {
      const e = caught(() => iommu.map(domain, iova, pa, size, RW));
      expect([e.code, e.op, e.detail.minPagesz]).toEqual(["EINVAL", "__iommu_map", PG]);
    }
  });

  it("answers ENODEV for domains without map_pages (identity, blocked)", () => {
    const { mock, iommu } = setup();
    for (const t of ["identity", "blocked"] as const) {
      const d = iommu.domainAlloc(mock.ops, t);
      expect(caught(() => iommu.map(d, MOCK_APERTURE_START, 0n, PG, RW)).code).toBe("ENODEV");
      expect(iommu.unmap(d, MOCK_APERTURE_START, PG)).toBe(0n);
    }
  });

  it("answers ENODEV (before any alignment check) for a paging domain with map_pages but an empty pgsize_bitmap", () => {
    const { iommu, domain, table } = setup();
    const empty = Object.assign(Object.create(Object.getPrototypeOf(domain)), domain, {
      driver: { ...table, pgsizeBitmap: 0n },
    }) as IommuDomain;
    expect(empty.pgsizeBitmap).toBe(0n);
    expect(caught(() => iommu.map(empty, MOCK_APERTURE_START, 0n, PG, RW)).code).toBe("ENODEV");
    expect(iommu.unmap(empty, MOCK_APERTURE_START, PG)).toBe(0n);
    expect(iommu.iovaToPhys(domain, MOCK_APERTURE_START)).toBe(0n);
  });

  it("answers EINVAL for a non-paging domain whose driver still has map_pages", () => {
    const { mock, iommu, domain } = setup();
    const odd = Object.assign(Object.create(Object.getPrototypeOf(domain)), domain, {
      type: "identity",
    }) as IommuDomain;
    expect(caught(() => iommu.map(odd, MOCK_APERTURE_START, 0n, PG, RW)).code).toBe("EINVAL");
    expect(mock.domains.size).toBe(1);
  });

  it("returns 0 for a misaligned unmap and stops at the first hole", () => {
    const { iommu, domain } = setup();
    iommu.map(domain, MOCK_APERTURE_START, 0n, 4n * PG, RW);
    iommu.map(domain, MOCK_APERTURE_START + 5n * PG, 0n, PG, RW);
    expect(iommu.unmap(domain, MOCK_APERTURE_START + 1n, PG)).toBe(0n);
    expect(iommu.unmap(domain, MOCK_APERTURE_START, 8n * PG)).toBe(4n * PG);
    expect(iommu.iovaToPhys(domain, MOCK_APERTURE_START + 5n * PG)).toBe(0n);
    expect(iommu.unmap(domain, MOCK_APERTURE_START + 5n * PG, PG)).toBe(PG);
  });

  it("may unmap more than asked when a huge page covers the start", () => {
    const { iommu, domain, table } = setup(true);
    const iova = 0x4000_0000n; // 1 MiB aligned, inside the aperture
    iommu.map(domain, iova, 0x1000_0000n, MOCK_HUGE_PAGE_SIZE, RW);
    expect(table.pgtable.entries().map((e) => e.size)).toEqual([MOCK_HUGE_PAGE_SIZE]);
    expect(iommu.unmap(domain, iova, PG)).toBe(MOCK_HUGE_PAGE_SIZE);
    expect(table.pgtable.size).toBe(0);
  });

  it("calls iotlb_sync_map after a successful map and iotlb_sync after every unmap", () => {
    const { iommu, domain, table } = setup();
    iommu.map(domain, MOCK_APERTURE_START, 0n, PG, RW);
    expect(table.syncs.syncMap).toBe(1);
    iommu.unmap(domain, MOCK_APERTURE_START, PG);
    iommu.unmap(domain, MOCK_APERTURE_START, PG);
    expect(table.syncs.iotlbSync).toBe(2);
  });

  it("translates identity domains 1:1 and blocked domains to 0", () => {
    const { mock, iommu } = setup();
    expect(iommu.iovaToPhys(iommu.domainAlloc(mock.ops, "identity"), 0x1234n)).toBe(0x1234n);
    expect(iommu.iovaToPhys(iommu.domainAlloc(mock.ops, "blocked"), 0x1234n)).toBe(0n);
  });
});
