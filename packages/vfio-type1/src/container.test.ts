/**
 * Containers and groups (vfio 6.1 container.c / vfio_main.c): the order SET_IOMMU needs, its errnos,
 * CHECK_EXTENSION, group status/ownership, SET/UNSET_CONTAINER through fds, and device users.
 */

import {
  GROUP_STATUS_SIZE,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  view,
} from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { BASE, makeHost, openContainer } from "./test-support/hosts.js";

const fdArg = (fd: number): Uint8Array => {
  const b = new Uint8Array(4);
  view(b).setInt32(0, fd, true);
  return b;
};

describe("container ioctls", () => {
  it("API version 0; extensions of type1 before and after SET_IOMMU", () => {
    const h = makeHost({ shape: "x86" });
    const c = h.vfio.openContainer(h.proc);
    expect(c.ioctl(VFIO_GET_API_VERSION)).toBe(0);
    const ext = (x: number) => c.ioctl(VFIO_CHECK_EXTENSION, x);
    expect([VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL, VFIO_UPDATE_VADDR].map(ext)).toEqual([1, 1, 1, 0]);
    expect([VFIO_SPAPR_TCE_IOMMU, VFIO_NOIOMMU_IOMMU, VFIO_DMA_CC_IOMMU, 12345].map(ext)).toEqual([0, 0, 0, 0]);
    expect(c.ioctl(VFIO_CHECK_EXTENSION, 1n)).toBe(1);
    h.vfio.openGroup(h.groupIds[0]!).setContainer(c);
    expect(c.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    expect([VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL, VFIO_UPDATE_VADDR].map(ext)).toEqual([1, 1, 1, 1]);
  });

  it("UPDATE_VADDR is offered only by a container with a backend: not before SET_IOMMU, not after the last group leaves", () => {
    // vfio_iommu_type1_check_extension answers `iommu && !has_emulated(iommu)`; without a backend the container
    // polls the driver with iommu NULL (Linux 6.1.192: container-lifecycle fixtures).
    const h = makeHost({ shape: "x86" });
    const c = h.vfio.openContainer(h.proc);
    const updateVaddr = () => c.ioctl(VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR);
    expect(updateVaddr()).toBe(0);
    const g = h.vfio.openGroup(h.groupIds[0]!);
    g.setContainer(c);
    expect(updateVaddr()).toBe(0); // a group, still no backend
    expect(c.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)).toBe(0);
    expect(updateVaddr()).toBe(1); // v1 backends offer it too
    g.unsetContainer();
    expect(c.backend).toBeNull();
    expect(updateVaddr()).toBe(0);
    expect(c.ioctl(VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL)).toBe(1);
  });

  it("SET_IOMMU: EINVAL without a group, ENODEV for other drivers' types, EINVAL for a non-IOMMU extension, EINVAL twice", () => {
    const h = makeHost({ shape: "x86" });
    const c = h.vfio.openContainer(h.proc);
    expect(c.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(-22);
    h.vfio.openGroup(h.groupIds[0]!).setContainer(c);
    expect(c.ioctl(VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU)).toBe(-19);
    expect(c.ioctl(VFIO_SET_IOMMU, VFIO_UNMAP_ALL)).toBe(-22); // type1 claims the extension, then open() refuses it
    expect(c.backend).toBeNull();
    expect(c.ioctl(VFIO_IOMMU_MAP_DMA, new Uint8Array(32))).toBe(-22); // no backend: generic EINVAL
    expect(c.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    expect(c.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(-22);
    expect(c.ioctl(0x3b7f, new Uint8Array(8))).toBe(-25); // the backend does not know it: ENOTTY
  });

  it("TYPE1_NESTING: the group attach fails in iommu_enable_nesting (EINVAL) and nothing stays set", () => {
    const h = makeHost({ shape: "arm64" });
    const c = h.vfio.openContainer(h.proc);
    h.vfio.openGroup(h.groupIds[0]!).setContainer(c);
    expect(c.ioctl(VFIO_SET_IOMMU, 6)).toBe(-22);
    expect(c.backend).toBeNull();
    expect([...h.fake!.domains].filter((d) => d.type === "unmanaged")).toHaveLength(0);
  });

  it("a container whose last group leaves is deprivileged and can take another type", () => {
    const h = makeHost({ shape: "x86" });
    const { container, group } = openContainer(h, VFIO_TYPE1_IOMMU);
    expect(container.backend!.v2).toBe(false);
    group.unsetContainer();
    group.setContainer(container);
    container.setIommu(VFIO_TYPE1v2_IOMMU);
    expect(container.backend!.v2).toBe(true);
  });
});

describe("group ioctls", () => {
  it("GET_STATUS: viable, then viable|container_set; argsz < 8 is EINVAL; short buffer EFAULT", () => {
    const h = makeHost({ shape: "x86" });
    const g = h.vfio.openGroup(h.groupIds[0]!);
    const st = new Uint8Array(GROUP_STATUS_SIZE).fill(0xa5);
    view(st).setUint32(0, 8, true);
    expect(g.ioctl(VFIO_GROUP_GET_STATUS, st)).toBe(0);
    expect(view(st).getUint32(4, true)).toBe(1);
    view(st).setUint32(0, 7, true);
    expect(g.ioctl(VFIO_GROUP_GET_STATUS, st)).toBe(-22);
    expect(g.ioctl(VFIO_GROUP_GET_STATUS, new Uint8Array(4))).toBe(-14);
    const c = h.vfio.openContainer(h.proc);
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, fdArg(c.fd))).toBe(0);
    view(st).setUint32(0, 8, true);
    g.ioctl(VFIO_GROUP_GET_STATUS, st);
    expect(view(st).getUint32(4, true)).toBe(3);
  });

  it("SET_CONTAINER: EBADF for a closed fd, EINVAL for a non-container fd or twice, EFAULT short arg", () => {
    const h = makeHost({ shape: "x86", devices: 2 });
    const g = h.vfio.openGroup(h.groupIds[0]!);
    const other = h.vfio.openGroup(h.groupIds[1]!);
    const c = h.vfio.openContainer(h.proc);
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, fdArg(99))).toBe(-9);
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, fdArg(-1))).toBe(-9);
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, fdArg(other.fd))).toBe(-22);
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, new Uint8Array(2))).toBe(-14);
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, fdArg(c.fd))).toBe(0);
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, fdArg(c.fd))).toBe(-22);
    expect(g.ioctl(0x3b7f, new Uint8Array(8))).toBe(-25);
  });

  it("a group whose DMA another owner holds is not viable and cannot join (EPERM)", () => {
    const h = makeHost({ shape: "x86" });
    const ig = h.iommu.groupById(h.groupIds[0]!)!;
    h.iommu.claimDmaOwner(ig, {});
    const g = h.vfio.openGroup(ig.id);
    expect(g.status()).toBe(0);
    const c = h.vfio.openContainer(h.proc);
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, fdArg(c.fd))).toBe(-1);
    expect(g.container).toBeNull();
  });

  it("UNSET_CONTAINER: EINVAL when not set, EBUSY while a device is open; close detaches", () => {
    const h = makeHost({ shape: "x86" });
    const g = h.vfio.openGroup(h.groupIds[0]!);
    expect(g.ioctl(VFIO_GROUP_UNSET_CONTAINER)).toBe(-22);
    expect(h.vfio.deviceAccess(g.id)).toBe(-22);
    const c = h.vfio.openContainer(h.proc);
    g.setContainer(c);
    expect(h.vfio.deviceGet(g.id)).toBe(-22); // no IOMMU backend yet
    c.setIommu(3);
    expect(h.vfio.deviceGet(g.id)).toBe(0);
    expect(g.ioctl(VFIO_GROUP_UNSET_CONTAINER)).toBe(-16);
    h.vfio.devicePut(g.id);
    c.mapDma({ vaddr: BASE, iova: 0n, size: 0x1000n, flags: 3 });
    expect(h.vfio.close(g.fd)).toBe(0);
    expect(c.backend).toBeNull();
    expect(h.proc.lockedVm).toBe(0);
    expect(h.iommu.groupById(h.groupIds[0]!)!.owner).toBeNull();
    expect(h.vfio.ioctl(g.fd, VFIO_GROUP_GET_STATUS, new Uint8Array(8))).toBe(-9);
  });

  it("closing a group with an open device keeps it attached until the device closes", () => {
    const h = makeHost({ shape: "x86" });
    const { container, group } = openContainer(h);
    expect(h.vfio.deviceGet(group.id)).toBe(0);
    group.close();
    expect(group.container).toBe(container);
    expect(() => h.vfio.openGroup(group.id)).toThrow(/EBUSY/);
    h.vfio.devicePut(group.id);
    expect(group.container).toBeNull();
    expect(container.backend).toBeNull();
    expect(h.vfio.openGroup(group.id).status()).toBe(1);
  });

  it("open: ENOENT for no such group, EBUSY when already open", () => {
    const h = makeHost({ shape: "x86" });
    expect(() => h.vfio.openGroup(42)).toThrow(/ENOENT/);
    h.vfio.openGroup(h.groupIds[0]!);
    expect(() => h.vfio.openGroup(h.groupIds[0]!)).toThrow(/EBUSY/);
  });
});
