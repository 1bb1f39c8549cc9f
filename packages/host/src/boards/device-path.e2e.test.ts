/**
 * End to end on both boards, below VFIO: the real drivers, hardware models, ITS / interrupt
 * remapping and MSI cookie. The test does what type1 does on attach (unmanaged domain, attach the
 * group, MSI cookie at the SW_MSI base on ARM), then lets edu DMA into "guest RAM" and raise its MSI.
 */
import { getMsiCookie } from "@dma-iommu/msi-cookie";
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, msiMsgAddress } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { EDU_BUF_START, EDU_DMA_IRQ, EDU_DMA_TO_RAM, EDU_REG, type EduDevice } from "../devices/edu.js";
import { createBoard } from "./index.js";
import type { Board, BoardName } from "./types.js";

const RW = IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE;

function attachUnmanaged(board: Board, devs: EduDevice[]) {
  const g0 = board.iommu.groupOf(devs[0]!)!;
  const domain = board.iommu.domainAlloc(g0.devices[0]!.iommu!.ops, "unmanaged");
  for (const d of devs) {
    const g = board.iommu.groupOf(d)!;
    board.iommu.claimDmaOwner(g, board);
    board.iommu.attachGroup(domain, g);
  }
  const resv = board.iommu.getGroupResvRegions(g0);
  const swMsi = resv.find((r) => r.type === "sw-msi");
  if (swMsi && !resv.some((r) => r.type === "msi")) getMsiCookie(domain, swMsi.start);
  return domain;
}

function eduDma(edu: EduDevice, src: bigint, dst: bigint, len: number, toRam: boolean, irq = false) {
  const w = (o: number, v: bigint) => edu.bar0.write(BigInt(o), 8, v, {});
  w(EDU_REG.DMA_SRC, src);
  w(EDU_REG.DMA_DST, dst);
  w(EDU_REG.DMA_COUNT, BigInt(len));
  w(EDU_REG.DMA_CMD, BigInt(1 | (toRam ? EDU_DMA_TO_RAM : 0) | (irq ? EDU_DMA_IRQ : 0)));
}

// The MSI glue is driven directly here, with no pci_enable_device before it: on x86 no INTx pin took
// IRTE 15, so the MSI gets it (0xfee001f8); opened through vfio-pci it is 0xfee00218 (acpi-pci-irq.test.ts).
const CASES: { name: BoardName; group0: number; msiAddress: bigint; guestPhys: bigint }[] = [
  { name: "x86-q35-vtd", group0: 1, msiAddress: 0xfee001f8n, guestPhys: 0x100000000n },
  { name: "arm64-virt-smmuv3", group0: 0, msiAddress: 0x8000040n, guestPhys: 0x50000000n },
];

describe.each(CASES)("$name device path", ({ name, group0, msiAddress, guestPhys }) => {
  it("groups and reserved regions are Linux 6.1's on this QEMU machine", () => {
    const b = createBoard(name, { eduCount: 2 });
    expect(b.edus.map((e) => b.groupIdOf(e))).toEqual([group0, group0 + 1]);
    const text = b.iommu.groupById(group0)!.resvRegionsText();
    expect(text).toBe(
      name === "x86-q35-vtd"
        ? "0x00000000fee00000 0x00000000feefffff msi\n"
        : "0x0000000008000000 0x00000000080fffff msi\n",
    );
  });

  it("edu copies data through its IOVA into guest RAM and back; unmapped IOVAs fault and write nothing", () => {
    const b = createBoard(name);
    const edu = b.edus[0]!;
    edu.enableBusMaster();
    const dom = attachUnmanaged(b, [edu]);
    b.iommu.map(dom, 0x100000n, guestPhys, 0x2000n, RW);
    const pattern = Uint8Array.from({ length: 256 }, (_, i) => (i * 13 + 1) & 0xff);
    b.memory.write(guestPhys, pattern);
    eduDma(edu, 0x100000n, EDU_BUF_START, 256, false);
    eduDma(edu, EDU_BUF_START, 0x101000n, 256, true);
    expect(b.memory.read(guestPhys + 0x1000n, 256)).toEqual(pattern);
    expect(edu.dmaLog.every((r) => r.faults.length === 0)).toBe(true);
    // Nothing mapped at 0x400000: the write faults in the IOMMU and no RAM changes.
    const before = b.memory.read(0x400000n, 256);
    eduDma(edu, EDU_BUF_START, 0x400000n, 256, true);
    expect(edu.dmaLog.at(-1)!.faults.length).toBeGreaterThan(0);
    expect(b.memory.read(0x400000n, 256)).toEqual(before);
  });

  it(`MSI: the device is programmed with ${msiAddress.toString(16)} and its interrupt reaches the CPU`, () => {
    const b = createBoard(name, { eduCount: 2 });
    const [e0, e1] = b.edus as [EduDevice, EduDevice];
    for (const e of b.edus) e.enableBusMaster();
    attachUnmanaged(b, [e0, e1]);
    const glue = b.vfioPci.glue;
    let fired = 0;
    const s0 = glue.enable(e0, () => fired++);
    expect(msiMsgAddress(e0.config.msiMessage())).toBe(msiAddress);
    expect(e0.config.msiMessage().data).toBe(0);
    e0.bar0.write(BigInt(EDU_REG.IRQ_RAISE), 4, 1n, {});
    expect(fired).toBe(1);
    expect(b.interrupts()).toEqual([
      { source: `${name.startsWith("x86") ? "ir" : "its"}:${e0.name}`, vector: s0.vector, count: 1 },
    ]);
    // DMA completion raises the MSI too.
    eduDma(e0, 0x0n, EDU_BUF_START, 0, false);
    // A second device in the same domain shares the doorbell page (ARM) / gets the next IRTE (x86).
    const s1 = glue.enable(e1, () => fired++);
    if (name === "arm64-virt-smmuv3") {
      expect(s1.doorbellIova).toBe(s0.doorbellIova);
      expect(msiMsgAddress(e1.config.msiMessage())).toBe(0x8000040n);
    } else {
      expect(s1.address).not.toBe(s0.address);
      expect(s1.address >> 20n).toBe(0xfeen);
    }
    e1.bar0.write(BigInt(EDU_REG.IRQ_RAISE), 4, 1n, {});
    expect(fired).toBe(2);
    glue.disable(e0);
    expect(e0.config.msiMessage()).toEqual({ addressLo: 0, addressHi: 0, data: 0 });
    expect(e0.config.msiEnabled).toBe(false);
  });
});

it("arm64 QEMU quirk: an edu DMA write to the doorbell IOVA is translated but raises nothing", () => {
  const b = createBoard("arm64-virt-smmuv3");
  const e = b.edus[0]!;
  e.enableBusMaster();
  attachUnmanaged(b, [e]);
  const glue = b.vfioPci.glue;
  let fired = 0;
  glue.enable(e, () => fired++);
  e.buffer.fill(0);
  eduDma(e, EDU_BUF_START, 0x8000040n, 4, true);
  expect(e.dmaLog.at(-1)!.faults).toEqual([]);
  expect(fired).toBe(0);
});

it("x86Rmrr: the xHCI controller's RMRR is direct-relaxable, the ISA bridge gets 0-16 MiB, edu groups are unchanged", () => {
  const b = createBoard("x86-q35-vtd", { x86Rmrr: true });
  const text = (id: number) => b.iommu.groupById(id)!.resvRegionsText();
  expect(b.iommu.groups().map((g) => g.devices.map((d) => d.name))).toEqual([
    ["0000:00:00.0"],
    ["0000:00:01.0"],
    ["0000:00:1d.0"],
    ["0000:00:1f.0"],
  ]);
  expect(text(1)).toBe("0x00000000fee00000 0x00000000feefffff msi\n");
  expect(text(2)).toContain("0x000000007f7e0000 0x000000007f7fffff direct-relaxable\n");
  expect(text(3)).toContain("0x0000000000000000 0x0000000000ffffff direct-relaxable\n");
  // Direct-relaxable regions are identity-mapped in the default DMA domain.
  const g2 = b.iommu.groupById(2)!;
  expect(b.iommu.iovaToPhys(g2.defaultDomain!, 0x7f7e0000n)).toBe(0x7f7e0000n);
});
