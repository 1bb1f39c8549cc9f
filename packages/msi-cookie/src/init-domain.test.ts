import { IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_WRITE, Iommu, PciDevice, PhysicalMemory, PlatformDevice } from "@iommu/core";
import { MOCK_APERTURE_START, MOCK_MSI_IOVA_BASE } from "@iommu/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cookieOf, DmaCookie, getDmaCookie, getMsiCookie } from "./cookie.js";
import { deviceDma } from "./device-dma.js";
import { iommuDmaInitDomain, setupDmaOps } from "./init-domain.js";
import { msiPagesOf, prepareMsi } from "./msi-doorbell.js";
import { composeMsiMsg } from "./msi-msg.js";
import { GITS_TRANSLATER, groupOf, testBoard, vfioDomain } from "./testing/board.js";
import { createFlatIommu } from "./testing/flat-iommu.js";

function dmaCookie(b: ReturnType<typeof testBoard>, i = 0): DmaCookie {
  const c = cookieOf(groupOf(b, i).defaultDomain!);
  if (!(c instanceof DmaCookie)) throw new Error("no DMA cookie");
  return c;
}

describe("iommuDmaInitDomain / setupDmaOps (iommu_dma_init_domain, iova_reserve_iommu_regions)", () => {
  it("granule = the domain's smallest page, start pfn = aperture start (never pfn 0); sw-msi is not reserved", () => {
    const b = testBoard();
    expect(setupDmaOps(b.iommu, b.devices[0]!)).toBe(true);
    const c = dmaCookie(b);
    expect(c.iovad?.granule).toBe(2048);
    expect(c.iovad?.startPfn).toBe(Number(MOCK_APERTURE_START >> 11n));
    expect(c.iovad?.find(Number(MOCK_MSI_IOVA_BASE >> 11n))).toBeNull();
    expect([...(c.iovad ?? [])]).toEqual([]);
    expect(c.fq).toBeNull();
    expect(deviceDma(b.devices[0]!).iommuDmaOps).toBe(true);
  });

  it("base 0 below the mock's forced aperture (16 MiB) starts the allocator at the aperture, pfn 0x2000", () => {
    const memory = new PhysicalMemory();
    const iommu = new Iommu();
    const dev = new PlatformDevice(memory, "plat", 1);
    const b = testBoard({ devices: 0 });
    iommu.probeDevice(dev, b.mock.ops);
    const dom = iommu.groupOf(dev)!.domain!;
    getDmaCookie(dom);
    iommuDmaInitDomain(iommu, dom, dev, { base: 0n });
    expect((dom.iovaCookie as DmaCookie).iovad?.startPfn).toBe(0x2000);
  });

  it("rcacheDepot reaches the IOVA domain it creates (default array, as Linux up to 6.6; list from 6.7)", () => {
    for (const depot of [undefined, "array", "list"] as const) {
      const b = testBoard();
      setupDmaOps(b.iommu, b.devices[0]!, depot ? { rcacheDepot: depot } : {});
      expect(dmaCookie(b).iovad?.rcacheDepot).toBe(depot ?? "array");
    }
  });

  it("an aperture starting at IOVA 0 and base 0 still start the allocator at pfn 1 (max(1, base >> order))", () => {
    const memory = new PhysicalMemory();
    const iommu = new Iommu();
    const dev = new PlatformDevice(memory, "plat", 1);
    const flat = createFlatIommu({ apertureEnd: 0xffff_ffffn });
    iommu.probeDevice(dev, flat.ops);
    const dom = iommu.groupOf(dev)!.domain!;
    expect(dom.geometry.apertureStart).toBe(0n);
    getDmaCookie(dom);
    iommuDmaInitDomain(iommu, dom, dev, { base: 0n });
    expect((dom.iovaCookie as DmaCookie).iovad?.startPfn).toBe(1);
  });

  it("reserves reserved/direct/msi regions, pre-populates identity pages for hardware msi, skips sw-msi", () => {
    const b = testBoard({ devices: 0 });
    b.mock.addReserved(0x0200_0000n, 0x1000n, "reserved");
    b.mock.addReserved(0x0300_0000n, 0x800n, "direct-relaxable", undefined, 3);
    b.mock.addReserved(0x7ee0_0000n, 0x10_0000n, "msi", undefined, IOMMU_WRITE | IOMMU_MMIO);
    const dev = new PciDevice(b.memory, { bus: 0, slot: 1, classCode: 0 });
    b.iommu.probeDevice(dev, b.mock.ops);
    setupDmaOps(b.iommu, dev);
    const c = cookieOf(b.iommu.groupOf(dev)!.defaultDomain!) as DmaCookie;
    expect([...(c.iovad ?? [])]).toEqual([
      { pfnLo: 0x4000, pfnHi: 0x4001 },
      { pfnLo: 0x6000, pfnHi: 0x6000 },
      { pfnLo: 0xfdc00, pfnHi: 0xfddff },
    ]);
    expect(c.msiPages).toHaveLength(512);
    expect(c.msiPages.every((p) => p.iova === p.phys && p.granule === 0x800n)).toBe(true);
    // A device MSI aimed at the hardware window needs no mapping: the message stays as it is.
    const page = prepareMsi(b.iommu, dev, 0x7ee0_0218n);
    expect(page).toEqual({ iova: 0x7ee0_0000n, phys: 0x7ee0_0000n, granule: 0x800n });
    const msg = { addressHi: 0, addressLo: 0x7ee0_0218, data: 1 };
    expect(composeMsiMsg(page, msg)).toEqual(msg);
  });

  it("an ITS doorbell on a DMA domain is allocated from the IOVA allocator (granule-sized, top-down)", () => {
    const b = testBoard();
    setupDmaOps(b.iommu, b.devices[0]!);
    const page = prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER);
    // 32-bit DMA mask, clipped to the aperture end 2 GiB - 1: the top granule.
    expect(page).toEqual({ iova: 0x7fff_f800n, phys: 0x0809_0000n, granule: 0x800n });
    const msg = composeMsiMsg(page, { addressHi: 0, addressLo: Number(GITS_TRANSLATER), data: 0 });
    expect(msg.addressLo).toBe(0x7fff_f840);
    const dom = groupOf(b, 0).defaultDomain!;
    expect(b.iommu.iovaToPhys(dom, 0x7fff_f840n)).toBe(0x0809_0040n);
    expect(prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER + 4n)).toBe(page);
    expect(msiPagesOf(dom)).toEqual([page]);
    // A failed doorbell map hands the IOVA straight back (no flush queue involved).
    b.mock.failMapsAfter(0);
    expect(() => prepareMsi(b.iommu, b.devices[0]!, 0x0a00_0000n)).toThrowError(
      expect.objectContaining({ code: "ENOMEM" }),
    );
    const c = dmaCookie(b);
    expect((c.iovad?.count ?? 0) - (c.iovad?.cachedCount ?? 0)).toBe(1);
    expect(b.mock.attachedDomain(b.devices[0]!)?.pgtable.entries()).toHaveLength(1);
    expect(IOMMU_NOEXEC).toBe(8);
  });

  it("EFAULT when the DMA range misses the aperture, and the cookie stays uninitialised", () => {
    const b = testBoard();
    const dom = groupOf(b, 0).defaultDomain!;
    getDmaCookie(dom);
    const dev = b.devices[0]!;
    expect(() => iommuDmaInitDomain(b.iommu, dom, dev, { base: 0x8000_0000n })).toThrowError(
      expect.objectContaining({ code: "EFAULT", op: "iommu_dma_init_domain" }),
    );
    expect(() => iommuDmaInitDomain(b.iommu, dom, dev, { base: 0n, limit: 0xff_ffffn })).toThrowError(
      expect.objectContaining({ code: "EFAULT" }),
    );
    expect((dom.iovaCookie as DmaCookie).iovad).toBeNull();
  });

  it("a second device of the group re-uses the allocator and does not add its own regions (6.1); EFAULT if incompatible", () => {
    const b = testBoard({ devices: 0, mock: { deviceGroup: () => "one" } });
    const d0 = new PciDevice(b.memory, { bus: 0, slot: 1, classCode: 0 });
    const d1 = new PciDevice(b.memory, { bus: 0, slot: 2, classCode: 0 });
    b.mock.addReserved(0x0400_0000n, 0x800n, "reserved", d1);
    b.iommu.probeDevice(d0, b.mock.ops);
    b.iommu.probeDevice(d1, b.mock.ops);
    setupDmaOps(b.iommu, d0);
    const c = cookieOf(b.iommu.groupOf(d0)!.defaultDomain!) as DmaCookie;
    const iovad = c.iovad;
    expect(setupDmaOps(b.iommu, d1)).toBe(true);
    expect(c.iovad).toBe(iovad);
    expect(c.iovad?.find(0x8000)).toBeNull();
    expect(() => iommuDmaInitDomain(b.iommu, b.iommu.groupOf(d1)!.domain!, d1, { base: 0x0200_0000n })).toThrowError(
      expect.objectContaining({ code: "EFAULT", detail: expect.objectContaining({ startPfn: 0x4000 }) }),
    );
  });

  it("reserves the host bridge's MEM windows for PCI devices only; unsorted dma-ranges: EINVAL, nothing set up", () => {
    const hostBridge = {
      windows: [{ kind: "mem" as const, start: 0x1000_0000n, end: 0x3efe_ffffn }],
      dmaRanges: [],
    };
    const b = testBoard();
    setupDmaOps(b.iommu, b.devices[0]!, { hostBridge });
    expect([...(dmaCookie(b).iovad ?? [])]).toEqual([{ pfnLo: 0x2_0000, pfnHi: 0x7_dfdf }]);

    const bad = testBoard();
    const unsorted = {
      windows: [],
      dmaRanges: [
        { start: 0x4000_0000n, end: 0x4fff_ffffn },
        { start: 0x1000_0000n, end: 0x1fff_ffffn },
      ],
    };
    expect(() => setupDmaOps(bad.iommu, bad.devices[0]!, { hostBridge: unsorted })).toThrowError(
      expect.objectContaining({ code: "EINVAL", op: "iova_reserve_pci_windows" }),
    );
    expect(groupOf(bad, 0).defaultDomain!.iovaCookie).toBeNull();
    expect(deviceDma(bad.devices[0]!).iommuDmaOps).toBe(false);
  });

  it("DMA-FQ domains get a flush queue; without flush_iotlb_all they fall back to strict", () => {
    const b = testBoard({ defaultDomainType: "DMA-FQ" });
    setupDmaOps(b.iommu, b.devices[0]!, { cpus: 2 });
    expect(dmaCookie(b).fq?.cpus).toBe(2);
    const dom = groupOf(b, 0).defaultDomain!;
    expect(dom.type).toBe("DMA-FQ");
    delete (dom.driver as { flushIotlbAll?: unknown }).flushIotlbAll;
    const b2 = testBoard({ defaultDomainType: "DMA-FQ" });
    delete (groupOf(b2, 0).defaultDomain!.driver as { flushIotlbAll?: unknown }).flushIotlbAll;
    setupDmaOps(b2.iommu, b2.devices[0]!);
    expect(dmaCookie(b2).fq).toBeNull();
  });

  it("identity and VFIO (unmanaged) domains keep direct DMA; EINVAL for a domain with an MSI cookie", () => {
    const b = testBoard({ defaultDomainType: "identity" });
    expect(setupDmaOps(b.iommu, b.devices[0]!)).toBe(false);
    const v = testBoard();
    const dom = vfioDomain(v, [groupOf(v, 0)]);
    expect(setupDmaOps(v.iommu, v.devices[0]!)).toBe(false);
    getMsiCookie(dom, 0x800_0000n);
    expect(() => iommuDmaInitDomain(v.iommu, dom, v.devices[0]!)).toThrowError(
      expect.objectContaining({ code: "EINVAL", op: "iommu_dma_init_domain" }),
    );
  });

  it("property: every region except sw-msi ends up reserved, whole granules covering it; nothing else is", () => {
    const types = ["direct", "direct-relaxable", "reserved", "msi", "sw-msi"] as const;
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.integer({ min: 0x100_0000, max: 0x7ff0_0000 }), fc.integer({ min: 1, max: 0x2_0000 }), fc.nat(4)),
          { maxLength: 6 },
        ),
        (regions) => {
          const b = testBoard({ devices: 0, mock: { swMsi: false } });
          for (const [s, l, t] of regions) b.mock.addReserved(BigInt(s), BigInt(l), types[t]!);
          const dev = new PciDevice(b.memory, { bus: 0, slot: 1, classCode: 0 });
          b.iommu.probeDevice(dev, b.mock.ops);
          setupDmaOps(b.iommu, dev);
          const c = cookieOf(b.iommu.groupOf(dev)!.defaultDomain!) as DmaCookie;
          const want = new Set<number>();
          let hwPages = 0;
          for (const [s, l, t] of regions) {
            if (types[t] === "sw-msi") continue;
            for (let p = Math.floor(s / 2048); p <= Math.floor((s + l - 1) / 2048); p++) want.add(p);
            if (types[t] === "msi") hwPages += Math.floor((s + l - 1) / 2048) - Math.floor(s / 2048) + 1;
          }
          const got = new Set<number>();
          for (const r of c.iovad ?? []) for (let p = r.pfnLo; p <= r.pfnHi; p++) got.add(p);
          expect([...got].sort((x, y) => x - y)).toEqual([...want].sort((x, y) => x - y));
          expect(c.msiPages).toHaveLength(hwPages);
        },
      ),
      { seed: 5, numRuns: 60 },
    );
  });
});
