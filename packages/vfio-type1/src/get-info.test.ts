/** VFIO_IOMMU_GET_INFO on bytes: the x86 transcript's buffer, argsz edges, and lying argsz. */
import { firstRecord } from "@iommu-sim/conformance";
import {
  infoBuffer,
  toHex,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_GET_INFO,
  view,
} from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { BASE, makeHost, openContainer } from "./test-support/hosts.js";

/** What Linux 6.1 wrote for `info` (argsz 4096) on x86: the probe's `raw` is the bytes up to the chain's end. */
const X86_INFO_4096 = firstRecord({ set: "linux-6.1", arch: "x86", name: "basic" }, "info").raw as string;

describe("GET_INFO bytes", () => {
  it("x86: MIGRATION@24, DMA_AVAIL@56 (12 bytes), IOVA_RANGE@68, as Linux 6.1 wrote them", () => {
    const h = makeHost({ shape: "x86" });
    const { container } = openContainer(h);
    const b = infoBuffer(4096);
    expect(container.ioctl(VFIO_IOMMU_GET_INFO, b)).toBe(0);
    expect(X86_INFO_4096).toHaveLength(2 * 116);
    expect(toHex(b.subarray(0, 116))).toBe(X86_INFO_4096);
    container.mapDma({
      vaddr: BASE,
      iova: 0x100000n,
      size: 0x4000n,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
    });
    expect(h.proc.vmLckKb).toBe(16);
    expect(container.getInfo().dmaAvail).toBe(65534);
  });

  it("argsz 16–19 writes exactly 16 bytes; 20–115 also cap_offset = 0 and the size needed", () => {
    const h = makeHost({ shape: "x86" });
    const { container } = openContainer(h);
    for (const argsz of [16, 19, 20, 23, 24, 115]) {
      const b = infoBuffer(argsz, 0xa5, 128);
      expect(container.ioctl(VFIO_IOMMU_GET_INFO, b)).toBe(0);
      const written = argsz >= 20 ? 20 : 16;
      expect(view(b).getUint32(0, true)).toBe(116);
      expect([...b.subarray(written)].every((x) => x === 0xa5)).toBe(true);
      if (argsz >= 20) expect(view(b).getUint32(16, true)).toBe(0);
    }
  });

  it("lying argsz: a buffer shorter than what the kernel copies is EFAULT and nothing is written", () => {
    const h = makeHost({ shape: "x86" });
    const { container } = openContainer(h);
    for (const [argsz, len] of [
      [4096, 100],
      [4096, 20],
      [20, 18],
      [16, 15],
    ] as const) {
      const b = infoBuffer(argsz, 0xa5, len);
      const copy = b.slice();
      expect(container.ioctl(VFIO_IOMMU_GET_INFO, b)).toBe(-14);
      expect(b).toEqual(copy);
    }
    expect(container.ioctl(VFIO_IOMMU_GET_INFO, 0x1000n)).toBe(-14); // an integer is not a buffer
  });

  it("the mock driver's 2 KiB pages are reported as 4 KiB; one range inside its aperture", () => {
    const h = makeHost({ shape: "mock" });
    const { container } = openContainer(h);
    const info = container.getInfo();
    expect(info.iovaPgsizes).toBe(0x1000n);
    expect(info.iovaRanges).toEqual([{ start: 1n << 24n, end: 0x7fffffffn }]);
  });
});
