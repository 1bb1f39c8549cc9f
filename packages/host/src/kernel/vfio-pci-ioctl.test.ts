/**
 * vfio-pci's device ioctls a VMM asks first (QEMU 7.2's vfio_get_device / vfio_pci_reset): GET_INFO as
 * 6.1's vfio_pci_ioctl_get_info answers for edu, RESET with no reset method, the hot reset probe on a root bus.
 */
import { ERRNO } from "@iommu/core";
import { VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU } from "@vfio/type1";
import { VFIO_DEVICE_GET_INFO, VFIO_DEVICE_RESET } from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { createBoard } from "../boards/index.js";
import { BoardSys } from "../sys/board-sys.js";
import type { ProcessMemory } from "../sys/user-memory.js";
import { VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, VFIO_DEVICE_PCI_HOT_RESET } from "./vfio-pci-ioctl.js";

function deviceFd(name: "x86-q35-vtd" | "arm64-virt-smmuv3") {
  const b = createBoard(name);
  const sys = new BoardSys(b);
  const mem = sys.memory as ProcessMemory;
  const c = sys.open("/dev/vfio/vfio").ret;
  const g = sys.open(`/dev/vfio/${b.groupIdOf(b.edus[0]!)}`).ret;
  const arg = mem.calloc(4);
  mem.write(arg, new Uint8Array(new Int32Array([c]).buffer));
  expect(sys.ioctl(g, VFIO_GROUP_SET_CONTAINER, arg).ret).toBe(0);
  expect(sys.ioctl(c, VFIO_SET_IOMMU, BigInt(VFIO_TYPE1v2_IOMMU)).ret).toBe(0);
  const dev = mem.calloc(16);
  mem.write(dev, new TextEncoder().encode(`${b.edus[0]!.name}\0`));
  const fd = sys.ioctl(g, 0x3b6a, dev).ret;
  expect(fd).toBeGreaterThan(0);
  return { sys, mem, fd };
}

const u32s = (...v: number[]) => new Uint8Array(new Uint32Array(v).buffer);

describe.each(["x86-q35-vtd", "arm64-virt-smmuv3"] as const)("vfio-pci device ioctls on %s", (board) => {
  it("GET_INFO: PCI without RESET, 9 regions, 5 irqs, no capability (cap_offset 0)", () => {
    const { sys, mem, fd } = deviceFd(board);
    const arg = mem.calloc(24);
    mem.write(arg, u32s(24, 0, 0, 0, 0xdeadbeef, 0));
    expect(sys.ioctl(fd, VFIO_DEVICE_GET_INFO, arg)).toEqual({ ret: 0, errno: 0 });
    expect(Array.from(new Uint32Array(mem.read(arg, 20).slice().buffer))).toEqual([24, 2, 9, 5, 0]);
  });

  it("GET_INFO with argsz below 16 is EINVAL and writes nothing", () => {
    const { sys, mem, fd } = deviceFd(board);
    const arg = mem.calloc(16);
    mem.write(arg, u32s(15, 7, 7, 7));
    expect(sys.ioctl(fd, VFIO_DEVICE_GET_INFO, arg)).toEqual({ ret: -1, errno: ERRNO.EINVAL });
    expect(Array.from(new Uint32Array(mem.read(arg, 16).slice().buffer))).toEqual([15, 7, 7, 7]);
  });

  it("RESET is EINVAL: edu has no FLR/PM reset and its root bus no secondary bus reset (reset_works false)", () => {
    const { sys, fd } = deviceFd(board);
    expect(sys.ioctl(fd, VFIO_DEVICE_RESET, 0n)).toEqual({ ret: -1, errno: ERRNO.EINVAL });
  });

  it("hot reset: argsz below 12 EINVAL, non-zero flags EINVAL, else ENODEV (no slot, root bus)", () => {
    const { sys, mem, fd } = deviceFd(board);
    const arg = mem.calloc(16);
    mem.write(arg, u32s(11, 0, 0));
    expect(sys.ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, arg).errno).toBe(ERRNO.EINVAL);
    mem.write(arg, u32s(12, 0, 0));
    expect(sys.ioctl(fd, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, arg)).toEqual({ ret: -1, errno: ERRNO.ENODEV });
    mem.write(arg, u32s(12, 1, 0));
    expect(sys.ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, arg).errno).toBe(ERRNO.EINVAL);
    mem.write(arg, u32s(12, 0, 0));
    expect(sys.ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, arg)).toEqual({ ret: -1, errno: ERRNO.ENODEV });
  });

  it("a one-byte pwrite of PCI_COMMAND (busybox dd in QEMU's guest) reaches the device: bus master on", () => {
    const { sys, fd } = deviceFd(board);
    const cfg = 7n << 40n;
    expect(sys.pwrite(fd, new Uint8Array([0x06]), cfg + 4n)).toEqual({ ret: 1, errno: 0 });
    expect(sys.pread(fd, 2, cfg + 4n).data[0]! & 0x06).toBe(0x06);
    expect(sys.pwrite(fd, new Uint8Array([0x02]), cfg + 4n).ret).toBe(1);
    expect(sys.pread(fd, 2, cfg + 4n).data[0]! & 0x06).toBe(0x02);
  });
});
