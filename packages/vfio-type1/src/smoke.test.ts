import { describe, expect, it } from "vitest";
import { BASE, makeHost, openContainer } from "./test-support/hosts.js";
import { infoBuffer, toHex, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_IOMMU_GET_INFO } from "./uapi.js";

describe("smoke", () => {
  it("x86 GET_INFO bytes as Linux 6.1", () => {
    const h = makeHost({ shape: "x86" });
    const { container } = openContainer(h);
    const b = infoBuffer(4096);
    expect(container.ioctl(VFIO_IOMMU_GET_INFO, b)).toBe(0);
    expect(toHex(b.subarray(0, 116))).toBe(
      "00100000030000000010204000000000180000000000000002000100380000000000000000000000001000000000000000000010000000000300010044000000ffff0000010001000000000002000000000000000000000000000000ffffdffe000000000000f0fe00000000ffffffff7f000000",
    );
    container.mapDma({
      vaddr: BASE,
      iova: 0x100000n,
      size: 0x4000n,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
    });
    expect(h.proc.vmLckKb).toBe(16);
    expect(container.unmapDma({ iova: 0n, size: 0n, flags: 2 })).toBe(0x4000n);
    expect(h.proc.lockedVm).toBe(0);
  });
  it("mock driver: PAGE_SIZE 4K shown", () => {
    const h = makeHost({ shape: "mock" });
    const { container } = openContainer(h);
    const info = container.getInfo();
    expect(info.iovaPgsizes).toBe(0x1000n);
    expect(info.iovaRanges).toEqual([{ start: 1n << 24n, end: 0x7fffffffn }]);
  });
});
