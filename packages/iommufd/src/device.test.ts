import { msiPagesOf, prepareMsi } from "@dma-iommu/msi-cookie";
import { type Errno, isErrno } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { IommufdCtx } from "./iommufd-ctx.js";
import { ARM64, BASE, testHost, X86 } from "./test-support/hosts.js";

function errnoOf(fn: () => unknown): Errno | "ok" {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (isErrno(e)) return e.code;
    throw e;
  }
}

const ITS_DOORBELL = 0x809_0040n;

describe("iommufd_device_bind", () => {
  it("needs IOMMU_CAP_CACHE_COHERENCY (EINVAL) and isolated MSIs (EPERM unless allow_unsafe_interrupts)", () => {
    const noCc = testHost({ ...X86, caps: ["INTR_REMAP"] });
    const ctx1 = new IommufdCtx({ iommu: noCc.iommu, mm: noCc.proc });
    expect(errnoOf(() => ctx1.bindDevice(noCc.device(1)))).toBe("EINVAL");
    const noIr = testHost({ ...X86, caps: ["CACHE_COHERENCY"] });
    const ctx2 = new IommufdCtx({ iommu: noIr.iommu, mm: noIr.proc });
    expect(errnoOf(() => ctx2.bindDevice(noIr.device(1)))).toBe("EPERM");
    expect(ctx2.objects.all()).toEqual([]);
    const ctx3 = new IommufdCtx({ iommu: noIr.iommu, mm: noIr.proc, allowUnsafeInterrupts: true });
    expect(ctx3.bindDevice(noIr.device(1)).id).toBe(1);
    expect(ctx3.klog[0]).toMatch(/MSI interrupts are not secure/);
  });

  it("claims the group's DMA: another iommufd gets EPERM; unbinding the last device gives it back", () => {
    const host = testHost(X86);
    const a = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const b = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const idev = a.bindDevice(host.device(1));
    const group = host.iommu.groupOf(host.device(1))!;
    expect(group.owner).toBe(a);
    expect(errnoOf(() => b.bindDevice(host.device(1)))).toBe("EPERM");
    a.unbindDevice(idev);
    expect(group.owner).toBe(null);
    expect(group.domain).toBe(group.defaultDomain);
    expect(b.bindDevice(host.device(1)).id).toBe(1);
  });
});

describe("iommufd_device_attach (iommufd-basic transcript)", () => {
  it("ENOENT for an unknown id, EINVAL for a device id; the IOAS is busy while attached", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    const idev = ctx.bindDevice(host.device(1));
    expect(errnoOf(() => ctx.attachDevice(idev, 999))).toBe("ENOENT");
    expect(errnoOf(() => ctx.attachDevice(idev, idev.id))).toBe("EINVAL");
    expect(ctx.attachDevice(idev, ioas)).toBe(3);
    expect(errnoOf(() => ctx.destroy(ioas))).toBe("EBUSY");
    expect(errnoOf(() => ctx.destroy(3))).toBe("EBUSY");
    const group = host.iommu.groupOf(host.device(1))!;
    expect(group.domain).toBe(ctx.hwpt(3).domain);
    ctx.detachDevice(idev);
    expect(group.domain).toBe(group.blockingDomain);
    expect(ctx.objects.find(3)).toBeUndefined();
    expect(errnoOf(() => ctx.destroy(ioas))).toBe("ok");
  });

  it("devices of one group share the auto HWPT; each device's regions stay until it detaches", () => {
    const host = testHost(X86, () => "one");
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    const d1 = ctx.bindDevice(host.device(1));
    const d2 = ctx.bindDevice(host.device(2));
    expect(ctx.attachDevice(d1, ioas)).toBe(4);
    expect(ctx.attachDevice(d2, ioas)).toBe(4);
    expect(ctx.hwpt(4).users).toBe(3);
    const owners = () =>
      new Set(
        ctx
          .ioas(ioas)
          .iopt.reserved.all()
          .map((r) => r.owner),
      );
    expect(owners().size).toBe(3);
    ctx.detachDevice(d1);
    expect(owners().size).toBe(2);
    expect(host.iommu.groupOf(host.device(1))?.domain).toBe(ctx.hwpt(4).domain);
    ctx.detachDevice(d2);
    expect(ctx.objects.find(4)).toBeUndefined();
  });
});

describe("SW_MSI (arm64) and hardware MSI (x86)", () => {
  it("arm64: the auto HWPT's domain gets the MSI cookie; detach and re-attach lose the doorbell until MSI is re-armed", () => {
    const host = testHost(ARM64);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    const dev = host.device(1);
    const idev = ctx.bindDevice(dev);
    ctx.attachDevice(idev, ioas);
    expect(ctx.hwpt(3).msiCookie).toBe(true);
    const page = prepareMsi(host.iommu, dev, ITS_DOORBELL);
    expect(page?.iova).toBe(0x800_0000n);
    expect(ctx.hwpt(3).domain.driver.iovaToPhys?.(0x800_0040n)).toBe(ITS_DOORBELL);
    ctx.detachDevice(idev);
    ctx.attachDevice(idev, ioas);
    const dom = ctx.hwpt(3).domain;
    expect(msiPagesOf(dom)).toEqual([]);
    expect(dom.driver.iovaToPhys?.(0x800_0040n)).toBe(0n);
    // Re-arming MSI (VFIO_DEVICE_SET_IRQS) prepares the doorbell again, in the new domain.
    expect(prepareMsi(host.iommu, dev, ITS_DOORBELL)?.iova).toBe(0x800_0000n);
    expect(dom.driver.iovaToPhys?.(0x800_0040n)).toBe(ITS_DOORBELL);
    // The window stays reserved in the IOAS: mapping it while MSI is on is refused.
    const rw = { fixed: true, read: true, write: true };
    expect(errnoOf(() => ctx.ioasMap(ioas, BASE, 0x1000n, 0x800_0000n, rw))).toBe("EINVAL");
  });

  it("x86: a hardware MSI region, no cookie", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    ctx.attachDevice(ctx.bindDevice(host.device(1)), ioas);
    expect(ctx.hwpt(3).msiCookie).toBe(false);
    expect(ctx.hwpt(3).domain.iovaCookie).toBe(null);
  });
});

describe("IOMMU_GET_HW_INFO", () => {
  it("x86 answers VT-d's 24 bytes, arm64 type NONE", () => {
    const x = testHost(X86);
    const cx = new IommufdCtx({ iommu: x.iommu, mm: x.proc });
    const ix = cx.bindDevice(x.device(1));
    expect(cx.hwInfo(ix.id).type).toBe(1);
    expect(cx.hwInfo(ix.id).data.length).toBe(24);
    const a = testHost(ARM64);
    const ca = new IommufdCtx({ iommu: a.iommu, mm: a.proc });
    const ia = ca.bindDevice(a.device(1));
    expect(ca.hwInfo(ia.id)).toEqual({ type: 0, data: new Uint8Array(0), capabilities: 0n });
    expect(errnoOf(() => ca.hwInfo(99))).toBe("ENOENT");
  });
});

describe("close (iommufd_fops_release)", () => {
  it("a bound device keeps the file alive: objects stay usable until the last device is unbound", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    const spare = ctx.ioasAlloc();
    const idev = ctx.bindDevice(host.device(1));
    ctx.attachDevice(idev, ioas);
    ctx.ioasMap(ioas, BASE, 0x2000n, 0x10000n, { fixed: true, read: true, write: true });
    ctx.close();
    expect(ctx.objects.all().map((o) => o.id)).toEqual([ioas, spare, idev.id, 4]);
    expect(ctx.replaceDevice(idev, spare)).toBe(5);
    ctx.unbindDevice(idev);
    expect(ctx.objects.all()).toEqual([]);
    expect(host.proc.pinnedVm).toBe(0);
    expect(host.iommu.groupOf(host.device(1))?.owner).toBe(null);
  });

  it("without devices, close releases everything at once", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas = ctx.ioasAlloc();
    const idev = ctx.bindDevice(host.device(1));
    ctx.attachDevice(idev, ioas);
    ctx.ioasMap(ioas, BASE, 0x2000n, 0x10000n, { fixed: true, read: true, write: true });
    ctx.unbindDevice(idev);
    // The auto HWPT went with the device: nothing pinned, the mapping stays in the IOAS.
    expect(host.proc.pinnedVm).toBe(0);
    expect(ctx.ioas(ioas).iopt.areas.size).toBe(1);
    ctx.close();
    expect(ctx.objects.all()).toEqual([]);
  });
});
