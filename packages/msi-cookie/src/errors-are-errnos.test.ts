import { ErrnoError } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { getMsiCookie } from "./cookie.js";
import { DMA_MAPPING_ERROR, dmaMap } from "./dma-api.js";
import { setupDmaOps } from "./init-domain.js";
import { prepareMsi } from "./msi-doorbell.js";
import { ARM_MSI_IOVA_BASE, GITS_TRANSLATER, groupOf, RAM_BASE, testBoard, vfioDomain } from "./testing/board.js";

/** Issue 13 rule 4: iommu_map's errno is the caller's answer; any other exception is a model bug and escapes. */
describe("errors are errnos: only an errno from iommu_map is turned into the kernel's answer", () => {
  it("dmaMap: an errno from iommu_map is DMA_MAPPING_ERROR, a non-errno exception propagates", () => {
    const b = testBoard();
    const dev = b.devices[0]!;
    setupDmaOps(b.iommu, dev);
    const map = b.iommu.map.bind(b.iommu);
    b.iommu.map = () => {
      throw new ErrnoError("ENOMEM", "iommu_map", "injected");
    };
    expect(dmaMap(b.iommu, dev, RAM_BASE, 0x10n, "to-device")).toBe(DMA_MAPPING_ERROR);
    b.iommu.map = () => {
      throw new TypeError("a bug");
    };
    expect(() => dmaMap(b.iommu, dev, RAM_BASE, 0x10n, "to-device")).toThrow(TypeError);
    b.iommu.map = map;
    expect(dmaMap(b.iommu, dev, RAM_BASE, 0x10n, "to-device")).not.toBe(DMA_MAPPING_ERROR);
  });

  it("prepareMsi: an errno from iommu_map is ENOMEM, a non-errno exception propagates", () => {
    const b = testBoard();
    const dev = b.devices[0]!;
    getMsiCookie(vfioDomain(b, [groupOf(b, 0)]), ARM_MSI_IOVA_BASE);
    const map = b.iommu.map.bind(b.iommu);
    b.iommu.map = () => {
      throw new ErrnoError("ERANGE", "iommu_map", "injected");
    };
    expect(() => prepareMsi(b.iommu, dev, GITS_TRANSLATER)).toThrow(expect.objectContaining({ code: "ENOMEM" }));
    b.iommu.map = () => {
      throw new TypeError("a bug");
    };
    expect(() => prepareMsi(b.iommu, dev, GITS_TRANSLATER)).toThrow(TypeError);
    b.iommu.map = map;
    expect(prepareMsi(b.iommu, dev, GITS_TRANSLATER)?.phys).toBe(0x809_0000n);
  });
});
