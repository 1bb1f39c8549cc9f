import type { Device } from "@iommu/core";
import {
  IOMMU_CACHE,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  Iommu,
  PciDevice,
  PhysicalMemory,
  PlatformDevice,
  resvRegion,
} from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocIova } from "./alloc-iova.js";
import { cookieOf, DmaCookie } from "./cookie.js";
import { dmaSetMask, setBusDmaLimit } from "./device-dma.js";
import { DMA_MAPPING_ERROR, dmaInfoToProt, dmaMap, dmaMappingError, dmaUnmap, flushQueueTimeout } from "./dma-api.js";
import { setupDmaOps } from "./init-domain.js";
import { groupOf, RAM_BASE, testBoard } from "./testing/board.js";
import { createFlatIommu } from "./testing/flat-iommu.js";

const G = 0x800n; // the mock's 2 KiB granule

function cookie(iommu: Iommu, dev: Device): DmaCookie {
  const c = cookieOf(iommu.groupOf(dev)!.defaultDomain!);
  if (!(c instanceof DmaCookie) || !c.iovad) throw new Error("no initialised DMA cookie");
  return c;
}

/** Allocated-in-tree ranges that are neither cached nor reserved at setup: what the DMA API holds. */
function liveRanges(c: DmaCookie, reserved: number): number {
  return c.iovad!.count - c.iovad!.cachedCount - reserved;
}

describe("dmaMap / dmaUnmap (iommu_dma_map_page / iommu_dma_unmap_page)", () => {
  it("maps the buffer's granules and returns IOVA + in-granule offset; the device reads the buffer through it", () => {
    const b = testBoard();
    const dev = b.devices[0]!;
    setupDmaOps(b.iommu, dev);
    const buf = RAM_BASE + 0x1234n;
    b.memory.write(buf, new Uint8Array([1, 2, 3, 4, 5]));
    const dma = dmaMap(b.iommu, dev, buf, 5n, "to-device");
    // 32-bit mask clipped to the aperture end (2 GiB - 1), top-down, one granule.
    expect(dma).toBe(0x7fff_f800n + 0x234n);
    const r = dev.dmaRead(dma, 5);
    expect(r.ok && [...r.data]).toEqual([1, 2, 3, 4, 5]);
    // to-device is read-only for the device.
    expect(dev.dmaWrite(dma, new Uint8Array([9])).ok).toBe(false);
    const dom = groupOf(b, 0).defaultDomain!;
    expect(b.iommu.iovaToPhys(dom, dma)).toBe(buf);
    expect(dmaUnmap(b.iommu, dev, dma, 5n, "to-device")).toBe(G);
    expect(b.iommu.iovaToPhys(dom, dma)).toBe(0n);
    expect(dev.dmaRead(dma, 1).ok).toBe(false);
  });

  it("a buffer crossing a granule boundary maps both granules", () => {
    const b = testBoard();
    const dev = b.devices[0]!;
    setupDmaOps(b.iommu, dev);
    const dma = dmaMap(b.iommu, dev, RAM_BASE + 0x7f0n, 0x20n, "bidirectional");
    expect(dma & (G - 1n)).toBe(0x7f0n);
    expect(b.mock.attachedDomain(dev)?.pgtable.entries()).toHaveLength(2);
    expect(dmaUnmap(b.iommu, dev, dma, 0x20n, "bidirectional")).toBe(2n * G);
  });

  it("sizes below 32 granules take a power-of-two IOVA range; larger ones are exact", () => {
    const b = testBoard();
    const dev = b.devices[0]!;
    setupDmaOps(b.iommu, dev);
    const c = cookie(b.iommu, dev);
    const a = dmaMap(b.iommu, dev, RAM_BASE, 3n * G, "bidirectional");
    const r = c.iovad!.find(Number(a / G))!;
    expect(r.pfnHi - r.pfnLo + 1).toBe(4);
    expect(b.mock.attachedDomain(dev)?.pgtable.entries()).toHaveLength(3);
    const big = dmaMap(b.iommu, dev, RAM_BASE, 33n * G, "bidirectional");
    const rb = c.iovad!.find(Number(big / G))!;
    expect(rb.pfnHi - rb.pfnLo + 1).toBe(33);
  });

  it("dma_info_to_prot: direction, coherence and privilege", () => {
    expect(dmaInfoToProt("bidirectional", false, false)).toBe(IOMMU_READ | IOMMU_WRITE);
    expect(dmaInfoToProt("to-device", true, false)).toBe(IOMMU_READ | IOMMU_CACHE);
    expect(dmaInfoToProt("from-device", false, true)).toBe(IOMMU_WRITE | IOMMU_PRIV);
    expect(dmaInfoToProt("none", true, true)).toBe(0);
  });

  it("strict mode: unmap invalidates the IOTLB at once and the IOVA is reused by the next map", () => {
    const b = testBoard({ defaultDomainType: "DMA" });
    const dev = b.devices[0]!;
    setupDmaOps(b.iommu, dev);
    const drv = b.mock.attachedDomain(dev)!;
    const a = dmaMap(b.iommu, dev, RAM_BASE, G, "bidirectional");
    const syncs = drv.syncs.iotlbSync;
    dmaUnmap(b.iommu, dev, a, G, "bidirectional");
    expect(drv.syncs.iotlbSync).toBe(syncs + 1);
    expect(dmaMap(b.iommu, dev, RAM_BASE + G, G, "bidirectional")).toBe(a);
  });

  it("flush-queue mode: unmap defers the invalidation; the IOVA comes back only after the flush", () => {
    const b = testBoard({ defaultDomainType: "DMA-FQ" });
    const dev = b.devices[0]!;
    setupDmaOps(b.iommu, dev);
    const drv = b.mock.attachedDomain(dev)!;
    const c = cookie(b.iommu, dev);
    const a = dmaMap(b.iommu, dev, RAM_BASE, G, "bidirectional");
    const syncs = drv.syncs.iotlbSync;
    const flushes = drv.syncs.flushAll;
    dmaUnmap(b.iommu, dev, a, G, "bidirectional");
    expect(drv.syncs.iotlbSync).toBe(syncs);
    expect(drv.syncs.flushAll).toBe(flushes);
    expect(c.fq?.pending()).toEqual([{ pfn: Number(a / G), pages: 1, counter: 0 }]);
    expect(c.fq?.timerPending).toBe(true);
    const b2 = dmaMap(b.iommu, dev, RAM_BASE, G, "bidirectional");
    expect(b2).not.toBe(a);
    flushQueueTimeout(groupOf(b, 0).defaultDomain!);
    expect(drv.syncs.flushAll).toBe(flushes + 1);
    expect(c.fq?.pending()).toEqual([]);
    expect(dmaMap(b.iommu, dev, RAM_BASE, G, "bidirectional")).toBe(a);
  });

  it("a failed map returns DMA_MAPPING_ERROR and leaves no mapping and no live IOVA", () => {
    const b = testBoard({ defaultDomainType: "DMA-FQ" });
    const dev = b.devices[0]!;
    setupDmaOps(b.iommu, dev);
    const c = cookie(b.iommu, dev);
    b.mock.failMapsAfter(2);
    const a = dmaMap(b.iommu, dev, RAM_BASE, 4n * G, "bidirectional");
    expect(a).toBe(DMA_MAPPING_ERROR);
    expect(dmaMappingError(a)).toBe(true);
    expect(b.mock.attachedDomain(dev)?.pgtable.entries()).toEqual([]);
    expect(liveRanges(c, 0)).toBe(0);
    expect(c.fq?.pending()).toEqual([]);
  });

  it("DMA_MAPPING_ERROR when the IOVA space is exhausted", () => {
    const b = testBoard({ devices: 0 });
    b.mock.addReserved(0x100_0000n, 0x7f00_0000n, "reserved");
    const dev = new PciDevice(b.memory, { bus: 0, slot: 1, classCode: 0 });
    b.iommu.probeDevice(dev, b.mock.ops);
    setupDmaOps(b.iommu, dev);
    expect(dmaMap(b.iommu, dev, RAM_BASE, G, "bidirectional")).toBe(DMA_MAPPING_ERROR);
  });

  it("unmapping less than was mapped is a kernel WARN, recorded on the cookie; the IOVA is still freed", () => {
    const b = testBoard();
    const dev = b.devices[0]!;
    setupDmaOps(b.iommu, dev);
    const a = dmaMap(b.iommu, dev, RAM_BASE, 2n * G, "bidirectional");
    const dom = groupOf(b, 0).defaultDomain!;
    b.iommu.unmap(dom, a + G, G); // someone else tore down the second granule
    expect(dmaUnmap(b.iommu, dev, a, 2n * G, "bidirectional")).toBe(G);
    const c = cookie(b.iommu, dev);
    expect(c.warnings).toEqual([expect.objectContaining({ what: "WARN_ON(unmapped != size)" })]);
    expect(liveRanges(c, 0)).toBe(0);
  });

  it("unmapping an address dmaMap never handed out throws and changes nothing (strict and flush-queue modes)", () => {
    for (const defaultDomainType of ["DMA", "DMA-FQ"] as const) {
      const b = testBoard({ defaultDomainType });
      const dev = b.devices[0]!;
      setupDmaOps(b.iommu, dev);
      const a = dmaMap(b.iommu, dev, RAM_BASE, G, "bidirectional");
      const c = cookie(b.iommu, dev);
      const before = JSON.stringify({ ranges: [...c.iovad!], cached: c.iovad!.cachedCount, hints: c.iovad!.hints() });
      expect(() => dmaUnmap(b.iommu, dev, a - 16n * G, G, "bidirectional")).toThrowError(RangeError);
      expect(() => dmaUnmap(b.iommu, dev, a + G, G, "bidirectional")).toThrowError(RangeError); // inside, not a start
      expect(c.warnings).toEqual([]);
      expect(JSON.stringify({ ranges: [...c.iovad!], cached: c.iovad!.cachedCount, hints: c.iovad!.hints() })).toBe(
        before,
      );
      flushQueueTimeout(groupOf(b, 0).defaultDomain!); // nothing bogus was queued
      expect(b.iommu.iovaToPhys(groupOf(b, 0).defaultDomain!, a)).toBe(RAM_BASE);
      expect(dmaUnmap(b.iommu, dev, a, G, "bidirectional")).toBe(G);
    }
  });

  it("the firmware bus limit clips the IOVA (min_not_zero with the DMA mask: a zero limit takes the bus limit)", () => {
    const b = testBoard();
    const dev = b.devices[0]!;
    setupDmaOps(b.iommu, dev);
    setBusDmaLimit(dev, 0x3fff_ffffn);
    const a = dmaMap(b.iommu, dev, RAM_BASE, G, "bidirectional");
    expect(a).toBe(0x4000_0000n - G); // top of the bus limit, not of the aperture (2 GiB - 1)
    const dom = groupOf(b, 0).defaultDomain!;
    const c = cookie(b.iommu, dev);
    expect(allocIova(dom, c, G, 0n, dev)).toBe(0x4000_0000n - 2n * G); // dma_limit 0: the bus limit alone
    setBusDmaLimit(dev, 0n);
    expect(allocIova(dom, c, G, 0x1fff_ffffn, dev)).toBe(0x2000_0000n - G); // no bus limit: the caller's
  });

  it("ENODEV for a device whose DMA does not go through dma-iommu", () => {
    const b = testBoard();
    expect(() => dmaMap(b.iommu, b.devices[0]!, RAM_BASE, G, "bidirectional")).toThrowError(
      expect.objectContaining({ code: "ENODEV", op: "iommu_dma_map_page" }),
    );
  });
});

describe("IOVA limits: DMA mask, aperture, 32-bit first for PCI (iommu_dma_alloc_iova)", () => {
  function wide(sac?: "always" | "latch" | "forcedac") {
    const flat = createFlatIommu({
      apertureEnd: (1n << 48n) - 1n,
      resv: [resvRegion(0n, 0xfffc_0000n, 0, "reserved")], // leaves 64 pages below 4 GiB
    });
    const memory = new PhysicalMemory();
    const iommu = new Iommu();
    const pci = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    const plat = new PlatformDevice(memory, "plat", 9);
    iommu.probeDevice(pci, flat.ops);
    iommu.probeDevice(plat, flat.ops);
    const init = sac ? { sac } : {};
    setupDmaOps(iommu, pci, init);
    setupDmaOps(iommu, plat, init);
    dmaSetMask(pci, (1n << 64n) - 1n);
    dmaSetMask(plat, (1n << 64n) - 1n);
    return { iommu, pci, plat };
  }

  it("PCI devices get 32-bit IOVAs first; platform devices start at the top of the clipped limit", () => {
    const { iommu, pci, plat } = wide();
    expect(dmaMap(iommu, pci, 0x1000n, 0x1000n, "bidirectional")).toBe(0xffff_f000n);
    expect(dmaMap(iommu, plat, 0x1000n, 0x1000n, "bidirectional")).toBe((1n << 48n) - 0x1000n);
  });

  // 64 pages are free below 4 GiB; 40-page buffers are too big for the range caches, so frees go to the tree.
  const BIG = 40n * 0x1000n;
  const TOP = 1n << 48n;

  it("6.1 ('always'): every PCI allocation tries below 4 GiB again once space frees up", () => {
    const { iommu, pci } = wide();
    const first = dmaMap(iommu, pci, 0x1000n, BIG, "bidirectional");
    expect(first).toBe(0xfffc_0000n);
    expect(dmaMap(iommu, pci, 0x1000n, BIG, "bidirectional")).toBe(TOP - 0x4_0000n);
    dmaUnmap(iommu, pci, first, BIG, "bidirectional");
    expect(dmaMap(iommu, pci, 0x1000n, BIG, "bidirectional")).toBe(0xfffc_0000n);
    expect(cookie(iommu, pci).warnings).toEqual([]);
  });

  it("6.4+ ('latch'): the first 32-bit failure switches the device to the full mask for good, with a notice", () => {
    const { iommu, pci } = wide("latch");
    const first = dmaMap(iommu, pci, 0x1000n, BIG, "bidirectional");
    expect(first).toBe(0xfffc_0000n);
    expect(dmaMap(iommu, pci, 0x1000n, BIG, "bidirectional")).toBe(TOP - 0x4_0000n);
    expect(cookie(iommu, pci).warnings).toEqual([{ what: "Using %d-bit DMA addresses", detail: { bits: 48 } }]);
    dmaUnmap(iommu, pci, first, BIG, "bidirectional");
    expect(dmaMap(iommu, pci, 0x1000n, BIG, "bidirectional")).toBe(TOP - 0x8_0000n);
  });

  it("iommu.forcedac=1: PCI devices go straight to the full mask", () => {
    const { iommu, pci } = wide("forcedac");
    expect(dmaMap(iommu, pci, 0x1000n, 0x1000n, "bidirectional")).toBe((1n << 48n) - 0x1000n);
  });

  it("the default 32-bit DMA mask keeps every IOVA below 4 GiB", () => {
    const { iommu, plat } = wide();
    dmaSetMask(plat, 0xffff_ffffn);
    expect(dmaMap(iommu, plat, 0x1000n, 0x1000n, "bidirectional")).toBe(0xffff_f000n);
  });
});

describe("property: DMA-API workloads (strict and flush-queue)", () => {
  type Op =
    | { kind: "map"; pages: number; off: number; cpu: number }
    | { kind: "unmap"; pick: number; cpu: number }
    | { kind: "timeout" };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant("map" as const),
        pages: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 9, max: 70 })),
        off: fc.nat(0x7ff),
        cpu: fc.nat(1),
      }),
    },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("unmap" as const), pick: fc.nat(), cpu: fc.nat(1) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("timeout" as const) }) },
  );

  it("never hands out reserved, out-of-aperture or overlapping IOVAs; accounting is exact after flush-queue recycling", {
    tags: ["slow"],
  }, () => {
    const stats = { runs: 0, maps: 0, queuedSeen: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom("DMA" as const, "DMA-FQ" as const),
        fc.array(fc.tuple(fc.integer({ min: 0x100_0000, max: 0x7f00_0000 }), fc.integer({ min: 1, max: 0x40_0000 })), {
          maxLength: 4,
        }),
        fc.array(opArb, { minLength: 20, maxLength: 250, size: "max" }),
        (type, holes, ops) => {
          const b = testBoard({ devices: 0, defaultDomainType: type });
          const resv = holes.map(([s, l]) => ({
            start: BigInt(s) & ~(G - 1n),
            end: (BigInt(s) & ~(G - 1n)) + BigInt(l) - 1n,
          }));
          for (const r of resv) b.mock.addReserved(r.start, r.end - r.start + 1n, "reserved");
          const dev = new PciDevice(b.memory, { bus: 0, slot: 1, classCode: 0 });
          b.iommu.probeDevice(dev, b.mock.ops);
          setupDmaOps(b.iommu, dev, { cpus: 2 });
          const dom = b.iommu.groupOf(dev)!.defaultDomain!;
          const c = cookie(b.iommu, dev);
          const pgtable = b.mock.attachedDomain(dev)!.pgtable;
          const reservedNodes = c.iovad!.count;
          const live: { dma: bigint; size: bigint; lo: bigint; hi: bigint }[] = [];
          let mapped = 0n;
          stats.runs++;

          const overlaps = (lo: bigint, hi: bigint, olo: bigint, ohi: bigint) => lo <= ohi && olo <= hi;
          for (const op of ops) {
            if (op.kind === "map") {
              const size = BigInt(op.pages) * G - BigInt(op.off);
              const phys = RAM_BASE + BigInt(op.off);
              const dma = dmaMap(b.iommu, dev, phys, size, "bidirectional", { cpu: op.cpu });
              if (dma === DMA_MAPPING_ERROR) continue;
              const lo = dma & ~(G - 1n);
              const hi = lo + BigInt(op.pages) * G - 1n;
              expect(lo).toBeGreaterThanOrEqual(0x100_0000n);
              expect(hi).toBeLessThanOrEqual(0x7fff_ffffn);
              for (const r of resv) expect(overlaps(lo, hi, r.start, r.end)).toBe(false);
              for (const l of live) expect(overlaps(lo, hi, l.lo, l.hi)).toBe(false);
              // Not yet flushed: a queued IOVA must not come back.
              for (const e of c.fq?.pending() ?? []) {
                const elo = BigInt(e.pfn) * G;
                expect(overlaps(lo, hi, elo, elo + BigInt(e.pages) * G - 1n)).toBe(false);
              }
              expect(b.iommu.iovaToPhys(dom, dma)).toBe(phys);
              live.push({ dma, size, lo, hi });
              stats.maps++;
              mapped += hi - lo + 1n;
            } else if (op.kind === "unmap") {
              if (live.length === 0) continue;
              const [l] = live.splice(op.pick % live.length, 1);
              expect(dmaUnmap(b.iommu, dev, l!.dma, l!.size, "bidirectional", { cpu: op.cpu })).toBe(
                l!.hi - l!.lo + 1n,
              );
              mapped -= l!.hi - l!.lo + 1n;
            } else {
              flushQueueTimeout(dom);
            }
            if (c.fq && c.fq.pending().length > 0) stats.queuedSeen++;
            // Exact accounting: tree = reserved + live + queued + cached.
            const queued = c.fq?.pending().length ?? 0;
            expect(c.iovad!.count).toBe(reservedNodes + live.length + queued + c.iovad!.cachedCount);
            let inTable = 0n;
            for (const p of pgtable.entries()) inTable += p.size;
            expect(inTable).toBe(mapped);
          }
          for (const l of live.splice(0)) dmaUnmap(b.iommu, dev, l.dma, l.size, "bidirectional");
          flushQueueTimeout(dom);
          expect(c.fq?.pending() ?? []).toEqual([]);
          expect(c.iovad!.count).toBe(reservedNodes + c.iovad!.cachedCount);
          expect(pgtable.entries()).toEqual([]);
          expect(c.warnings).toEqual([]);
        },
      ),
      { seed: 42, numRuns: 16 },
    );
    // The workload really exercised mapping and the flush queue.
    expect(stats.maps).toBeGreaterThan(stats.runs * 10);
    expect(stats.queuedSeen).toBeGreaterThan(100);
  });
});
