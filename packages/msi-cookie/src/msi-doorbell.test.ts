import { IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE, isErrno, msiMsgAddress } from "@iommu/core";
import type { MockDomain } from "@iommu/core/testing";
import { MOCK_MSI_IOVA_BASE } from "@iommu/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { getMsiCookie, type MsiCookie } from "./cookie.js";
import { MSI_DOORBELL_PROT, msiPagesOf, prepareMsi } from "./msi-doorbell.js";
import { composeMsiMsg } from "./msi-msg.js";
import { ARM_MSI_IOVA_BASE, GITS_TRANSLATER, groupOf, msiPayload, testBoard, vfioDomain } from "./testing/board.js";

function mockDomainOf(board: ReturnType<typeof testBoard>, i = 0): MockDomain {
  const dev = board.devices[i];
  const d = dev ? board.mock.attachedDomain(dev) : undefined;
  if (!d) throw new Error("device not attached");
  return d;
}

function expectErrno(fn: () => unknown, errno: string, op: string): void {
  try {
    fn();
  } catch (e) {
    expect(isErrno(e)).toBe(true);
    expect(e).toMatchObject({ code: errno, op });
    return;
  }
  throw new Error(`expected ${errno} from ${op}`);
}

describe("prepareMsi + composeMsiMsg on an MSI cookie (ARM software MSI, reference §3.3 / §6.9)", () => {
  it("maps the ITS doorbell page at the window base and rewrites the address as on the arm64 board (0x8000040)", () => {
    const b = testBoard();
    const dom = vfioDomain(b, [groupOf(b, 0)]);
    getMsiCookie(dom, ARM_MSI_IOVA_BASE);
    const dev = b.devices[0]!;
    const page = prepareMsi(b.iommu, dev, GITS_TRANSLATER);
    expect(page).toEqual({ iova: 0x800_0000n, phys: 0x809_0000n, granule: 0x1000n });
    const msg = composeMsiMsg(page, { addressHi: 0, addressLo: Number(GITS_TRANSLATER), data: 0 });
    expect(msg).toEqual({ addressHi: 0, addressLo: 0x800_0040, data: 0 });
    // One 4 KiB page = two of the mock's 2 KiB pages, write + noexec + MMIO.
    expect(b.iommu.iovaToPhys(dom, 0x800_0040n)).toBe(0x809_0040n);
    const ptes = mockDomainOf(b).pgtable.entries();
    expect(ptes.map((p) => [p.iova, p.phys, p.prot])).toEqual([
      [0x800_0000n, 0x809_0000n, IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO],
      [0x800_0800n, 0x809_0800n, IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO],
    ]);
    expect(MSI_DOORBELL_PROT).toBe(IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO);
  });

  it("a device's MSI write lands on the ITS doorbell through the cookie's mapping; without it the write faults", () => {
    const b = testBoard();
    const dom = vfioDomain(b, [groupOf(b, 0)]);
    getMsiCookie(dom, ARM_MSI_IOVA_BASE);
    const dev = b.devices[0]!;
    const addr = 0x800_0040n;

    const before = dev.dmaWrite(addr, msiPayload(7));
    expect(before.ok).toBe(false);
    expect(b.msis).toEqual([]);
    expect(b.mock.faults.map((f) => [f.iova, f.access, f.reason])).toEqual([[addr, "write", "translation"]]);

    const page = prepareMsi(b.iommu, dev, GITS_TRANSLATER);
    const msg = composeMsiMsg(page, { addressHi: 0, addressLo: Number(GITS_TRANSLATER), data: 7 });
    const r = dev.dmaWrite(msiMsgAddress(msg), msiPayload(msg.data));
    expect(r.ok).toBe(true);
    expect(b.msis).toEqual([{ its: 0, requesterId: dev.requesterId, data: 7n }]);
    // The doorbell is write-only: a device cannot read the ITS through it.
    expect(dev.dmaRead(addr, 4).ok).toBe(false);
    expect(b.mock.faults.at(-1)?.reason).toBe("permission");
  });

  it("many devices and vectors sharing one ITS doorbell use one IOVA page; a second ITS gets the next page", () => {
    const b = testBoard({ devices: 4, itsCount: 2 });
    const dom = vfioDomain(
      b,
      b.devices.map((_, i) => groupOf(b, i)),
    );
    getMsiCookie(dom, ARM_MSI_IOVA_BASE);
    const pages = [];
    for (const dev of b.devices) for (let v = 0; v < 8; v++) pages.push(prepareMsi(b.iommu, dev, b.translater(0)));
    expect(new Set(pages).size).toBe(1);
    expect(pages[0]).toMatchObject({ iova: 0x800_0000n });
    const second = prepareMsi(b.iommu, b.devices[2]!, b.translater(1));
    expect(second).toEqual({ iova: 0x800_1000n, phys: b.translater(1) & ~0xfffn, granule: 0x1000n });
    expect(msiPagesOf(dom)).toHaveLength(2);
    expect((dom.iovaCookie as MsiCookie).msiIova).toBe(0x800_2000n);
    // Every device reaches its ITS through the shared pages.
    for (const [i, dev] of b.devices.entries()) {
      const its = i % 2;
      const page = prepareMsi(b.iommu, dev, b.translater(its));
      const msg = composeMsiMsg(page, { addressHi: 0, addressLo: Number(b.translater(its)), data: i });
      expect(dev.dmaWrite(msiMsgAddress(msg), msiPayload(i)).ok).toBe(true);
    }
    expect(b.msis.map((m) => [m.its, m.data])).toEqual([
      [0, 0n],
      [1, 1n],
      [0, 2n],
      [1, 3n],
    ]);
  });

  it("each domain has its own doorbell pages: two VFIO domains both start at the window base", () => {
    const b = testBoard({ devices: 2 });
    const d0 = vfioDomain(b, [groupOf(b, 0)]);
    const d1 = vfioDomain(b, [groupOf(b, 1)]);
    getMsiCookie(d0, ARM_MSI_IOVA_BASE);
    getMsiCookie(d1, ARM_MSI_IOVA_BASE);
    expect(prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER)?.iova).toBe(0x800_0000n);
    expect(prepareMsi(b.iommu, b.devices[1]!, GITS_TRANSLATER)?.iova).toBe(0x800_0000n);
  });

  it("no cookie on the device's current domain: null, and compose leaves the message untouched (x86 hardware MSI)", () => {
    const b = testBoard();
    const dom = vfioDomain(b, [groupOf(b, 0)]);
    expect(prepareMsi(b.iommu, b.devices[0]!, 0xfee0_0000n)).toBeNull();
    const msg = { addressHi: 0, addressLo: 0xfee0_0218, data: 0x21 };
    expect(composeMsiMsg(null, msg)).toBe(msg);
    expect(mockDomainOf(b).pgtable.entries()).toEqual([]);
    expect(dom.iovaCookie).toBeNull();
  });

  it("uses the device's current domain: after detach back to the default domain (no cookie) nothing is mapped", () => {
    const b = testBoard();
    const g = groupOf(b, 0);
    const dom = vfioDomain(b, [g]);
    getMsiCookie(dom, ARM_MSI_IOVA_BASE);
    b.iommu.detachGroup(dom, g);
    b.iommu.releaseDmaOwner(g);
    expect(prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER)).toBeNull();
    expect(msiPagesOf(dom)).toEqual([]);
  });

  it("ENOMEM when the doorbell cannot be mapped, leaving nothing allocated; a retry gets the same IOVA", () => {
    const b = testBoard();
    const dom = vfioDomain(b, [groupOf(b, 0)]);
    getMsiCookie(dom, ARM_MSI_IOVA_BASE);
    const cookie = dom.iovaCookie as MsiCookie;
    b.mock.failMapsAfter(1); // the second 2 KiB page fails: the core unwinds the first
    expectErrno(() => prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER), "ENOMEM", "iommu_dma_prepare_msi");
    expect(cookie.msiIova).toBe(ARM_MSI_IOVA_BASE);
    expect(cookie.msiPages).toEqual([]);
    expect(mockDomainOf(b).pgtable.entries()).toEqual([]);
    b.mock.failMapsAfter(null);
    expect(prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER)?.iova).toBe(ARM_MSI_IOVA_BASE);
  });

  it("ENOMEM when userspace already mapped the window page (EEXIST underneath); the bump pointer is restored", () => {
    const b = testBoard();
    const dom = vfioDomain(b, [groupOf(b, 0)]);
    getMsiCookie(dom, ARM_MSI_IOVA_BASE);
    b.iommu.map(dom, ARM_MSI_IOVA_BASE, 0x4000_0000n, 0x1000n, IOMMU_READ | IOMMU_WRITE);
    let err: unknown;
    try {
      prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "ENOMEM", op: "iommu_dma_prepare_msi" });
    expect((err as Error).cause).toMatchObject({ code: "EEXIST" });
    expect((dom.iovaCookie as MsiCookie).msiIova).toBe(ARM_MSI_IOVA_BASE);
    expect(b.iommu.iovaToPhys(dom, ARM_MSI_IOVA_BASE)).toBe(0x4000_0000n);
  });

  it("Linux does not bound the bump pointer: the 257th doorbell page is mapped past the 1 MiB window", () => {
    const b = testBoard();
    const dom = vfioDomain(b, [groupOf(b, 0)]);
    getMsiCookie(dom, ARM_MSI_IOVA_BASE);
    for (let i = 0; i < 257; i++) prepareMsi(b.iommu, b.devices[0]!, 0x1_0000_0000n + BigInt(i) * 0x1000n);
    const last = msiPagesOf(dom).at(-1);
    expect(last?.iova).toBe(0x810_0000n);
  });

  it("strict mode refuses with ENOSPC once the window is exhausted, changing nothing", () => {
    const b = testBoard();
    const dom = vfioDomain(b, [groupOf(b, 0)]);
    getMsiCookie(dom, ARM_MSI_IOVA_BASE, { windowLength: 0x10_0000n });
    for (let i = 0; i < 256; i++) prepareMsi(b.iommu, b.devices[0]!, 0x1_0000_0000n + BigInt(i) * 0x1000n);
    const entries = mockDomainOf(b).pgtable.entries().length;
    expectErrno(() => prepareMsi(b.iommu, b.devices[0]!, 0x2_0000_0000n), "ENOSPC", "iommu_dma_prepare_msi");
    expect((dom.iovaCookie as MsiCookie).msiIova).toBe(0x810_0000n);
    expect(msiPagesOf(dom)).toHaveLength(256);
    expect(mockDomainOf(b).pgtable.entries()).toHaveLength(entries);
    // An already-mapped doorbell is still found.
    expect(prepareMsi(b.iommu, b.devices[0]!, 0x1_0000_0040n)?.iova).toBe(ARM_MSI_IOVA_BASE);
  });

  it("regression (Linux quirk): a cookie based at IOVA 0 fails its first doorbell with ENOMEM and moves on", () => {
    const b = testBoard();
    const dom = vfioDomain(b, [groupOf(b, 0)]);
    getMsiCookie(dom, 0n);
    expectErrno(() => prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER), "ENOMEM", "iommu_dma_prepare_msi");
    // iommu_dma_get_msi_page treats IOVA 0 as failure without undoing the bump.
    expect((dom.iovaCookie as MsiCookie).msiIova).toBe(0x1000n);
    expect(prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER)?.iova).toBe(0x1000n);
  });

  it("works with the mock's own sw-msi window (0x80000000, outside its aperture, as the selftest)", () => {
    const b = testBoard();
    const dom = vfioDomain(b, [groupOf(b, 0)]);
    getMsiCookie(dom, MOCK_MSI_IOVA_BASE);
    const page = prepareMsi(b.iommu, b.devices[0]!, GITS_TRANSLATER);
    const msg = composeMsiMsg(page, { addressHi: 0, addressLo: Number(GITS_TRANSLATER), data: 3 });
    expect(msiMsgAddress(msg)).toBe(0x8000_0040n);
    expect(b.devices[0]!.dmaWrite(msiMsgAddress(msg), msiPayload(3)).ok).toBe(true);
    expect(b.msis).toHaveLength(1);
  });

  it("property: doorbell pages get consecutive window pages in first-use order, reused for every later vector", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(3), fc.nat(15), fc.nat(0xfff)), { minLength: 1, maxLength: 40 }),
        (calls) => {
          const b = testBoard({ devices: 4 });
          const dom = vfioDomain(
            b,
            b.devices.map((_, i) => groupOf(b, i)),
          );
          getMsiCookie(dom, ARM_MSI_IOVA_BASE);
          const firstUse: bigint[] = [];
          for (const [d, page, off] of calls) {
            const doorbell = 0x1000_0000n + BigInt(page) * 0x1000n + BigInt(off & ~3);
            const p = prepareMsi(b.iommu, b.devices[d]!, doorbell);
            const pagePhys = doorbell & ~0xfffn;
            if (!firstUse.includes(pagePhys)) firstUse.push(pagePhys);
            expect(p?.iova).toBe(ARM_MSI_IOVA_BASE + BigInt(firstUse.indexOf(pagePhys)) * 0x1000n);
            const msg = composeMsiMsg(p, { addressHi: 0, addressLo: Number(doorbell), data: d });
            expect(b.iommu.iovaToPhys(dom, msiMsgAddress(msg))).toBe(doorbell);
          }
          expect(msiPagesOf(dom).map((p) => p.phys)).toEqual(firstUse);
        },
      ),
      { seed: 7, numRuns: 60 },
    );
  });

  it("property: with random map failures, a failed prepare leaves no trace and successes stay consecutive", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(20), fc.option(fc.nat(3), { nil: null })), { minLength: 1, maxLength: 30 }),
        (calls) => {
          const b = testBoard();
          const dom = vfioDomain(b, [groupOf(b, 0)]);
          getMsiCookie(dom, ARM_MSI_IOVA_BASE);
          const cookie = dom.iovaCookie as MsiCookie;
          const pgtable = mockDomainOf(b).pgtable;
          for (const [page, budget] of calls) {
            const doorbell = 0x2000_0000n + BigInt(page) * 0x1000n;
            const known = cookie.msiPages.find((p) => p.phys === doorbell);
            b.mock.failMapsAfter(budget);
            const before = { next: cookie.msiIova, pages: cookie.msiPages.length, ptes: pgtable.entries().length };
            let failed = false;
            try {
              expect(prepareMsi(b.iommu, b.devices[0]!, doorbell)?.phys).toBe(doorbell);
            } catch (e) {
              failed = true;
              expect(e).toMatchObject({ code: "ENOMEM", op: "iommu_dma_prepare_msi" });
            }
            // Only a new page that needs both 2 KiB pages mapped can fail.
            expect(failed).toBe(!known && budget !== null && budget < 2);
            if (failed || known) {
              expect({ next: cookie.msiIova, pages: cookie.msiPages.length, ptes: pgtable.entries().length }).toEqual(
                before,
              );
            }
          }
          b.mock.failMapsAfter(null);
          cookie.msiPages.forEach((p, i) => {
            expect(p.iova).toBe(ARM_MSI_IOVA_BASE + BigInt(i) * 0x1000n);
          });
          expect(cookie.msiIova).toBe(ARM_MSI_IOVA_BASE + BigInt(cookie.msiPages.length) * 0x1000n);
          expect(pgtable.entries()).toHaveLength(2 * cookie.msiPages.length);
        },
      ),
      { seed: 19, numRuns: 80 },
    );
  });
});
