import { msiMsgAddress } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MsiPage } from "./cookie.js";
import { composeMsiMsg } from "./msi-msg.js";

describe("composeMsiMsg (iommu_dma_compose_msi_msg)", () => {
  it("replaces the doorbell page with its IOVA and keeps the in-page offset (arm64 conformance 0x8000040)", () => {
    const page: MsiPage = { iova: 0x800_0000n, phys: 0x809_0000n, granule: 0x1000n };
    expect(composeMsiMsg(page, { addressHi: 0, addressLo: 0x809_0040, data: 5 })).toEqual({
      addressHi: 0,
      addressLo: 0x800_0040,
      data: 5,
    });
  });

  it("writes the upper half of a 64-bit IOVA into address_hi", () => {
    const page: MsiPage = { iova: 0x12_3456_7000n, phys: 0x809_0000n, granule: 0x1000n };
    const msg = composeMsiMsg(page, { addressHi: 0, addressLo: 0x809_0040, data: 1 });
    expect(msg.addressHi).toBe(0x12);
    expect(msg.addressLo).toBe(0x3456_7040);
    expect(msiMsgAddress(msg)).toBe(0x12_3456_7040n);
  });

  it("identity pages (hardware MSI region on a DMA cookie) leave the address unchanged", () => {
    const page: MsiPage = { iova: 0xfee0_0000n, phys: 0xfee0_0000n, granule: 0x1000n };
    const msg = { addressHi: 0, addressLo: 0xfee0_0218, data: 0 };
    expect(composeMsiMsg(page, msg)).toEqual(msg);
  });

  it("property: result = page IOVA + (original address mod granule), data untouched", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: (1n << 48n) - 1n }),
        fc.integer({ min: 11, max: 16 }),
        fc.nat({ max: 0xffff_ffff }),
        fc.nat({ max: 0xffff_ffff }),
        fc.nat({ max: 0xffff_ffff }),
        (pfn, shift, hi, lo, data) => {
          const granule = 1n << BigInt(shift);
          const page: MsiPage = { iova: pfn * granule, phys: 0n, granule };
          const out = composeMsiMsg(page, { addressHi: hi, addressLo: lo, data });
          expect(msiMsgAddress(out)).toBe(page.iova + (BigInt(lo) & (granule - 1n)));
          expect(out.data).toBe(data);
        },
      ),
      { seed: 3, numRuns: 200 },
    );
  });
});
