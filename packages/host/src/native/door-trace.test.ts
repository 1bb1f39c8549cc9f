/** `--trace` lines: ioctls by name with their decoded argument and result; device fds name 0x3b70 as hot reset. */
import { VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA } from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { OP } from "./door-server-ops.js";
import { traceLine } from "./door-trace.js";

function ioctlReq(fd: number, req: number, arg: bigint): Buffer {
  const p = Buffer.alloc(24);
  p.writeInt32LE(fd, 0);
  p.writeInt32LE(-1, 4);
  p.writeBigUInt64LE(BigInt(req), 8);
  p.writeBigUInt64LE(arg, 16);
  return p;
}

describe("door trace", () => {
  const map = Buffer.alloc(32);
  map.writeUInt32LE(32, 0);
  map.writeUInt32LE(3, 4);
  map.writeBigUInt64LE(0x7f0000000000n, 8);
  map.writeBigUInt64LE(0xfee00000n, 16);
  map.writeBigUInt64LE(0x1000n, 24);
  const ctx = (device: boolean) => ({
    isVfioFd: () => true,
    isVfioDevice: () => device,
    read: (_a: bigint, len: number) => new Uint8Array(map.subarray(0, len)),
  });

  it("MAP_DMA on a container: flags, vaddr, iova, size from the caller's memory, and the errno", () => {
    expect(traceLine(OP.IOCTL, ioctlReq(10, VFIO_IOMMU_MAP_DMA, 0x1000n), { ret: -1, errno: 22 }, ctx(false))).toBe(
      "ioctl(10, VFIO_IOMMU_MAP_DMA, flags 0x3 vaddr 0x7f0000000000 iova 0xfee00000 size 0x1000) = -1 (errno 22)",
    );
  });

  it("the same number on a device fd is VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", () => {
    expect(traceLine(OP.IOCTL, ioctlReq(11, VFIO_IOMMU_GET_INFO, 0x2000n), { ret: -1, errno: 19 }, ctx(true))).toBe(
      "ioctl(11, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, argsz 32) = -1 (errno 19)",
    );
  });

  it("sysfs opens are left out; /dev/vfio opens are shown", () => {
    const open = (path: string) => Buffer.concat([Buffer.alloc(8), Buffer.from(path, "latin1")]);
    expect(traceLine(OP.OPEN, open("/sys/bus/pci/devices"), { ret: 5, errno: 0 }, ctx(false))).toBeNull();
    expect(traceLine(OP.OPEN, open("/dev/vfio/1"), { ret: 5, errno: 0 }, ctx(false))).toBe('open("/dev/vfio/1") = 5');
  });
});
