/**
 * Cost of the DMA API over the raw IOMMU API it is built on: dmaMap + dmaUnmap of a 4 KiB buffer
 * (IOVA from the range caches, map, unmap, IOVA back — strict, or through the flush queue) against
 * iommu.map + iommu.unmap of the same two 2 KiB pages at a fixed IOVA. vitest prints the ratio
 * within each describe ("x times faster than"); the flush-queue bench fires the timer every 200 unmaps.
 */

import { IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import { bench, describe } from "vitest";
import { getMsiCookie } from "./cookie.js";
import { dmaMap, dmaUnmap, flushQueueTimeout } from "./dma-api.js";
import { setupDmaOps } from "./init-domain.js";
import { prepareMsi } from "./msi-doorbell.js";
import { composeMsiMsg } from "./msi-msg.js";
import { ARM_MSI_IOVA_BASE, GITS_TRANSLATER, groupOf, RAM_BASE, testBoard, vfioDomain } from "./testing/board.js";

const SIZE = 0x1000n;

function board(type: "DMA" | "DMA-FQ") {
  const b = testBoard({ defaultDomainType: type });
  setupDmaOps(b.iommu, b.devices[0]!);
  return { b, dev: b.devices[0]!, dom: groupOf(b, 0).defaultDomain! };
}

const strict = board("DMA");
const lazy = board("DMA-FQ");
const raw = board("DMA");
let unmaps = 0;

describe("streaming DMA map + unmap, 4 KiB", () => {
  bench("dmaMap/dmaUnmap (strict DMA domain)", () => {
    const a = dmaMap(strict.b.iommu, strict.dev, RAM_BASE, SIZE, "bidirectional");
    dmaUnmap(strict.b.iommu, strict.dev, a, SIZE, "bidirectional");
  });
  bench("dmaMap/dmaUnmap (DMA-FQ domain, timer every 200 unmaps)", () => {
    const a = dmaMap(lazy.b.iommu, lazy.dev, RAM_BASE, SIZE, "bidirectional");
    dmaUnmap(lazy.b.iommu, lazy.dev, a, SIZE, "bidirectional");
    if (++unmaps % 200 === 0) flushQueueTimeout(lazy.dom);
  });
  bench("reference: iommu.map/unmap at a fixed IOVA", () => {
    raw.b.iommu.map(raw.dom, 0x100_0000n, RAM_BASE, SIZE, IOMMU_READ | IOMMU_WRITE);
    raw.b.iommu.unmap(raw.dom, 0x100_0000n, SIZE);
  });
});

const msi = testBoard({ devices: 1 });
const msiDom = vfioDomain(msi, [groupOf(msi, 0)]);
getMsiCookie(msiDom, ARM_MSI_IOVA_BASE);
const msg = { addressHi: 0, addressLo: Number(GITS_TRANSLATER), data: 0 };

describe("MSI vector setup on a mapped doorbell", () => {
  bench("prepareMsi (page already mapped) + composeMsiMsg", () => {
    composeMsiMsg(prepareMsi(msi.iommu, msi.devices[0]!, GITS_TRANSLATER), msg);
  });
  bench("reference: iommu.iovaToPhys of the doorbell IOVA", () => {
    msi.iommu.iovaToPhys(msiDom, ARM_MSI_IOVA_BASE);
  });
});
