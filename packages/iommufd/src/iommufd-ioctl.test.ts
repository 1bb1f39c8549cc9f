import { ERRNO } from "@iommu/core";
import * as U from "@vfio/uapi/iommufd";
import { describe, expect, it } from "vitest";
import { IommufdCtx } from "./iommufd-ctx.js";
import { iommufdIoctl } from "./iommufd-ioctl.js";
import { ARM64, BASE, testHost, X86 } from "./test-support/hosts.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** A struct buffer as the probe builds it: `size` first, fields at offsets, `tail` bytes past `size`. */
function struct(size: number, fields: [off: number, bytes: 4 | 8 | 2, value: number | bigint][] = [], buf = 256) {
  const b = new Uint8Array(buf);
  U.wr32(b, 0, size);
  for (const [off, w, v] of fields) {
    const dv = new DataView(b.buffer);
    if (w === 2) dv.setUint16(off, Number(v), true);
    else if (w === 4) dv.setUint32(off, Number(v), true);
    else dv.setBigUint64(off, BigInt(v), true);
  }
  return b;
}

/** The probe's `raw`: the first `size` bytes after the call, with user pointers zeroed. */
function raw(b: Uint8Array, size: number, pointers: number[] = []) {
  const out = b.slice(0, Math.min(size, 128));
  for (const p of pointers) out.fill(0, p, p + 8);
  return hex(out);
}

function setup(shape = X86) {
  const host = testHost(shape);
  const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
  return { host, ctx, ioctl: (cmd: number, b: Uint8Array) => iommufdIoctl(ctx, cmd, b) };
}

describe("struct size rules (iommufd-basic transcript)", () => {
  it("size below the minimum EINVAL, zero tail accepted, non-zero tail or > PAGE_SIZE E2BIG", () => {
    const { ioctl } = setup();
    let b = struct(12);
    expect(ioctl(U.IOMMU_IOAS_ALLOC, b)).toBe(0);
    expect(raw(b, 12)).toBe("0c0000000000000001000000");
    b = struct(8);
    expect(ioctl(U.IOMMU_IOAS_ALLOC, b)).toBe(-ERRNO.EINVAL);
    expect(raw(b, 12)).toBe("080000000000000000000000");
    b = struct(16);
    expect(ioctl(U.IOMMU_IOAS_ALLOC, b)).toBe(0);
    expect(raw(b, 16)).toBe("10000000000000000200000000000000");
    b = struct(16);
    b.fill(0xff, 16);
    b.fill(0xff, 12, 16);
    expect(ioctl(U.IOMMU_IOAS_ALLOC, b)).toBe(-ERRNO.E2BIG);
    expect(raw(b, 16)).toBe("100000000000000000000000ffffffff");
    b = struct(0x2000, [], 0x2000);
    expect(ioctl(U.IOMMU_IOAS_ALLOC, b)).toBe(-ERRNO.E2BIG);
    expect(ioctl(U.IOMMU_IOAS_ALLOC, new Uint8Array(2))).toBe(-ERRNO.EFAULT);
    expect(ioctl(U.IOMMU_IOAS_ALLOC | 0x4000_0000, struct(12))).toBe(-ERRNO.ENOTTY);
    expect(ioctl(0x3b7f, struct(12))).toBe(-ERRNO.ENOTTY);
  });
});

describe("IOMMU_IOAS_IOVA_RANGES bytes", () => {
  it("writes the ranges to the user array and num_iovas; EMSGSIZE with the needed count", () => {
    const { host, ctx, ioctl } = setup();
    const ioas = ctx.ioasAlloc();
    const arr = BASE + 0x1000_0000n;
    const ranges = (n: number) =>
      struct(32, [
        [4, 4, ioas],
        [8, 4, n],
        [16, 8, arr],
      ]);
    let b = ranges(16);
    expect(ioctl(U.IOMMU_IOAS_IOVA_RANGES, b)).toBe(0);
    expect(raw(b, 32, [16])).toBe("2000000001000000010000000000000000000000000000000100000000000000");
    expect(hex(host.proc.readUser(arr, 16))).toBe("0000000000000000ffffffffffffffff");
    ctx.attachDevice(ctx.bindDevice(host.device(1)), ioas);
    b = ranges(1);
    expect(ioctl(U.IOMMU_IOAS_IOVA_RANGES, b)).toBe(-ERRNO.EMSGSIZE);
    expect(raw(b, 32, [16])).toBe("2000000001000000020000000000000000000000000000000010000000000000");
    expect(hex(host.proc.readUser(arr, 16))).toBe("0000000000000000ffffdffe00000000");
    b = ranges(16);
    expect(ioctl(U.IOMMU_IOAS_IOVA_RANGES, b)).toBe(0);
    expect(hex(host.proc.readUser(arr + 16n, 16))).toBe("0000f0fe00000000ffffffff7f000000");
  });
});

describe("IOMMU_IOAS_MAP / UNMAP / COPY bytes (iommufd-map transcript)", () => {
  it("answers as the x86 transcript, raw bytes included", () => {
    const { host, ctx, ioctl } = setup();
    const ioas = ctx.ioasAlloc();
    ctx.attachDevice(ctx.bindDevice(host.device(1)), ioas);
    const map = (flags: number, va: bigint, len: bigint, iova: bigint) =>
      struct(40, [
        [4, 4, flags],
        [8, 4, ioas],
        [16, 8, va],
        [24, 8, len],
        [32, 8, iova],
      ]);
    let b = map(7, BASE, 0x4000n, 0x100000n);
    expect(ioctl(U.IOMMU_IOAS_MAP, b)).toBe(0);
    expect(raw(b, 40)).toBe("28000000070000000100000000000000000000000010000000400000000000000000100000000000");
    b = map(6, BASE + 0x200000n, 0x200000n, 0n);
    expect(ioctl(U.IOMMU_IOAS_MAP, b)).toBe(0);
    expect(raw(b, 40)).toBe("28000000060000000100000000000000000020000010000000002000000000000000200000000000");
    b = map(7, BASE, 0x2000n, 0xffff_ffff_ffff_f000n);
    expect(ioctl(U.IOMMU_IOAS_MAP, b)).toBe(-ERRNO.EOVERFLOW);
    b = map(0x17, BASE, 0x1000n, 0x300000n);
    expect(ioctl(U.IOMMU_IOAS_MAP, b)).toBe(-ERRNO.EOPNOTSUPP);
    const unmap = (iova: bigint, len: bigint) =>
      struct(24, [
        [4, 4, ioas],
        [8, 8, iova],
        [16, 8, len],
      ]);
    b = unmap(0x101000n, 0x1000n);
    expect(ioctl(U.IOMMU_IOAS_UNMAP, b)).toBe(-ERRNO.ENOENT);
    expect(raw(b, 24)).toBe("180000000100000000101000000000000010000000000000");
    const dst = ctx.ioasAlloc();
    b = struct(40, [
      [4, 4, 6],
      [8, 4, dst],
      [12, 4, ioas],
      [16, 8, 0x4000n],
      [24, 8, 0n],
      [32, 8, 0x100000n],
    ]);
    expect(ioctl(U.IOMMU_IOAS_COPY, b)).toBe(0);
    expect(raw(b, 40)).toBe("28000000060000000400000001000000004000000000000000400000000000000000100000000000");
    b = unmap(0n, (1n << 64n) - 1n);
    expect(ioctl(U.IOMMU_IOAS_UNMAP, b)).toBe(0);
    // 0x4000 at 0x100000 and the 2 MiB auto mapping.
    expect(raw(b, 24)).toBe("180000000100000000000000000000000040200000000000");
    b = unmap(0n, (1n << 64n) - 1n);
    expect(ioctl(U.IOMMU_IOAS_UNMAP, b)).toBe(0);
    expect(raw(b, 24)).toBe("180000000100000000000000000000000000000000000000");
  });
});

describe("IOMMU_GET_HW_INFO bytes", () => {
  it("x86: VT-d data (24 bytes) copied and data_len written back, also for data_len 0", () => {
    const { host, ctx, ioctl } = setup(X86);
    const idev = ctx.bindDevice(host.device(1));
    const data = BASE + 0x2000_0000n;
    host.proc.writeUser(data, new Uint8Array(256).fill(0xee));
    let b = struct(40, [
      [8, 4, idev.id],
      [12, 4, 256],
      [16, 8, data],
    ]);
    expect(ioctl(U.IOMMU_GET_HW_INFO, b)).toBe(0);
    expect(raw(b, 40, [16])).toBe("28000000000000000100000018000000000000000000000001000000000000000000000000000000");
    expect(hex(host.proc.readUser(data, 24))).toBe("0100000000000000060226228c00d2004a0ff00000000000");
    expect(host.proc.readUser(data + 24n, 232).every((x) => x === 0)).toBe(true);
    b = struct(40, [
      [8, 4, idev.id],
      [12, 4, 0],
      [16, 8, data],
    ]);
    expect(ioctl(U.IOMMU_GET_HW_INFO, b)).toBe(0);
    expect(U.rd32(b, 12)).toBe(24);
    expect(
      ioctl(
        U.IOMMU_GET_HW_INFO,
        struct(40, [
          [4, 4, 1],
          [8, 4, idev.id],
        ]),
      ),
    ).toBe(-ERRNO.EOPNOTSUPP);
    expect(ioctl(U.IOMMU_GET_HW_INFO, struct(40, [[8, 4, 99]]))).toBe(-ERRNO.ENOENT);
  });

  it("arm64: no hw_info (type 0, data_len 0)", () => {
    const { host, ctx, ioctl } = setup(ARM64);
    const idev = ctx.bindDevice(host.device(1));
    const b = struct(40, [
      [8, 4, idev.id],
      [12, 4, 0],
    ]);
    expect(ioctl(U.IOMMU_GET_HW_INFO, b)).toBe(0);
    expect(raw(b, 40)).toBe("28000000000000000100000000000000000000000000000000000000000000000000000000000000");
  });
});

describe("IOMMU_OPTION and IOMMU_VFIO_IOAS bytes", () => {
  it("writes only val64; rlimit mode EBUSY once an object exists; VFIO_IOAS get ENODEV without a compat IOAS", () => {
    const { ctx, ioctl } = setup();
    const opt = (id: number, op: number, obj: number, val = 0n) =>
      struct(24, [
        [4, 4, id],
        [8, 2, op],
        [12, 4, obj],
        [16, 8, val],
      ]);
    let b = opt(U.IOMMU_OPTION_RLIMIT_MODE, U.IOMMU_OPTION_OP_SET, 0, 1n);
    expect(ioctl(U.IOMMU_OPTION, b)).toBe(0);
    b = opt(U.IOMMU_OPTION_RLIMIT_MODE, U.IOMMU_OPTION_OP_GET, 0, 77n);
    expect(ioctl(U.IOMMU_OPTION, b)).toBe(0);
    expect(U.rd64(b, 16)).toBe(1n);
    const ioas = ctx.ioasAlloc();
    expect(ioctl(U.IOMMU_OPTION, opt(U.IOMMU_OPTION_RLIMIT_MODE, U.IOMMU_OPTION_OP_SET, 0, 0n))).toBe(-ERRNO.EBUSY);
    b = opt(U.IOMMU_OPTION_HUGE_PAGES, U.IOMMU_OPTION_OP_GET, ioas);
    expect(ioctl(U.IOMMU_OPTION, b)).toBe(0);
    expect(U.rd64(b, 16)).toBe(1n);
    expect(ioctl(U.IOMMU_OPTION, opt(U.IOMMU_OPTION_HUGE_PAGES, 7, 99))).toBe(-ERRNO.ENOENT);
    expect(ioctl(U.IOMMU_OPTION, opt(U.IOMMU_OPTION_HUGE_PAGES, 7, ioas))).toBe(-ERRNO.EOPNOTSUPP);
    expect(ioctl(U.IOMMU_OPTION, opt(9, U.IOMMU_OPTION_OP_GET, 0))).toBe(-ERRNO.EOPNOTSUPP);
    const v = (op: number, id = 0) =>
      struct(12, [
        [4, 4, id],
        [8, 2, op],
      ]);
    expect(ioctl(U.IOMMU_VFIO_IOAS, v(U.IOMMU_VFIO_IOAS_GET))).toBe(-ERRNO.ENODEV);
    expect(ioctl(U.IOMMU_VFIO_IOAS, v(U.IOMMU_VFIO_IOAS_SET, ioas))).toBe(0);
    b = v(U.IOMMU_VFIO_IOAS_GET);
    expect(ioctl(U.IOMMU_VFIO_IOAS, b)).toBe(0);
    expect(U.rd32(b, 4)).toBe(ioas);
    expect(ioctl(U.IOMMU_VFIO_IOAS, v(U.IOMMU_VFIO_IOAS_CLEAR))).toBe(0);
    expect(ioctl(U.IOMMU_VFIO_IOAS, v(U.IOMMU_VFIO_IOAS_GET))).toBe(-ERRNO.ENODEV);
  });
});

describe("IOMMU_HWPT_ALLOC bytes", () => {
  it("allocates a manual HWPT the device can attach to; it survives detach and is destroyed by id", () => {
    const { host, ctx, ioctl } = setup(ARM64);
    const ioas = ctx.ioasAlloc();
    const idev = ctx.bindDevice(host.device(1));
    const alloc = (flags: number, dev: number, pt: number, dataType = 0, dataLen = 0) =>
      struct(48, [
        [4, 4, flags],
        [8, 4, dev],
        [12, 4, pt],
        [24, 4, dataType],
        [28, 4, dataLen],
      ]);
    expect(ioctl(U.IOMMU_HWPT_ALLOC, alloc(0, idev.id, ioas, 0, 8))).toBe(-ERRNO.EINVAL);
    expect(ioctl(U.IOMMU_HWPT_ALLOC, alloc(U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, idev.id, ioas))).toBe(-ERRNO.EOPNOTSUPP);
    expect(ioctl(U.IOMMU_HWPT_ALLOC, alloc(0, idev.id, idev.id))).toBe(-ERRNO.EINVAL);
    const b = alloc(0, idev.id, ioas);
    expect(ioctl(U.IOMMU_HWPT_ALLOC, b)).toBe(0);
    const hwpt = U.rd32(b, 16);
    expect(hwpt).toBe(3);
    // A manual HWPT loads the IOAS at once: its alignment and aperture apply before any attach.
    expect(ctx.ioasIovaRanges(ioas).alignment).toBe(0x1000n);
    expect(ctx.attachDevice(idev, hwpt)).toBe(hwpt);
    expect(ctx.ioasIovaRanges(ioas).ranges.length).toBe(2);
    expect(ioctl(U.IOMMU_DESTROY, struct(8, [[4, 4, hwpt]]))).toBe(-ERRNO.EBUSY);
    ctx.detachDevice(idev);
    expect(ctx.objects.find(hwpt)?.type).toBe("hwpt_paging");
    expect(ioctl(U.IOMMU_DESTROY, struct(8, [[4, 4, hwpt]]))).toBe(0);
    expect(ctx.ioasIovaRanges(ioas).alignment).toBe(1n);
  });

  it("iommufd_hwpt_paging_alloc valid_flags (6.12.117): FAULT_ID_VALID on an IOAS is EOPNOTSUPP before any fault id is read", () => {
    for (const arch of [ARM64, X86]) {
      const { host, ctx, ioctl } = setup(arch);
      const ioas = ctx.ioasAlloc();
      const idev = ctx.bindDevice(host.device(1));
      const b = struct(48, [
        [4, 4, U.IOMMU_HWPT_FAULT_ID_VALID],
        [8, 4, idev.id],
        [12, 4, ioas],
      ]);
      expect(ioctl(U.IOMMU_HWPT_ALLOC, b)).toBe(-ERRNO.EOPNOTSUPP);
      expect(
        ioctl(
          U.IOMMU_HWPT_ALLOC,
          struct(48, [
            [4, 4, 0x8000_0000],
            [8, 4, idev.id],
            [12, 4, ioas],
          ]),
        ),
      ).toBe(-ERRNO.EOPNOTSUPP);
      // no trace: the next object id is the one a failed alloc would have taken
      expect(ctx.ioasAlloc()).toBe(idev.id + 1);
    }
  });

  it("iommufd_hwpt_alloc: a pt_id that names no object is EINVAL (the lookup's ENOENT is not passed on); an unknown dev_id stays ENOENT", () => {
    const { host, ctx, ioctl } = setup();
    const ioas = ctx.ioasAlloc();
    const idev = ctx.bindDevice(host.device(1));
    const alloc = (flags: number, devId: number, ptId: number) =>
      struct(48, [
        [4, 4, flags],
        [8, 4, devId],
        [12, 4, ptId],
      ]);
    const hwpt = alloc(0, idev.id, ioas);
    expect(ioctl(U.IOMMU_HWPT_ALLOC, hwpt)).toBe(0);
    const hwptId = U.rd32(hwpt, 16);
    expect(ioctl(U.IOMMU_DESTROY, struct(8, [[4, 4, hwptId]]))).toBe(0);
    // the destroyed HWPT's id, and an id never handed out: EINVAL whatever the flags
    expect(ioctl(U.IOMMU_HWPT_ALLOC, alloc(0, idev.id, hwptId))).toBe(-ERRNO.EINVAL);
    expect(ioctl(U.IOMMU_HWPT_ALLOC, alloc(3, idev.id, 99))).toBe(-ERRNO.EINVAL);
    // the device object as pt_id: found, but neither an IOAS nor a HWPT
    expect(ioctl(U.IOMMU_HWPT_ALLOC, alloc(0, idev.id, idev.id))).toBe(-ERRNO.EINVAL);
    // dev_id is looked up first, as a device: ENOENT even when pt_id is unknown too
    expect(ioctl(U.IOMMU_HWPT_ALLOC, alloc(0, 99, 98))).toBe(-ERRNO.ENOENT);
    expect(ioctl(U.IOMMU_HWPT_ALLOC, alloc(0, ioas, ioas))).toBe(-ERRNO.ENOENT);
  });
});
