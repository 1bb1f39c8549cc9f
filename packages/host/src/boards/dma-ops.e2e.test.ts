/**
 * Default domains as Linux 6.1 builds them: a DMA (IOVA) cookie at allocation, `iommu_setup_dma_ops` for
 * every probed device, the streaming DMA API for kernel-owned devices, the flush queue's timer on the
 * board's model clock, and the cookie picture once VFIO owns the group.
 */
import {
  cookieOf,
  DmaCookie,
  deviceDma,
  dmaMap,
  dmaMappingError,
  dmaSetMask,
  dmaUnmap,
  MsiCookie,
} from "@dma-iommu/msi-cookie";
import { VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU } from "@vfio/type1";
import { describe, expect, it } from "vitest";
import { EDU_BUF_START, EDU_DMA_TO_RAM, EDU_REG, type EduDevice } from "../devices/edu.js";
import { BoardSys } from "../sys/board-sys.js";
import type { ProcessMemory } from "../sys/user-memory.js";
import { createBoard } from "./index.js";
import type { Board, BoardName } from "./types.js";

function eduDma(edu: EduDevice, src: bigint, dst: bigint, len: number, toRam: boolean): number {
  const before = edu.dmaLog.length;
  const w = (o: number, v: bigint) => edu.bar0.write(BigInt(o), 8, v, {});
  w(EDU_REG.DMA_SRC, src);
  w(EDU_REG.DMA_DST, dst);
  w(EDU_REG.DMA_COUNT, BigInt(len));
  w(EDU_REG.DMA_CMD, BigInt(1 | (toRam ? EDU_DMA_TO_RAM : 0)));
  return edu.dmaLog.slice(before).reduce((n, r) => n + r.faults.length, 0);
}

const overlaps = (a: bigint, len: bigint, start: bigint, end: bigint) => a <= end && a + len - 1n >= start;

function avoidsEverything(b: Board, dev: EduDevice, iova: bigint, len: bigint): void {
  for (const r of b.iommu.getResvRegions(dev)) {
    expect(overlaps(iova, len, r.start, r.start + r.length - 1n), `${r.type} region at 0x${r.start.toString(16)}`).toBe(
      false,
    );
  }
  for (const w of b.hostBridge.windows) {
    if (w.kind !== "mem") continue;
    expect(overlaps(iova, len, w.start, w.end), `window 0x${w.start.toString(16)}`).toBe(false);
  }
}

const CASES: { name: BoardName; type: "DMA-FQ" | "DMA"; buffer: bigint; mask: bigint }[] = [
  // q35: the default 32-bit mask; top-down from 4 GiB the allocator meets the MSI window, the PCI hole.
  { name: "x86-q35-vtd", type: "DMA-FQ", buffer: 0x10000000n, mask: 0xffffffffn },
  // virt: a 1 GiB mask, so top-down allocations run into the 32-bit MMIO window quickly.
  { name: "arm64-virt-smmuv3", type: "DMA", buffer: 0x7f000000n, mask: 0x3fffffffn },
];

describe.each(CASES)("$name default domains", ({ name, type, buffer, mask }) => {
  it("every DMA-API default domain has an initialised IOVA cookie; the devices use dma-iommu", () => {
    const b = createBoard(name, { eduCount: 2, qemuQuirks: false });
    for (const edu of b.edus) {
      const dom = b.iommu.groupOf(edu)!.defaultDomain!;
      expect(dom.type).toBe(type);
      const c = cookieOf(dom);
      expect(c).toBeInstanceOf(DmaCookie);
      expect((c as DmaCookie).iovad).not.toBeNull();
      expect((c as DmaCookie).fq !== null).toBe(type === "DMA-FQ");
      expect(deviceDma(edu).iommuDmaOps).toBe(true);
    }
  });

  it("a kernel-owned edu maps buffers through the DMA API: IOVAs avoid reserved regions and bridge windows, DMA reaches the buffer", () => {
    const b = createBoard(name, { qemuQuirks: false });
    const edu = b.edus[0]!;
    edu.enableBusMaster();
    dmaSetMask(edu, mask);
    const pattern = Uint8Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff);
    b.memory.write(buffer, pattern);
    const iovas: bigint[] = [];
    // 1 MiB buffers until the allocator has had to skip a window (and on q35 the MSI window)
    for (let i = 0; i < 40; i++) {
      const iova = dmaMap(b.iommu, edu, buffer, 0x100000n, "bidirectional");
      expect(dmaMappingError(iova)).toBe(false);
      avoidsEverything(b, edu, iova, 0x100000n);
      expect(iova + 0xfffffn <= mask).toBe(true);
      iovas.push(iova);
    }
    // the allocator really went past a window: IOVAs on both sides of one
    const straddled = b.hostBridge.windows.filter(
      (w) => w.kind === "mem" && iovas.some((v) => v + 0x100000n <= w.start) && iovas.some((v) => v > w.end),
    );
    expect(straddled.length).toBeGreaterThan(0);
    for (const iova of [iovas[0]!, iovas.at(-1)!]) {
      edu.buffer.fill(0);
      expect(eduDma(edu, iova, EDU_BUF_START, 256, false)).toBe(0);
      expect(edu.buffer.subarray(0, 256)).toEqual(pattern);
      // and the other way: the device writes into the buffer at an offset, through the same mapping
      edu.buffer.fill(0x5a, 0, 64);
      expect(eduDma(edu, EDU_BUF_START, iova + 0x1000n, 64, true)).toBe(0);
      expect(b.memory.read(buffer + 0x1000n, 64)).toEqual(new Uint8Array(64).fill(0x5a));
    }
    expect(b.kernelLog()).toEqual([]); // no DMAR fault / SMMU event on the way
  });

  it("dmaUnmap: strict domains invalidate at once; DMA-FQ IOVAs wait for the flush-queue timer (board.tick)", () => {
    const b = createBoard(name, { qemuQuirks: false });
    const edu = b.edus[0]!;
    edu.enableBusMaster();
    const dom = b.iommu.groupOf(edu)!.defaultDomain!;
    const cookie = cookieOf(dom) as DmaCookie;
    const iova = dmaMap(b.iommu, edu, buffer, 0x1000n, "to-device");
    expect(eduDma(edu, iova, EDU_BUF_START, 64, false)).toBe(0);
    dmaUnmap(b.iommu, edu, iova, 0x1000n, "to-device");
    if (type === "DMA-FQ") {
      expect(cookie.fq!.pending().length).toBe(1);
      expect(cookie.fq!.timerPending).toBe(true);
      b.tick(4); // the timer is noticed here and armed at t=0 ...
      expect(cookie.fq!.pending().length).toBe(1);
      b.tick(6); // ... and fires 10 ms later
      expect(cookie.fq!.pending().length).toBe(0);
      expect(cookie.fq!.timerPending).toBe(false);
      expect(b.nowMs).toBe(10);
    } else {
      expect(cookie.fq).toBeNull();
      b.tick();
    }
    // after the flush the IOTLB holds nothing for the IOVA: the device's read faults
    expect(eduDma(edu, iova, EDU_BUF_START, 64, false)).toBeGreaterThan(0);
    // the IOVA is free again: the next allocation of the same size gets it back
    expect(dmaMap(b.iommu, edu, buffer, 0x1000n, "to-device")).toBe(iova);
  });

  it("once VFIO claims the group, its unmanaged domain has only the MSI cookie (ARM) or none (x86)", () => {
    const b = createBoard(name, { qemuQuirks: false });
    const edu = b.edus[0]!;
    const g = b.iommu.groupOf(edu)!;
    const def = g.defaultDomain!;
    // what a VMM does first: container, group into it, type1v2 (the group's domain becomes unmanaged)
    const sys = new BoardSys(b);
    const cfd = sys.open("/dev/vfio/vfio").ret;
    const gfd = sys.open(`/dev/vfio/${g.id}`).ret;
    const arg = (sys.memory as ProcessMemory).calloc(4);
    sys.memory.write(arg, new Uint8Array(new Int32Array([cfd]).buffer));
    expect(sys.ioctl(gfd, VFIO_GROUP_SET_CONTAINER, arg).ret).toBe(0);
    expect(sys.ioctl(cfd, VFIO_SET_IOMMU, BigInt(VFIO_TYPE1v2_IOMMU)).ret).toBe(0);
    const dom = g.domain!;
    expect(dom.type).toBe("unmanaged");
    const c = cookieOf(dom);
    if (name === "arm64-virt-smmuv3") {
      expect(c).toBeInstanceOf(MsiCookie);
      expect((c as MsiCookie).base).toBe(0x8000000n);
    } else expect(c).toBeNull();
    // the default domain keeps its IOVA cookie for when the kernel gets the device back
    expect(cookieOf(def)).toBeInstanceOf(DmaCookie);
  });
});
