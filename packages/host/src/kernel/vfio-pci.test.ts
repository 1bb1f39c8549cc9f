/**
 * vfio-pci's device references: an open device fd is one more user of its group's container
 * (6.1 vfio_device_assign_container), taken and dropped by `VfioPciHost` itself, so
 * VFIO_GROUP_UNSET_CONTAINER fails with EBUSY while a device is open, whichever path opened it.
 */
import { ERRNO } from "@iommu/core";
import * as U from "@vfio/type1";
import { describe, expect, it } from "vitest";
import { type Board, createBoard } from "../boards/index.js";
import { BoardSys } from "../sys/board-sys.js";
import type { ProcessMemory } from "../sys/user-memory.js";

const EBUSY = ERRNO.EBUSY;
const users = (b: Board, groupId: number) => b.vfio.group(groupId)!.containerUsers;

describe.each(["x86-q35-vtd", "arm64-virt-smmuv3"] as const)("device references on %s", (name) => {
  it("openDevice without a container with an IOMMU is EINVAL and takes no reference", () => {
    const b = createBoard(name);
    const g = b.groupIdOf(b.edus[0]!);
    b.vfio.openGroup(g);
    expect(() => b.vfioPci.openDevice(g, b.edus[0]!.name)).toThrow(expect.objectContaining({ code: "EINVAL" }));
    expect(users(b, g)).toBe(0);
    expect(b.vfioPci.openDevicesOf(g)).toEqual([]);
  });

  it("replay path (VFIO_GROUP_GET_DEVICE_FD through the sys adapter): counted once, dropped once", () => {
    const b = createBoard(name);
    const sys = new BoardSys(b);
    const g = b.groupIdOf(b.edus[0]!);
    const c = sys.open("/dev/vfio/vfio").ret;
    const gfd = sys.open(`/dev/vfio/${g}`).ret;
    const arg = (sys.memory as ProcessMemory).calloc(4);
    sys.memory.write(arg, new Uint8Array(new Int32Array([c]).buffer));
    expect(sys.ioctl(gfd, U.VFIO_GROUP_SET_CONTAINER, arg).ret).toBe(0);
    expect(sys.ioctl(c, U.VFIO_SET_IOMMU, BigInt(U.VFIO_TYPE1v2_IOMMU)).ret).toBe(0);
    const name0 = (sys.memory as ProcessMemory).calloc(16);
    sys.memory.write(name0, new TextEncoder().encode(`${b.edus[0]!.name}\0`));
    const dfd = sys.ioctl(gfd, U.VFIO_GROUP_GET_DEVICE_FD, name0).ret;
    expect(dfd).toBeGreaterThan(0);
    expect(users(b, g)).toBe(2);
    expect(sys.ioctl(gfd, U.VFIO_GROUP_UNSET_CONTAINER, 0n)).toEqual({ ret: -1, errno: EBUSY });
    expect(sys.close(dfd).ret).toBe(0);
    expect(users(b, g)).toBe(1);
    expect(sys.ioctl(gfd, U.VFIO_GROUP_UNSET_CONTAINER, 0n)).toEqual({ ret: 0, errno: 0 });
  });
});
