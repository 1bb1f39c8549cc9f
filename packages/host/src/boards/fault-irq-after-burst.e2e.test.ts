/**
 * The IOMMU's fault interrupt handler runs after the device callback that faulted (QEMU's big lock,
 * irq/bql.ts): on x86 a burst's later faults from the same requester collapse into the record still
 * pending (QEMU's vtd_try_collapse_fault), on arm64 a burst's events all wait in the queue for one pass
 * of arm_smmu_evtq_thread.
 */
import { describe, expect, it } from "vitest";
import { EDU_BUF_START, EDU_REG, type EduDevice } from "../devices/edu.js";
import { createBoard } from "./index.js";
import type { Board } from "./types.js";

/** Give the edu to an empty unmanaged domain: every IOVA faults. */
function emptyDomain(board: Board, edu: EduDevice): void {
  const g = board.iommu.groupOf(edu)!;
  const domain = board.iommu.domainAlloc(g.devices[0]!.iommu!.ops, "unmanaged");
  board.iommu.claimDmaOwner(g, board);
  board.iommu.attachGroup(domain, g);
}

/** One edu DMA from `iova` into its buffer (the device reads RAM), as the probe's `dma … to-dev` does. */
function readBurst(edu: EduDevice, iova: bigint, len: number): void {
  const w = (o: number, v: bigint) => edu.bar0.write(BigInt(o), 8, v, {});
  w(EDU_REG.DMA_SRC, iova);
  w(EDU_REG.DMA_DST, EDU_BUF_START);
  w(EDU_REG.DMA_COUNT, BigInt(len));
  w(EDU_REG.DMA_CMD, 1n);
}

describe("x86: dmar_fault waits for the burst", () => {
  it("regression (vtd_try_collapse_fault; 6.1 x86 random-38 line 14): a burst faulting on two pages logs the first page only", () => {
    const b = createBoard("x86-q35-vtd");
    const edu = b.edus[0]!;
    edu.enableBusMaster();
    emptyDomain(b, edu);
    b.kernelLog();
    readBurst(edu, 0xc10984n, 0xcf9);
    expect(edu.dmaLog.at(-1)!.faults.map((f) => f.iova)).toEqual([0xc10984n, 0xc11000n]);
    expect(b.kernelLog()).toEqual([
      "DMAR: DRHD: handling fault status reg 2",
      "DMAR: [DMA Read NO_PASID] Request device [00:01.0] fault addr 0xc10000 [fault reason 0x06] PTE Read access is not set",
    ]);
  });

  it("the next burst faults anew: the handler cleared the record in between", () => {
    const b = createBoard("x86-q35-vtd");
    const edu = b.edus[0]!;
    edu.enableBusMaster();
    emptyDomain(b, edu);
    b.kernelLog();
    readBurst(edu, 0x600800n, 0x1000);
    readBurst(edu, 0x800000n, 0x10);
    expect(b.kernelLog().filter((l) => l.includes("fault addr"))).toEqual([
      "DMAR: [DMA Read NO_PASID] Request device [00:01.0] fault addr 0x600000 [fault reason 0x06] PTE Read access is not set",
      "DMAR: [DMA Read NO_PASID] Request device [00:01.0] fault addr 0x800000 [fault reason 0x06] PTE Read access is not set",
    ]);
  });
});

describe("arm64: arm_smmu_evtq_thread waits for the burst", () => {
  it("a page of faulting words waits in the event queue and is read in one pass: no overflow, ten events printed", () => {
    const b = createBoard("arm64-virt-smmuv3");
    const edu = b.edus[0]!;
    edu.enableBusMaster();
    emptyDomain(b, edu);
    b.kernelLog();
    readBurst(edu, 0x400000n, 0x1000);
    const log = b.kernelLog();
    expect(log.some((l) => l.includes("overflow"))).toBe(false);
    expect(log.filter((l) => l.endsWith("received:"))).toHaveLength(10);
    expect(log).toHaveLength(50);
  });
});
