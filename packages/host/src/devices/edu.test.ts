import { IOMMU_READ, IOMMU_WRITE, Iommu, PhysicalMemory } from "@iommu/core";
import { createMockIommu } from "@iommu/core/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Gicv3Its, VIRT_ITS_BASE } from "../irq/gicv3-its.js";
import { InterruptController } from "../irq/interrupt-controller.js";
import { writeMsiCapability } from "../kernel/msi-capability.js";
import { EDU_BUF_START, EDU_DMA_TO_RAM, EDU_ID, EDU_REG, EduDevice } from "./edu.js";

function setup(qemuQuirks = true) {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 0x08000000n);
  memory.addRam(0x0c000000n, 0x04000000n);
  const edu = new EduDevice(memory, { slot: 1, qemuQuirks });
  edu.enableBusMaster();
  const w = (off: number, v: bigint, size: 4 | 8 = 8) => edu.bar0.write(BigInt(off), size, v, {});
  const r = (off: number, size: 4 | 8 = 4) => edu.bar0.read(BigInt(off), size, {});
  const dma = (busAddr: bigint, len: number, toRam: boolean) => {
    w(EDU_REG.DMA_SRC, toRam ? EDU_BUF_START : busAddr);
    w(EDU_REG.DMA_DST, toRam ? busAddr : EDU_BUF_START);
    w(EDU_REG.DMA_COUNT, BigInt(len));
    w(EDU_REG.DMA_CMD, toRam ? BigInt(1 | EDU_DMA_TO_RAM) : 1n);
    return r(EDU_REG.DMA_CMD, 8);
  };
  return { memory, edu, w, r, dma };
}

describe("edu registers", () => {
  it("identifies as QEMU 7.2's edu 1.0 at 00:01.0 with an MSI capability at 0x40", () => {
    const { edu, r } = setup();
    expect(Number(r(EDU_REG.ID))).toBe(EDU_ID);
    expect(edu.name).toBe("0000:00:01.0");
    expect(edu.requesterId).toBe(0x08);
    expect(edu.config.read(0, 4)).toBe(0x11e81234);
    expect(edu.config.read(0x34, 1)).toBe(0x40);
    expect(edu.config.read(0x40, 1)).toBe(0x05);
    expect(edu.config.read(0x42, 2)).toBe(0x80);
  });

  it("liveness inverts, factorial computes, 64-bit reads below 0x80 are refused", () => {
    const { w, r } = setup();
    w(EDU_REG.LIVENESS, 0x12345678n, 4);
    expect(Number(r(EDU_REG.LIVENESS))).toBe(~0x12345678 >>> 0);
    w(EDU_REG.FACTORIAL, 5n, 4);
    expect(Number(r(EDU_REG.FACTORIAL))).toBe(120);
    expect(r(EDU_REG.ID, 8)).toBe(0xffffffffffffffffn);
  });

  it("raise/ack drive the status register and INTx when MSI is off", () => {
    const { edu, w, r } = setup();
    const levels: boolean[] = [];
    edu.onIntx = (l) => levels.push(l);
    w(EDU_REG.IRQ_RAISE, 3n, 4);
    expect(Number(r(EDU_REG.IRQ_STATUS))).toBe(3);
    w(EDU_REG.IRQ_ACK, 1n, 4);
    expect(edu.intxAsserted).toBe(true);
    w(EDU_REG.IRQ_ACK, 2n, 4);
    expect(Number(r(EDU_REG.IRQ_STATUS))).toBe(0);
    expect(levels).toEqual([true, false]);
  });
});

describe("edu DMA engine", () => {
  it("copies RAM -> buffer -> RAM without an IOMMU and clears the run bit", () => {
    const { memory, dma } = setup();
    memory.write(
      0x100000n,
      Uint8Array.from({ length: 64 }, (_, i) => i + 1),
    );
    expect(dma(0x100000n, 64, false) & 1n).toBe(0n);
    expect(dma(0x200000n, 64, true) & 1n).toBe(0n);
    expect([...memory.read(0x200000n, 64)]).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
  });

  it("qemu_quirk_28bit_dma_mask: clamps addresses to 28 bits and prints QEMU's line", () => {
    const { memory, edu, dma } = setup(true);
    memory.write(0x0ee00000n, new Uint8Array([0xaa]));
    dma(0xfee00000n, 1, false);
    expect(edu.dmaLog.at(-1)?.busAddr).toBe(0x0ee00000n);
    expect(edu.console.at(-1)).toBe("EDU: clamping DMA 0x00000000fee00000 to 0x000000000ee00000!");
    expect(edu.buffer[0]).toBe(0xaa);
  });

  it("does no DMA while bus mastering is off", () => {
    const { memory, edu, dma } = setup();
    edu.config.write(4, 2, 0);
    edu.buffer.fill(7);
    dma(0x1000n, 16, true);
    expect([...memory.read(0x1000n, 16)]).toEqual(new Array(16).fill(0));
  });

  it("a burst that runs off a mapping writes the mapped page and faults the rest (per-page translation)", () => {
    const { memory, edu, dma } = setup();
    const mock = createMockIommu();
    const iommu = new Iommu();
    iommu.probeDevice(edu, mock.ops);
    const dom = iommu.domainAlloc(mock.ops, "unmanaged");
    iommu.attachGroup(dom, iommu.groupOf(edu)!);
    iommu.map(dom, 0x1000000n, 0x300000n, 0x1000n, IOMMU_READ | IOMMU_WRITE);
    edu.buffer.fill(0x5a);
    dma(0x1000f80n, 0x100, true);
    expect([...memory.read(0x300f80n, 0x80)]).toEqual(new Array(0x80).fill(0x5a));
    expect(edu.dmaLog.at(-1)?.faults.map((f) => f.iova)).toEqual([0x1001000n]);
    expect(mock.faults.length).toBeGreaterThan(0);
  });

  it("property: data copied in through any mapped IOVA comes back out byte for byte", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 1, max: 4096 }),
        fc.uint8Array({ minLength: 4096, maxLength: 4096 }),
        (page, len, bytes) => {
          const { memory, dma } = setup();
          const src = 0x1000000n + BigInt(page) * 0x1000n;
          memory.write(src, bytes.subarray(0, len));
          dma(src, len, false);
          memory.zero(0x2000000n, 4096);
          dma(0x2000000n, len, true);
          expect(memory.read(0x2000000n, len)).toEqual(bytes.subarray(0, len));
        },
      ),
      { numRuns: 40, seed: 9 },
    );
  });
});

describe("edu MSI and the GICv3 ITS doorbell", () => {
  function itsSetup(quirks: boolean) {
    const s = setup(quirks);
    const gic = new InterruptController("gic");
    const its = new Gicv3Its(gic);
    s.memory.addMmio(VIRT_ITS_BASE, 0x20000n, its);
    return { ...s, gic, its };
  }

  it("an MSI write carries the requester id and becomes an LPI", () => {
    const { edu, w, gic, its } = itsSetup(true);
    its.mapEvent(edu.requesterId, 0, 8192);
    let fired = 0;
    gic.request(8192, () => fired++);
    writeMsiCapability(edu, its.doorbell, 0, true);
    w(EDU_REG.IRQ_RAISE, 1n, 4);
    expect(fired).toBe(1);
    expect(gic.list()).toEqual([{ source: "its:rid:0x8", vector: 8192, count: 1 }]);
  });

  it("qemu_quirk_edu_dma_no_requester_id: a DMA write to the doorbell raises nothing", () => {
    const { edu, dma, gic, its } = itsSetup(true);
    its.mapEvent(edu.requesterId, 0, 8192);
    edu.buffer.fill(0);
    dma(its.doorbell, 4, true);
    expect(gic.list()).toEqual([]);
    expect(its.drops.at(-1)?.why).toBe("no requester id");
  });

  it("without QEMU quirks the same DMA write is an interrupt (real hardware tags DMA with its id)", () => {
    const { edu, dma, gic, its } = itsSetup(false);
    its.mapEvent(edu.requesterId, 0, 8192);
    edu.buffer.fill(0);
    dma(its.doorbell, 4, true);
    expect(gic.list()).toEqual([{ source: "its:rid:0x8", vector: 8192, count: 1 }]);
  });

  it("an unmapped DeviceID/EventID pair is dropped", () => {
    const { edu, w, its, gic } = itsSetup(true);
    writeMsiCapability(edu, its.doorbell, 5, true);
    w(EDU_REG.IRQ_RAISE, 1n, 4);
    expect(gic.list()).toEqual([]);
    expect(its.drops.at(-1)).toEqual({ deviceId: 8, eventId: 5, why: "unmapped device/event" });
  });
});
