// The kernel API VFIO calls (vfio's iommufd.c / group.c), driven as the iommufd-group-compat transcript's
// VFIO side does: what the host's group and cdev code must call, and the ids and bytes that result.
import { ERRNO } from "@iommu/core";
import { IOMMU_VFIO_IOAS, IOMMU_VFIO_IOAS_CLEAR, IOMMU_VFIO_IOAS_GET, IOMMU_VFIO_IOAS_SET } from "@vfio/uapi/iommufd";
import { describe, expect, it } from "vitest";
import { IommufdCtx } from "./iommufd-ctx.js";
import { iommufdIoctl } from "./iommufd-ioctl.js";
import { BASE, testHost, X86 } from "./test-support/hosts.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const vfioIoas = (op: number, id = 0) => {
  const b = new Uint8Array(12);
  b.set([12, 0, 0, 0, id, 0, 0, 0, op, 0]);
  return b;
};

describe("a VFIO group with an iommufd as its container (iommufd-group-compat)", () => {
  it("compat IOAS at SET_CONTAINER, bind + attach at GET_DEVICE_FD, ids reused after the group lets go", () => {
    const host = testHost(X86);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioctl = (b: Uint8Array) => iommufdIoctl(ctx, IOMMU_VFIO_IOAS, b);
    let b = vfioIoas(IOMMU_VFIO_IOAS_GET);
    expect(ioctl(b)).toBe(-ERRNO.ENODEV);
    expect(hex(b)).toBe("0c0000000000000000000000");
    // VFIO_GROUP_SET_CONTAINER(iommufd fd): the group holds the file, iommufd_vfio_compat_ioas_create.
    ctx.get();
    ctx.vfioCompatIoasCreate();
    b = vfioIoas(IOMMU_VFIO_IOAS_GET);
    expect(ioctl(b)).toBe(0);
    expect(hex(b)).toBe("0c0000000100000000000000");
    // VFIO_GROUP_GET_DEVICE_FD: vfio_df_iommufd_bind, then the compat attach to the compat IOAS.
    const idev = ctx.bindDevice(host.device(1));
    expect(ctx.attachDevice(idev, ctx.vfioIoasGet())).toBe(3);
    expect(ctx.ioasIovaRanges(1).ranges.length).toBe(2);
    ctx.ioasMap(1, BASE, 0x4000n, 0x100000n, { fixed: true, read: true, write: true });
    expect(ctx.ioasAlloc()).toBe(4);
    b = vfioIoas(IOMMU_VFIO_IOAS_SET, 4);
    expect(ioctl(b)).toBe(0);
    expect(hex(b)).toBe("0c0000000400000001000000");
    b = vfioIoas(IOMMU_VFIO_IOAS_GET);
    expect(ioctl(b)).toBe(0);
    expect(hex(b)).toBe("0c0000000400000000000000");
    // device close (vfio_iommufd_physical_unbind: detach, unbind); the compat IOAS 1 stays a user object.
    ctx.unbindDevice(idev);
    expect(ctx.objects.all().map((o) => o.id)).toEqual([1, 4]);
    // The cdev path afterwards: bind gets id 2 again, attach to IOAS 4 gets HWPT 3 again.
    const again = ctx.bindDevice(host.device(1));
    expect(again.id).toBe(2);
    expect(ctx.attachDevice(again, 4)).toBe(3);
    expect(host.iommu.groupOf(host.device(1))?.domain?.driver.iovaToPhys?.(0x100000n)).toBe(0n);
    b = vfioIoas(IOMMU_VFIO_IOAS_CLEAR);
    expect(ioctl(b)).toBe(0);
    expect(hex(b)).toBe("0c0000000000000002000000");
    // close(iommufd) while the group still holds the file: nothing is released until it lets go.
    ctx.unbindDevice(again);
    ctx.close();
    expect(ctx.objects.all().map((o) => o.id)).toEqual([1, 4]);
    ctx.put();
    expect(ctx.objects.all()).toEqual([]);
  });
});
