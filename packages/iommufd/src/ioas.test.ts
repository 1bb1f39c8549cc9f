import { type Errno, isErrno } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { IommufdCtx } from "./iommufd-ctx.js";
import { ARM64, BASE, type Shape, testHost, X86 } from "./test-support/hosts.js";

const RW = { fixed: true, read: true, write: true };
const AUTO = { fixed: false, read: true, write: true };

function errnoOf(fn: () => unknown): Errno | "ok" {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (isErrno(e)) return e.code;
    throw e;
  }
}

/** The iommufd-map transcript's set-up: IOAS 1, device 2 bound, attached (HWPT 3). */
function mapSetup(shape: Shape) {
  const host = testHost(shape);
  const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
  const ioas = ctx.ioasAlloc();
  const idev = ctx.bindDevice(host.device(1));
  const hwpt = ctx.attachDevice(idev, ioas);
  return { host, ctx, ioas, idev, hwpt };
}

describe("object ids (xarray ALLOC1: lowest free id from 1)", () => {
  it("numbers IOAS, device and auto HWPT from one counter and reuses a destroyed id", () => {
    const { ctx, ioas, idev, hwpt } = mapSetup(X86);
    expect([ioas, idev.id, hwpt]).toEqual([1, 2, 3]);
    const ioas2 = ctx.ioasAlloc();
    expect(ioas2).toBe(4);
    ctx.destroy(ioas2);
    expect(ctx.ioasAlloc()).toBe(4);
  });

  it("IOMMU_DESTROY: ENOENT for an unknown id, EBUSY for an attached IOAS and a bound device", () => {
    const { ctx, ioas, idev } = mapSetup(X86);
    expect(errnoOf(() => ctx.destroy(999))).toBe("ENOENT");
    expect(errnoOf(() => ctx.destroy(ioas))).toBe("EBUSY");
    expect(errnoOf(() => ctx.destroy(idev.id))).toBe("EBUSY");
    ctx.detachDevice(idev);
    expect(errnoOf(() => ctx.destroy(ioas))).toBe("ok");
  });
});

describe.each([
  ["x86", X86, 0xfee0_0000n, 0x7f_ffff_f000n],
  ["arm64", ARM64, 0x0800_0000n, 0xffff_ffff_f000n],
])("IOAS_MAP rules on %s (iommufd-map transcript)", (_name, shape, msi, lastPage) => {
  it("answers every map of the scenario as Linux 6.12", () => {
    const { ctx, ioas, host } = mapSetup(shape);
    const map = (iova: bigint, len: bigint, va = BASE, flags = RW) =>
      errnoOf(() => ctx.ioasMap(ioas, va, len, iova, flags));
    expect(map(0x100000n, 0x4000n)).toBe("ok");
    expect(map(0x100000n, 0x4000n)).toBe("EEXIST");
    expect(map(0x102000n, 0x4000n, BASE + 0x10000n)).toBe("EEXIST");
    expect(map(0xff000n, 0x2000n, BASE + 0x10000n)).toBe("EEXIST");
    expect(map(0x104000n, 0x1000n, BASE + 0x4000n)).toBe("ok");
    expect(map(0x200000n, 0n)).toBe("EINVAL");
    expect(map(0x200800n, 0x1000n)).toBe("EINVAL");
    expect(map(0x200000n, 0x1800n)).toBe("EINVAL");
    expect(map(0x200000n, 0x1000n, BASE + 0x800n)).toBe("EINVAL");
    expect(map(0x201000n, 0x1000n, BASE, { fixed: true, read: false, write: false })).toBe("EINVAL");
    expect(map(0xffff_ffff_ffff_f000n, 0x2000n)).toBe("EOVERFLOW");
    expect(map(0x200000n, 0x1000n, 0xffff_ffff_ffff_f000n)).toBe("EOVERFLOW");
    expect(map(msi, 0x1000n)).toBe("EINVAL");
    expect(map(msi - 0x1000n, 0x2000n)).toBe("EINVAL");
    expect(map(msi - 0x1000n, 0x1000n)).toBe("ok");
    expect(map(msi + 0x100000n, 0x1000n)).toBe("ok");
    expect(map(lastPage, 0x1000n)).toBe("ok");
    expect(map(lastPage + 0x1000n, 0x1000n)).toBe("EINVAL");
    expect(map(0x300000n, 0x1000n, 0n)).toBe("EFAULT");
    expect(map(0x300000n, 0x1000n, 0x2000_0000_0000n)).toBe("EFAULT");
    expect(ctx.ioasMap(ioas, BASE + 0x20000n, 0x1000n, 0n, AUTO)).toBe(0x1000n);
    expect(ctx.ioasMap(ioas, BASE + 0x200000n, 0x200000n, 0n, AUTO)).toBe(0x200000n);
    // 16 + 4 + 4 + 4 + 4 + 4 + 2048 KiB, each mapping charged on its own; nothing to VmLck.
    expect(host.proc.locked).toEqual({ vmlckKb: 0, vmpinKb: 2084 });
  });

  it("UNMAP: part of a mapping, nothing, unaligned -> ENOENT; whole mappings and everything -> the total", () => {
    const { ctx, ioas, host } = mapSetup(shape);
    ctx.ioasMap(ioas, BASE, 0x4000n, 0x100000n, RW);
    ctx.ioasMap(ioas, BASE + 0x4000n, 0x1000n, 0x104000n, RW);
    const unmap = (iova: bigint, len: bigint) => errnoOf(() => ctx.ioasUnmap(ioas, iova, len));
    expect(unmap(0x101000n, 0x1000n)).toBe("ENOENT");
    expect(unmap(0x100000n, 0x2000n)).toBe("ENOENT");
    expect(unmap(0x102000n, 0x2000n)).toBe("ENOENT");
    expect(unmap(0x400000n, 0x1000n)).toBe("ENOENT");
    expect(ctx.ioasUnmap(ioas, 0x100000n, 0x5000n)).toBe(0x5000n);
    expect(unmap(0x100000n, 0x5000n)).toBe("ENOENT");
    expect(unmap(0x100001n, 0x1000n)).toBe("ENOENT");
    expect(unmap(0x100000n, 0n)).toBe("EINVAL");
    expect(ctx.ioasUnmap(ioas, 0n, (1n << 64n) - 1n)).toBe(0n);
    expect(host.proc.pinnedVm).toBe(0);
  });

  it("COPY: whole or page-aligned part of a source mapping, without pinning again", () => {
    const { ctx, ioas, host } = mapSetup(shape);
    const dst = ctx.ioasAlloc();
    ctx.ioasMap(ioas, BASE, 0x4000n, 0x100000n, RW);
    const pinned = host.proc.pinnedVm;
    const faults = host.proc.faults;
    expect(ctx.ioasCopy(dst, ioas, 0x100000n, 0x4000n, 0x500000n, RW)).toBe(0x500000n);
    expect(ctx.ioasCopy(dst, ioas, 0x101000n, 0x1000n, 0x600000n, RW)).toBe(0x600000n);
    expect(errnoOf(() => ctx.ioasCopy(dst, ioas, 0x100000n, 0x4000n, 0x500000n, RW))).toBe("EEXIST");
    expect(ctx.ioasCopy(dst, ioas, 0x100000n, 0x4000n, 0n, AUTO)).toBe(0x4000n);
    expect(errnoOf(() => ctx.ioasCopy(ioas, ioas, 0x100000n, 0x4000n, msi, RW))).toBe("EINVAL");
    expect(ctx.ioasCopy(ioas, ioas, 0x100000n, 0x4000n, 0x700000n, RW)).toBe(0x700000n);
    expect(errnoOf(() => ctx.ioasCopy(ioas, ioas, 0x100000n, 0x8000n, 0x800000n, RW))).toBe("ENOENT");
    expect(host.proc.pinnedVm).toBe(pinned);
    expect(host.proc.faults).toBe(faults);
    expect(ctx.ioasUnmap(ioas, 0n, (1n << 64n) - 1n)).toBe(0x8000n);
    expect(ctx.ioasUnmap(dst, 0n, (1n << 64n) - 1n)).toBe(0x9000n);
    expect(host.proc.pinnedVm).toBe(0);
  });
});

describe("IOVA ranges and alignment", () => {
  it("a fresh IOAS reports [0, U64_MAX] with alignment 1; the attached device's holes come and go", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const a = ctx.ioasAlloc();
    const b = ctx.ioasAlloc();
    const full = [{ isHole: true, start: 0n, last: (1n << 64n) - 1n }];
    expect(ctx.ioasIovaRanges(a)).toEqual({ ranges: full, alignment: 1n });
    const idev = ctx.bindDevice(host.device(1));
    expect(ctx.ioasIovaRanges(a).ranges).toEqual(full);
    expect(ctx.attachDevice(idev, a)).toBe(4);
    const x86 = [
      { isHole: true, start: 0n, last: 0xfedf_ffffn },
      { isHole: true, start: 0xfef0_0000n, last: 0x7f_ffff_ffffn },
    ];
    expect(ctx.ioasIovaRanges(a)).toEqual({ ranges: x86, alignment: 0x1000n });
    expect(ctx.replaceDevice(idev, a)).toBe(4);
    expect(ctx.replaceDevice(idev, b)).toBe(5);
    expect(ctx.ioasIovaRanges(a)).toEqual({ ranges: full, alignment: 1n });
    expect(ctx.ioasIovaRanges(b)).toEqual({ ranges: x86, alignment: 0x1000n });
    ctx.detachDevice(idev);
    expect(ctx.ioasIovaRanges(b)).toEqual({ ranges: full, alignment: 1n });
    // The freed auto-HWPT id 4 is the lowest free one again.
    expect(ctx.attachDevice(idev, a)).toBe(4);
  });

  it("a bare IOAS maps unaligned ranges lazily (no pin), and attach then refuses them (EADDRINUSE)", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    expect(ctx.ioasMap(ioas, BASE + 0x800n, 0x800n, 0x10800n, RW)).toBe(0x10800n);
    expect(host.proc.faults).toBe(0);
    const idev = ctx.bindDevice(host.device(1));
    expect(errnoOf(() => ctx.attachDevice(idev, ioas))).toBe("EADDRINUSE");
    expect(ctx.objects.all().map((o) => o.id)).toEqual([ioas, idev.id]);
    expect(host.iommu.groupOf(host.device(1))?.domain).toBe(host.iommu.groupOf(host.device(1))?.blockingDomain);
  });

  it("pins long-term: a read-only mapping's GUP unshares (FAULT_FLAG_UNSHARE, no zero page under DMA)", () => {
    const { ctx, ioas, host } = mapSetup(X86);
    ctx.ioasMap(ioas, BASE + 0x10000n, 0x2000n, 0x200000n, { fixed: true, read: true, write: false });
    expect(host.proc.unshares.length).toBeGreaterThan(0);
    expect(host.proc.unshares.every((u) => u)).toBe(true);
  });

  it("pins at attach what a bare IOAS mapped, and unpins at detach", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    ctx.ioasMap(ioas, BASE, 0x3000n, 0x10000n, RW);
    expect(host.proc.pinnedVm).toBe(0);
    const idev = ctx.bindDevice(host.device(1));
    ctx.attachDevice(idev, ioas);
    expect(host.proc.pinnedVm).toBe(3);
    const dom = [...host.driver.domains].find((d) => d.ptes.size > 0);
    expect(dom?.ptes.get(0x11000n)?.phys).toBeDefined();
    ctx.detachDevice(idev);
    expect(host.proc.pinnedVm).toBe(0);
  });
});

describe("ALLOW_IOVAS", () => {
  it("constrains the kernel's pick and makes an attach over a reserved region fail (EADDRINUSE)", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    ctx.ioasAllowIovas(ioas, [{ start: 0xfe00_0000n, last: 0xfeff_ffffn }]);
    expect(ctx.ioasMap(ioas, BASE, 0x1000n, 0n, AUTO)).toBe(0xfe00_0000n);
    const idev = ctx.bindDevice(host.device(1));
    expect(errnoOf(() => ctx.attachDevice(idev, ioas))).toBe("EADDRINUSE");
    ctx.ioasAllowIovas(ioas, [{ start: 0x1000_0000n, last: 0x1fff_ffffn }]);
    expect(ctx.attachDevice(idev, ioas)).toBe(3);
    expect(errnoOf(() => ctx.ioasAllowIovas(ioas, [{ start: 0xfe00_0000n, last: 0xfeff_ffffn }]))).toBe("EADDRINUSE");
    expect(errnoOf(() => ctx.ioasAllowIovas(ioas, [{ start: 5n, last: 5n }]))).toBe("EINVAL");
    expect(
      errnoOf(() =>
        ctx.ioasAllowIovas(ioas, [
          { start: 0n, last: 0x2000n },
          { start: 0x1000n, last: 0x3000n },
        ]),
      ),
    ).toBe("EINVAL");
    expect(ctx.ioas(ioas).iopt.allowed.all()).toEqual([{ start: 0x1000_0000n, last: 0x1fff_ffffn }]);
  });
});

describe("IOMMU_OPTION", () => {
  it("rlimit mode: EBUSY while objects exist, EPERM without CAP_SYS_RESOURCE; mode 1 charges VmLck", () => {
    const host = testHost(X86);
    host.proc.capIpcLock = false;
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    expect(ctx.optionRlimitMode(0, null)).toBe(0n);
    expect(errnoOf(() => ctx.optionRlimitMode(1, 1n))).toBe("EOPNOTSUPP");
    expect(errnoOf(() => ctx.optionRlimitMode(0, 2n))).toBe("EINVAL");
    ctx.capSysResource = false;
    expect(errnoOf(() => ctx.optionRlimitMode(0, 1n))).toBe("EPERM");
    ctx.capSysResource = true;
    expect(ctx.optionRlimitMode(0, 1n)).toBe(1n);
    const ioas = ctx.ioasAlloc();
    expect(errnoOf(() => ctx.optionRlimitMode(0, 0n))).toBe("EBUSY");
    const idev = ctx.bindDevice(host.device(1));
    ctx.attachDevice(idev, ioas);
    ctx.ioasMap(ioas, BASE, 0x2000n, 0x10000n, RW);
    expect(host.proc.locked).toEqual({ vmlckKb: 8, vmpinKb: 8 });
  });

  it("rlimit mode 0 charges the user (not VmLck) and refuses past RLIMIT_MEMLOCK with ENOMEM, no trace", () => {
    const host = testHost(ARM64);
    host.proc.capIpcLock = false;
    host.proc.rlimitMemlock = 0x3000n;
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    ctx.attachDevice(ctx.bindDevice(host.device(1)), ioas);
    ctx.ioasMap(ioas, BASE, 0x2000n, 0x10000n, RW);
    expect(errnoOf(() => ctx.ioasMap(ioas, BASE + 0x2000n, 0x2000n, 0x20000n, RW))).toBe("ENOMEM");
    expect(host.proc.locked).toEqual({ vmlckKb: 0, vmpinKb: 8 });
    expect(ctx.ioas(ioas).iopt.areas.size).toBe(1);
  });

  it("huge pages per IOAS: off maps PAGE_SIZE at a time; EINVAL once a domain holds mappings", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    expect(ctx.optionHugePages(ioas, null)).toBe(1n);
    expect(ctx.optionHugePages(ioas, 0n)).toBe(0n);
    expect(ctx.ioasIovaRanges(ioas).alignment).toBe(0x1000n);
    const idev = ctx.bindDevice(host.device(1));
    ctx.attachDevice(idev, ioas);
    ctx.ioasMap(ioas, BASE, 0x3000n, 0x10000n, RW);
    const dom = [...host.driver.domains].find((d) => d.mapCalls.length > 0)!;
    expect(dom.mapCalls.every((c) => c.pgsize === 0x1000n && c.pgcount === 1)).toBe(true);
    expect(errnoOf(() => ctx.optionHugePages(ioas, 0n))).toBe("ok");
    ctx.optionHugePages(ioas, 1n);
    expect(errnoOf(() => ctx.optionHugePages(ioas, 0n))).toBe("EINVAL");
    expect(errnoOf(() => ctx.optionHugePages(ioas, 2n))).toBe("EINVAL");
  });
});
