/**
 * VFIO's iommufd doors through the system-call surface, rule by rule (drivers/vfio/{device_cdev,group,
 * iommufd}.c, 6.12): which doors each module set has, the cdev's BIND/ATTACH/DETACH and their errnos,
 * the group blocked while a cdev is bound (and the bind refused while the group file is open), a group
 * joining an iommufd, and the compat container. A failed bind leaves no trace.
 */
import { ERRNO } from "@iommu/core";
import {
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_GET_INFO,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
} from "@vfio/uapi";
import { IOMMU_IOAS_ALLOC, IOMMU_VFIO_IOAS, IOMMU_VFIO_IOAS_GET } from "@vfio/uapi/iommufd";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createBoard } from "../boards/index.js";
import type { BoardOptions } from "../boards/types.js";
import { BoardSys } from "../sys/board-sys.js";
import type { ProcessMemory } from "../sys/user-memory.js";

function host(modset: BoardOptions["modset"], eduCount = 1) {
  const b = createBoard("x86-q35-vtd", { ...(modset ? { modset } : {}), eduCount });
  const sys = new BoardSys(b);
  const mem = sys.memory as ProcessMemory;
  /** ioctl with a struct of u32 words; returns the result and the words after the call. */
  const call = (fd: number, req: number, words: number[]) => {
    const p = mem.calloc(words.length * 4);
    sys.memory.write(p, new Uint8Array(new Uint32Array(words).buffer));
    const r = sys.ioctl(fd, req, p);
    return { ...r, out: [...new Uint32Array(sys.memory.read(p, words.length * 4).slice().buffer)] };
  };
  const bind = (cdev: number, iommufd: number) => call(cdev, VFIO_DEVICE_BIND_IOMMUFD, [16, 0, iommufd >>> 0, 0]);
  const attach = (cdev: number, pt: number) => call(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, [12, 0, pt]);
  const ioasAlloc = (fd: number) => call(fd, IOMMU_IOAS_ALLOC, [12, 0, 0]);
  const group = b.groupIdOf(b.edus[0]!);
  return { b, sys, mem, call, bind, attach, ioasAlloc, group };
}

describe("module sets: which VFIO doors exist", () => {
  it("debian (the default) has no /dev/iommu, no device cdev, no vfio-dev in sysfs", () => {
    const { sys } = host(undefined);
    expect(sys.open("/dev/iommu")).toEqual({ ret: -1, errno: ERRNO.ENOENT });
    expect(sys.open("/dev/vfio/devices/vfio0")).toEqual({ ret: -1, errno: ERRNO.ENOENT });
    expect(sys.readdir("/sys/bus/pci/devices/0000:00:01.0/vfio-dev").errno).toBe(ERRNO.ENOENT);
    expect(sys.readdir("/dev/vfio").names).not.toContain("devices");
  });

  it("iommufd: /dev/iommu, /dev/vfio/devices/vfioN found through sysfs vfio-dev/, /dev/vfio/vfio still type1", () => {
    const { sys, ioasAlloc } = host("iommufd", 2);
    expect(sys.readdir("/sys/bus/pci/devices/0000:00:02.0/vfio-dev").names).toEqual(["vfio1"]);
    expect(sys.stat("/dev/vfio/devices/vfio1").kind).toBe("chr");
    expect(sys.open("/dev/vfio/devices/vfio2").errno).toBe(ERRNO.ENOENT);
    const fd = sys.open("/dev/iommu").ret;
    expect(ioasAlloc(fd)).toMatchObject({ ret: 0, out: [12, 0, 1] });
    const c = sys.open("/dev/vfio/vfio").ret;
    expect(ioasAlloc(c).ret).toBe(-1);
  });

  it("iommufd-compat: /dev/vfio/vfio is an iommufd file (IOAS_ALLOC works on it)", () => {
    const { sys, ioasAlloc } = host("iommufd-compat");
    const c = sys.open("/dev/vfio/vfio").ret;
    expect(ioasAlloc(c)).toMatchObject({ ret: 0, out: [12, 0, 1] });
  });
});

describe("the device cdev (device_cdev.c)", () => {
  it("device ioctls are EINVAL before BIND_IOMMUFD; bind opens the device and returns its id", () => {
    const { sys, call, bind } = host("iommufd");
    const fd = sys.open("/dev/iommu").ret;
    const cdev = sys.open("/dev/vfio/devices/vfio0").ret;
    expect(call(cdev, VFIO_DEVICE_GET_INFO, [24, 0, 0, 0, 0, 0])).toMatchObject({ ret: -1, errno: ERRNO.EINVAL });
    expect(sys.pread(cdev, 4, 7n << 40n).errno).toBe(ERRNO.EINVAL);
    expect(call(cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, [8, 0]).errno).toBe(ERRNO.EINVAL);
    expect(bind(cdev, -1)).toMatchObject({ ret: -1, errno: ERRNO.EINVAL });
    expect(bind(cdev, fd)).toMatchObject({ ret: 0, out: [16, 0, fd, 1] });
    expect(bind(cdev, fd)).toMatchObject({ ret: -1, errno: ERRNO.EINVAL });
    expect(call(cdev, VFIO_DEVICE_GET_INFO, [24, 0, 0, 0, 0, 0])).toMatchObject({ ret: 0, out: [24, 2, 9, 5, 0, 0] });
  });

  it("ATTACH writes back the HWPT; a second attach replaces; DETACH twice is 0; flags or short argsz EINVAL", () => {
    const { sys, call, bind, attach, ioasAlloc } = host("iommufd");
    const fd = sys.open("/dev/iommu").ret;
    expect(ioasAlloc(fd).out[2]).toBe(1);
    expect(ioasAlloc(fd).out[2]).toBe(2);
    const cdev = sys.open("/dev/vfio/devices/vfio0").ret;
    expect(bind(cdev, fd).out[3]).toBe(3);
    expect(attach(cdev, 1)).toMatchObject({ ret: 0, out: [12, 0, 4] });
    expect(attach(cdev, 2)).toMatchObject({ ret: 0, out: [12, 0, 5] });
    expect(call(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, [12, 1, 1]).errno).toBe(ERRNO.EINVAL);
    expect(call(cdev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, [8, 0, 1]).errno).toBe(ERRNO.EINVAL);
    expect(attach(cdev, 999)).toMatchObject({ ret: -1, errno: ERRNO.ENOENT });
    expect(call(cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, [8, 0]).ret).toBe(0);
    expect(call(cdev, VFIO_DEVICE_DETACH_IOMMUFD_PT, [8, 0]).ret).toBe(0);
  });

  it("bind is EBUSY while the group file is open; a bound cdev keeps /dev/vfio/N from opening (EBUSY) until closed", () => {
    const { sys, bind, group } = host("iommufd");
    const fd = sys.open("/dev/iommu").ret;
    const cdev = sys.open("/dev/vfio/devices/vfio0").ret;
    const gfd = sys.open(`/dev/vfio/${group}`).ret;
    expect(bind(cdev, fd)).toMatchObject({ ret: -1, errno: ERRNO.EBUSY, out: [16, 0, fd, 0] });
    sys.close(gfd);
    expect(bind(cdev, fd).ret).toBe(0);
    expect(sys.open(`/dev/vfio/${group}`)).toEqual({ ret: -1, errno: ERRNO.EBUSY });
    sys.close(cdev);
    expect(sys.open(`/dev/vfio/${group}`).ret).toBeGreaterThan(0);
  });

  it("a failed bind leaves no trace: bad fds in any order, then a good bind gets the first id", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("ebadf", "notiommufd", "flags"), { maxLength: 5 }), (bad) => {
        const { sys, call, bind, group, b } = host("iommufd");
        const fd = sys.open("/dev/iommu").ret;
        const file = sys.open("/sys/kernel/iommu_groups/1/type").ret;
        const cdev = sys.open("/dev/vfio/devices/vfio0").ret;
        for (const k of bad) {
          const r =
            k === "ebadf"
              ? bind(cdev, 4242)
              : k === "notiommufd"
                ? bind(cdev, file)
                : call(cdev, VFIO_DEVICE_BIND_IOMMUFD, [16, 1, fd, 0]);
          expect(r.ret).toBe(-1);
          expect(b.iommu.groupById(group)!.ownerCount).toBe(0);
          expect(b.vfioPci.handle(b.edus[0]!.name)).toBeUndefined();
        }
        expect(bind(cdev, fd).out[3]).toBe(1);
      }),
      { numRuns: 20 },
    );
  });
});

describe("a VFIO group on an iommufd (group.c)", () => {
  it("SET_CONTAINER(iommufd fd) makes the compat IOAS; status VIABLE|CONTAINER_SET; GET_DEVICE_FD binds and attaches", () => {
    const { sys, mem, call, group, b } = host("iommufd");
    const fd = sys.open("/dev/iommu").ret;
    const gfd = sys.open(`/dev/vfio/${group}`).ret;
    expect(call(fd, IOMMU_VFIO_IOAS, [12, 0, IOMMU_VFIO_IOAS_GET])).toMatchObject({ ret: -1, errno: ERRNO.ENODEV });
    expect(call(gfd, VFIO_GROUP_SET_CONTAINER, [fd]).ret).toBe(0);
    expect(call(gfd, VFIO_GROUP_GET_STATUS, [8, 0]).out).toEqual([8, 3]);
    expect(call(fd, IOMMU_VFIO_IOAS, [12, 0, IOMMU_VFIO_IOAS_GET]).out[1]).toBe(1);
    // a second SET_CONTAINER is EINVAL; DMA ownership is taken only when a device opens
    expect(call(gfd, VFIO_GROUP_SET_CONTAINER, [fd]).errno).toBe(ERRNO.EINVAL);
    expect(b.iommu.groupById(group)!.ownerCount).toBe(0);
    const name = mem.calloc(16);
    sys.memory.write(name, new TextEncoder().encode(`${b.edus[0]!.name}\0`));
    const dfd = sys.ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, name).ret;
    expect(dfd).toBeGreaterThan(0);
    expect(b.iommu.groupById(group)!.ownerCount).toBe(1);
    // the device is attached to the compat IOAS: its reserved window is cut out of the IOAS's ranges
    const ctx = (sys.fds.get(fd) as { ctx: { ioasIovaRanges(id: number): { ranges: unknown[] } } }).ctx;
    expect(ctx.ioasIovaRanges(1).ranges).toHaveLength(2);
    // UNSET with an open device is 0 (the device keeps its own reference), closing the device unbinds
    expect(sys.ioctl(gfd, VFIO_GROUP_UNSET_CONTAINER, 0n).ret).toBe(0);
    sys.close(dfd);
    expect(b.iommu.groupById(group)!.ownerCount).toBe(0);
    expect(ctx.ioasIovaRanges(1).ranges).toHaveLength(1);
  });

  it("a group file closed before its device fd is released with the device: the iommufd link goes then", () => {
    const { sys, mem, call, group, b } = host("iommufd");
    const fd = sys.open("/dev/iommu").ret;
    const gfd = sys.open(`/dev/vfio/${group}`).ret;
    expect(call(gfd, VFIO_GROUP_SET_CONTAINER, [fd]).ret).toBe(0);
    const name = mem.calloc(16);
    sys.memory.write(name, new TextEncoder().encode(`${b.edus[0]!.name}\0`));
    const dfd = sys.ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, name).ret;
    sys.close(gfd);
    expect(b.vfioIommufd.linked(group)).toBe(true);
    sys.close(dfd);
    expect(b.vfioIommufd.linked(group)).toBe(false);
    expect(b.iommu.groupById(group)!.ownerCount).toBe(0);
  });
});
