/**
 * Isolation on one host: two devices, each in its own unmanaged domain (two VMMs' containers), each
 * with its own guest RAM and MSI doorbell mapping. After random map/unmap churn, every DMA a device
 * aims at the other's guest RAM or at IOVAs it has not mapped faults and changes nothing.
 */
import { getMsiCookie } from "@dma-iommu/msi-cookie";
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import fc from "fast-check";
import { expect, it } from "vitest";
import { EDU_BUF_START, EDU_DMA_TO_RAM, EDU_REG, type EduDevice } from "../devices/edu.js";
import { createBoard } from "./index.js";
import type { Board, BoardName } from "./types.js";

const RW = IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE;
const PAGES = 16;

function own(board: Board, dev: EduDevice) {
  const g = board.iommu.groupOf(dev)!;
  const dom = board.iommu.domainAlloc(dev.iommu!.ops, "unmanaged");
  board.iommu.claimDmaOwner(g, dev);
  board.iommu.attachGroup(dom, g);
  const sw = board.iommu.getGroupResvRegions(g).find((r) => r.type === "sw-msi");
  if (sw) getMsiCookie(dom, sw.start);
  return dom;
}

function dmaTo(edu: EduDevice, iova: bigint, toRam: boolean) {
  const w = (o: number, v: bigint) => edu.bar0.write(BigInt(o), 8, v, {});
  w(EDU_REG.DMA_SRC, toRam ? EDU_BUF_START : iova);
  w(EDU_REG.DMA_DST, toRam ? iova : EDU_BUF_START);
  w(EDU_REG.DMA_COUNT, 64n);
  w(EDU_REG.DMA_CMD, BigInt(1 | (toRam ? EDU_DMA_TO_RAM : 0)));
  return edu.dmaLog.at(-1)!;
}

it.each<BoardName>(["arm64-virt-smmuv3", "x86-q35-vtd"])("%s: two owners never reach each other's memory", (name) => {
  const ops = fc.array(
    fc.record({ who: fc.integer({ min: 0, max: 1 }), page: fc.integer({ min: 0, max: PAGES - 1 }), map: fc.boolean() }),
    {
      maxLength: 40,
    },
  );
  fc.assert(
    fc.property(ops, (churn) => {
      const b = createBoard(name, { eduCount: 2 });
      const devs = b.edus as [EduDevice, EduDevice];
      for (const d of devs) d.enableBusMaster();
      const doms = devs.map((d) => own(b, d));
      // Guest RAM of owner k: PAGES pages at a distinct physical range; IOVA = 0x100000 + page * 4K.
      const ramBase = (k: number) => (name === "x86-q35-vtd" ? 0x100000000n : 0x50000000n) + BigInt(k) * 0x1000000n;
      const iova = (p: number) => 0x100000n + BigInt(p) * 0x1000n;
      const mapped = [new Set<number>(), new Set<number>()];
      for (const op of churn) {
        const set = mapped[op.who]!;
        if (op.map && !set.has(op.page)) {
          b.iommu.map(doms[op.who]!, iova(op.page), ramBase(op.who) + BigInt(op.page) * 0x1000n, 0x1000n, RW);
          set.add(op.page);
        } else if (!op.map && set.has(op.page)) {
          b.iommu.unmap(doms[op.who]!, iova(op.page), 0x1000n);
          set.delete(op.page);
        }
      }
      for (const k of [0, 1]) {
        const dev = devs[k]!;
        const other = 1 - k;
        dev.buffer.fill(0xa5);
        for (let p = 0; p < PAGES; p++) {
          // The other owner's RAM, as IOVA = its physical address (a device guessing host addresses).
          const snapshot = b.memory.read(ramBase(other) + BigInt(p) * 0x1000n, 64);
          const r1 = dmaTo(dev, ramBase(other) + BigInt(p) * 0x1000n, true);
          expect(r1.faults.length).toBeGreaterThan(0);
          expect(b.memory.read(ramBase(other) + BigInt(p) * 0x1000n, 64)).toEqual(snapshot);
          // Its own IOVA slots that it has not mapped fault too.
          if (!mapped[k]!.has(p)) expect(dmaTo(dev, iova(p), true).faults.length).toBeGreaterThan(0);
          else expect(dmaTo(dev, iova(p), true).faults).toEqual([]);
        }
      }
      // The other device's doorbell mapping lives in the other domain only.
      if (name === "arm64-virt-smmuv3") {
        b.vfioPci.glue.enable(devs[1], () => {});
        expect(b.iommu.iovaToPhys(doms[1]!, 0x8000000n)).toBe(0x8090000n);
        expect(b.iommu.iovaToPhys(doms[0]!, 0x8000000n)).toBe(0n);
        expect(dmaTo(devs[0], 0x8000040n, true).faults.length).toBeGreaterThan(0);
      }
    }),
    { numRuns: 8, seed: 7 },
  );
});
