import { describe, expect, it } from "vitest";
import { iova, physAddr } from "./addr.js";
import { Iommu } from "./iommu.js";
import { IOMMU_READ } from "./prot.js";
import { createMockIommu, MOCK_APERTURE_START, MOCK_IO_PAGE_SIZE } from "./testing.js";

describe("branded Iova / PhysAddr at iommu_map, iommu_unmap, iommu_iova_to_phys", () => {
  it("constructors accept u64 values and refuse others with EINVAL", () => {
    expect(iova(0n)).toBe(0n);
    expect(physAddr((1n << 64n) - 1n)).toBe((1n << 64n) - 1n);
    expect(() => iova(-1n)).toThrow(expect.objectContaining({ code: "EINVAL", op: "iova" }));
    expect(() => physAddr(1n << 64n)).toThrow(expect.objectContaining({ code: "EINVAL", op: "phys_addr" }));
  });

  it("regression (swapped map arguments): the compiler refuses a PhysAddr where the Iova goes", () => {
    const iommu = new Iommu();
    const dom = iommu.domainAlloc(createMockIommu().ops, "unmanaged");
    const io = iova(MOCK_APERTURE_START);
    const pa = physAddr(MOCK_APERTURE_START + 16n * MOCK_IO_PAGE_SIZE);
    iommu.map(dom, io, pa, MOCK_IO_PAGE_SIZE, IOMMU_READ);
    const back = iommu.iovaToPhys(dom, io);
    expect(back).toBe(pa);
    // @ts-expect-error: iova_to_phys's answer is a PhysAddr, not an IOVA (tsc -b checks this line)
    expect(iommu.iovaToPhys(dom, back)).toBe(0n);
    // @ts-expect-error: the two addresses swapped (tsc -b checks this line); run anyway, it maps as told
    iommu.map(dom, pa, io, MOCK_IO_PAGE_SIZE, IOMMU_READ);
    expect(iommu.iovaToPhys(dom, iova(pa))).toBe(io);
    // Plain bigints are still accepted: callers brand values where they make them.
    expect(iommu.unmap(dom, MOCK_APERTURE_START, MOCK_IO_PAGE_SIZE)).toBe(MOCK_IO_PAGE_SIZE);
  });
});
