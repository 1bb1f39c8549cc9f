import type { DomainType } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { cookieOf, DmaCookie, getDmaCookie, getMsiCookie, MsiCookie, putDmaCookie } from "./cookie.js";
import { ARM_MSI_IOVA_BASE, testBoard } from "./testing/board.js";

function domainOf(type: DomainType) {
  const b = testBoard({ devices: 0 });
  return b.iommu.domainAlloc(b.mock.ops, type);
}

describe("getMsiCookie (iommu_get_msi_cookie)", () => {
  it("gives an unmanaged domain a bump pointer starting at base", () => {
    const d = domainOf("unmanaged");
    getMsiCookie(d, ARM_MSI_IOVA_BASE);
    const c = cookieOf(d);
    expect(c).toBeInstanceOf(MsiCookie);
    expect(c).toMatchObject({ kind: "msi", msiIova: ARM_MSI_IOVA_BASE, base: ARM_MSI_IOVA_BASE, msiPages: [] });
    expect((c as MsiCookie).granule).toBe(0x1000n);
  });

  it.each(["DMA", "DMA-FQ", "identity", "blocked"] as const)("EINVAL for a %s domain, leaving no cookie", (t) => {
    const d = domainOf(t);
    expect(() => getMsiCookie(d, ARM_MSI_IOVA_BASE)).toThrowError(
      expect.objectContaining({ code: "EINVAL", op: "iommu_get_msi_cookie", detail: { type: t } }),
    );
    expect(d.iovaCookie).toBeNull();
  });

  it("EEXIST when the domain already has a cookie (the first one stays)", () => {
    const d = domainOf("unmanaged");
    getMsiCookie(d, ARM_MSI_IOVA_BASE);
    const first = d.iovaCookie;
    expect(() => getMsiCookie(d, 0x1000_0000n)).toThrowError(
      expect.objectContaining({ code: "EEXIST", op: "iommu_get_msi_cookie" }),
    );
    expect(d.iovaCookie).toBe(first);
  });

  it("strict mode needs a positive window length", () => {
    const d = domainOf("unmanaged");
    expect(() => getMsiCookie(d, ARM_MSI_IOVA_BASE, { windowLength: 0n })).toThrowError(
      expect.objectContaining({ code: "EINVAL" }),
    );
    expect(d.iovaCookie).toBeNull();
    getMsiCookie(d, ARM_MSI_IOVA_BASE, { windowLength: 0x10_0000n });
    expect((d.iovaCookie as MsiCookie).windowLength).toBe(0x10_0000n);
  });
});

describe("getDmaCookie / putDmaCookie", () => {
  it("an empty IOVA cookie (no allocator until init), EEXIST on a second call", () => {
    const d = domainOf("DMA");
    getDmaCookie(d);
    const c = cookieOf(d);
    expect(c).toBeInstanceOf(DmaCookie);
    expect((c as DmaCookie).iovad).toBeNull();
    expect((c as DmaCookie).granule).toBe(0n);
    expect(() => getDmaCookie(d)).toThrowError(expect.objectContaining({ code: "EEXIST", op: "iommu_get_dma_cookie" }));
  });

  it("put drops either cookie and is a no-op without one", () => {
    const d = domainOf("unmanaged");
    putDmaCookie(d);
    getMsiCookie(d, ARM_MSI_IOVA_BASE);
    putDmaCookie(d);
    expect(d.iovaCookie).toBeNull();
    getMsiCookie(d, ARM_MSI_IOVA_BASE);
    expect(cookieOf(d)).toBeInstanceOf(MsiCookie);
  });

  it("cookieOf ignores cookie objects that are not ours", () => {
    const d = domainOf("unmanaged");
    d.iovaCookie = { kind: "msi" };
    expect(cookieOf(d)).toBeNull();
  });
});
