import { ERRNO } from "@iommu/core";
import {
  encodeDmaMap,
  encodeDmaUnmap,
  infoBuffer,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
} from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { IommufdCtx } from "./iommufd-ctx.js";
import { iommufdIoctl } from "./iommufd-ioctl.js";
import { BASE, testHost, X86 } from "./test-support/hosts.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** `/dev/vfio/vfio` served by iommufd, after the probe's set-up: group set (compat IOAS), SET_IOMMU. */
function compat() {
  const host = testHost(X86);
  const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc, vfioCompat: true });
  ctx.vfioCompatIoasCreate();
  const ioctl = (cmd: number, arg: Uint8Array | number) => iommufdIoctl(ctx, cmd, arg);
  expect(ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
  /** GET_DEVICE_FD: vfio binds the device and attaches it to the compat IOAS. */
  const openDevice = () => ctx.attachDevice(ctx.bindDevice(host.device(1)), ctx.vfioIoasGet());
  const map = (iova: bigint, size: bigint, vaddr = BASE, flags = 3) =>
    ioctl(VFIO_IOMMU_MAP_DMA, encodeDmaMap({ argsz: 32, flags, vaddr, iova, size }));
  return { host, ctx, ioctl, openDevice, map };
}

describe("iommufd's VFIO compat container (linux-6.12-iommufd-compat)", () => {
  it("ext: type1, type1v2, unmap_all 1; nesting, update_vaddr, noiommu 0; dma_cc 1 without a domain", () => {
    const { ioctl, openDevice } = compat();
    const ext = (t: number) => ioctl(VFIO_CHECK_EXTENSION, t);
    expect([VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_NESTING_IOMMU, VFIO_DMA_CC_IOMMU].map(ext)).toEqual([
      1, 1, 0, 1,
    ]);
    expect([VFIO_UNMAP_ALL, VFIO_UPDATE_VADDR, VFIO_NOIOMMU_IOMMU].map(ext)).toEqual([1, 0, 0]);
    expect(ioctl(VFIO_GET_API_VERSION, 0)).toBe(0);
    expect(ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    expect(ioctl(VFIO_SET_IOMMU, 9)).toBe(-ERRNO.EINVAL);
    openDevice();
    expect(ext(VFIO_DMA_CC_IOMMU)).toBe(0);
  });

  it("GET_INFO before the device is open: 72 bytes, every page size, DMA_AVAIL at 24 and one 64-bit range at 40", () => {
    const { ioctl } = compat();
    const b = infoBuffer(4096, 0xa5);
    expect(ioctl(VFIO_IOMMU_GET_INFO, b)).toBe(0);
    expect(hex(b.subarray(0, 72))).toBe(
      "480000000300000000f0ffffffffffff18000000000000000300010028000000ffffffffa5a5a5a5010001000000000001000000000000000000000000000000ffffffffffffffff",
    );
  });

  it.each([
    [0, -ERRNO.EINVAL, "00000000a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"],
    [15, -ERRNO.EINVAL, "0f000000a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"],
    [16, 0, "480000000300000000f0ffffffffffffa5a5a5a5a5a5a5a5"],
    [20, 0, "480000000300000000f0ffffffffffff00000000a5a5a5a5"],
    [23, 0, "480000000300000000f0ffffffffffff00000000000000a5"],
    [25, 0, "480000000300000000f0ffffffffffff0000000000000000a5"],
  ])("GET_INFO argsz %i as the info-argsz transcript", (argsz, rc, raw) => {
    const { ioctl } = compat();
    const b = infoBuffer(argsz, 0xa5, 4096);
    expect(ioctl(VFIO_IOMMU_GET_INFO, b)).toBe(rc);
    expect(hex(b.subarray(0, raw.length / 2))).toBe(raw);
  });

  it("GET_INFO argsz 50: DMA_AVAIL and its next written, no room for the IOVA_RANGE cap, cap_offset 0", () => {
    const { ioctl } = compat();
    const b = infoBuffer(50, 0xa5, 4096);
    expect(ioctl(VFIO_IOMMU_GET_INFO, b)).toBe(0);
    expect(hex(b.subarray(16, 52))).toBe(`00000000000000000300010028000000ffffffff${"a5".repeat(16)}`);
  });

  it("maps anywhere before the device opens (MSI window, past the aperture), then the open fails EADDRINUSE", () => {
    const { ioctl, openDevice, map, ctx } = compat();
    expect(map(0xfee0_0000n, 0x1000n)).toBe(0);
    expect(map(0xfedf_f000n, 0x2000n)).toBe(-ERRNO.EEXIST);
    expect(map(0x80_0000_0000n, 0x1000n, BASE + 0x3000n)).toBe(0);
    expect(map(0x1234n, 0x10n)).toBe(0);
    expect(() => openDevice()).toThrow(/EADDRINUSE/);
    const all = encodeDmaUnmap({ argsz: 24, flags: 2, iova: 0n, size: 0n });
    expect(ioctl(VFIO_IOMMU_UNMAP_DMA, all)).toBe(0);
    expect(all.subarray(16, 24)).toEqual(new Uint8Array([0x10, 0x20, 0, 0, 0, 0, 0, 0]));
    expect(ctx.ioas(ctx.vfioIoasGet()).iopt.areas.size).toBe(0);
    openDevice();
    const b = infoBuffer(4096);
    expect(ioctl(VFIO_IOMMU_GET_INFO, b)).toBe(0);
    // argsz 88, the domain's page sizes, the device's two ranges.
    expect(hex(b.subarray(0, 16))).toBe("58000000030000000010204000000000");
  });

  it("partial unmap ENOENT with size 0 written back; VADDR EINVAL; dirty tracking ENOTTY", () => {
    const { ioctl, openDevice, map } = compat();
    openDevice();
    expect(map(0x100000n, 0x4000n)).toBe(0);
    const u = encodeDmaUnmap({ argsz: 24, flags: 0, iova: 0x101000n, size: 0x1000n });
    expect(ioctl(VFIO_IOMMU_UNMAP_DMA, u)).toBe(-ERRNO.ENOENT);
    expect(hex(u.subarray(16, 24))).toBe("0000000000000000");
    expect(map(0x200000n, 0x1000n, BASE, VFIO_DMA_MAP_FLAG_VADDR)).toBe(-ERRNO.EINVAL);
    const uv = encodeDmaUnmap({ argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_VADDR, iova: 0x100000n, size: 0x4000n });
    expect(ioctl(VFIO_IOMMU_UNMAP_DMA, uv)).toBe(-ERRNO.EINVAL);
    expect(ioctl(VFIO_IOMMU_DIRTY_PAGES, new Uint8Array(8))).toBe(-ERRNO.ENOTTY);
    const whole = encodeDmaUnmap({ argsz: 24, flags: 0, iova: 0x100000n, size: 0x4000n });
    expect(ioctl(VFIO_IOMMU_UNMAP_DMA, whole)).toBe(0);
    expect(hex(whole.subarray(16, 24))).toBe("0040000000000000");
  });

  it("unmap of nothing is 0 with size 0 written back; a wrap is EOVERFLOW (unmap-v2); UNMAP_ALL with a range EINVAL, size untouched", () => {
    const { ioctl, map } = compat();
    const unmap = (iova: bigint, size: bigint, flags = 0) => {
      const u = encodeDmaUnmap({ argsz: 24, flags, iova, size });
      return [ioctl(VFIO_IOMMU_UNMAP_DMA, u), hex(u.subarray(16, 24))];
    };
    expect(unmap(0x200000n, 0x1000n)).toEqual([0, "0000000000000000"]);
    expect(unmap(0xffff_ffff_ffff_f000n, 0x2000n)).toEqual([-ERRNO.EOVERFLOW, "0000000000000000"]);
    expect(unmap(0x100000n, 0n)).toEqual([-ERRNO.EINVAL, "0000000000000000"]);
    expect(map(0x100000n, 0x1000n)).toBe(0);
    expect(unmap(0x100000n, 0x1000n, 2)).toEqual([-ERRNO.EINVAL, "0010000000000000"]);
    expect(unmap(0n, 0n, 2)).toEqual([0, "0010000000000000"]);
  });

  it("map-errors-args: a length past SIZE_MAX - PAGE_SIZE is EINVAL before the user range's wrap", () => {
    const { map } = compat();
    expect(map(0n, 0xffff_ffff_ffff_f000n)).toBe(-ERRNO.EINVAL);
    expect(map(0x200000n, 0x1000n, 0xffff_ffff_ffff_f000n)).toBe(-ERRNO.EOVERFLOW);
  });

  it("type1 (v1): huge pages off, so an unmap inside a mapping cuts it", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc, vfioCompat: true });
    ctx.vfioCompatIoasCreate();
    expect(iommufdIoctl(ctx, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)).toBe(0);
    ctx.attachDevice(ctx.bindDevice(host.device(1)), ctx.vfioIoasGet());
    expect(
      iommufdIoctl(
        ctx,
        VFIO_IOMMU_MAP_DMA,
        encodeDmaMap({ argsz: 32, flags: 3, vaddr: BASE, iova: 0x100000n, size: 0x4000n }),
      ),
    ).toBe(0);
    const u = encodeDmaUnmap({ argsz: 24, flags: 0, iova: 0x101000n, size: 0x1000n });
    expect(iommufdIoctl(ctx, VFIO_IOMMU_UNMAP_DMA, u)).toBe(0);
    const areas = ctx
      .ioas(ctx.vfioIoasGet())
      .iopt.areas.all()
      .map((a) => [a.start, a.last]);
    expect(areas).toEqual([
      [0x100000n, 0x100fffn],
      [0x102000n, 0x103fffn],
    ]);
    expect(host.proc.pinnedVm).toBe(3);
  });

  it("without a compat IOAS every container ioctl is ENODEV", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc, vfioCompat: true });
    expect(iommufdIoctl(ctx, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(-ERRNO.ENODEV);
    expect(iommufdIoctl(ctx, VFIO_IOMMU_GET_INFO, infoBuffer())).toBe(-ERRNO.ENODEV);
    expect(iommufdIoctl(ctx, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(-ERRNO.ENODEV);
  });
});
