/**
 * The iommufd layouts against the kernel header: every size and offset below is what gcc's `sizeof`/`offsetof`
 * gave on x86-64 for `include/uapi/linux/iommufd.h` of Linux 6.12 (shared/conformance/recorder/probe/uapi, the
 * header the probe is built with; arm64 is also LP64 with u64 8-aligned, so the same).
 */
import { describe, expect, it } from "vitest";
import * as I from "./iommufd.js";

describe("iommufd.h (6.12) layouts", () => {
  it("sizes and offsets match gcc's", () => {
    expect([I.DESTROY.size, I.DESTROY.id]).toEqual([8, 4]);
    expect([I.IOAS_ALLOC.size, I.IOAS_ALLOC.flags, I.IOAS_ALLOC.outIoasId]).toEqual([12, 4, 8]);
    expect(I.IOVA_RANGE.size).toBe(16);
    const r = I.IOAS_IOVA_RANGES;
    expect([r.size, r.numIovas, r.allowedIovas, r.outIovaAlignment]).toEqual([32, 8, 16, 24]);
    expect([I.IOAS_ALLOW_IOVAS.size, I.IOAS_ALLOW_IOVAS.allowedIovas]).toEqual([24, 16]);
    expect([I.IOAS_MAP.size, I.IOAS_MAP.userVa, I.IOAS_MAP.length, I.IOAS_MAP.iova]).toEqual([40, 16, 24, 32]);
    const c = I.IOAS_COPY;
    expect([c.size, c.dstIoasId, c.srcIoasId, c.length, c.dstIova, c.srcIova]).toEqual([40, 8, 12, 16, 24, 32]);
    expect([I.IOAS_UNMAP.size, I.IOAS_UNMAP.iova, I.IOAS_UNMAP.length]).toEqual([24, 8, 16]);
    expect([I.OPTION.size, I.OPTION.op, I.OPTION.objectId, I.OPTION.val64]).toEqual([24, 8, 12, 16]);
    expect([I.VFIO_IOAS.size, I.VFIO_IOAS.op]).toEqual([12, 8]);
    const h = I.HWPT_ALLOC;
    expect([h.size, h.outHwptId, h.dataType, h.dataUptr, h.faultId]).toEqual([48, 16, 24, 32, 40]);
    expect([I.HW_INFO_VTD.size, I.HW_INFO_VTD.capReg, I.HW_INFO_VTD.ecapReg]).toEqual([24, 8, 16]);
    const w = I.HW_INFO;
    expect([w.size, w.dataUptr, w.outDataType, w.outMaxPasidLog2, w.reserved, w.outCapabilities]).toEqual([
      40, 16, 24, 28, 29, 32,
    ]);
    expect([I.HWPT_SET_DIRTY_TRACKING.size, I.HWPT_GET_DIRTY_BITMAP.size, I.HWPT_GET_DIRTY_BITMAP.data]).toEqual([
      16, 48, 40,
    ]);
    expect([I.HWPT_INVALIDATE.size, I.HWPT_INVALIDATE.entryNum, I.FAULT_ALLOC.size]).toEqual([32, 24, 16]);
    expect([I.IOMMU_IOAS_MAP, I.IOMMU_FAULT_QUEUE_ALLOC]).toEqual([0x3b85, 0x3b8e]);
  });

  it("minimum sizes are offsetofend of main.c's last mandatory field", () => {
    const min = (cmd: number) => I.IOCTL_SIZES.get(cmd)?.minSize;
    expect(min(I.IOMMU_IOAS_ALLOC)).toBe(12);
    expect(min(I.IOMMU_GET_HW_INFO)).toBe(32);
    expect(min(I.IOMMU_HWPT_ALLOC)).toBe(24);
    expect(min(I.IOMMU_IOAS_IOVA_RANGES)).toBe(32);
    expect(I.IOCTL_SIZES.size).toBe(I.IOMMUFD_CMD_LAST - I.IOMMUFD_CMD_BASE + 1);
  });

  it("field codecs are little-endian at the offsets", () => {
    const b = new Uint8Array(16);
    I.wr32(b, 4, 0x11223344);
    I.wr64(b, 8, 0x0102030405060708n);
    expect([I.rd16(b, 4), I.rd32(b, 4), I.rd64(b, 8)]).toEqual([0x3344, 0x11223344, 0x0102030405060708n]);
    expect(b[8]).toBe(8);
  });
});
