/**
 * The system-call surface: each call answers with Linux's errno where the kernel would (EBADF on a closed
 * fd, ENOTTY for an unknown ioctl, EFAULT for a bad pointer, ENOENT for a path nothing serves), files
 * read as one snapshot per open, /dev/kmsg gives one record per read, and a failed call changes nothing.
 */
import { ERRNO } from "@iommu/core";
import { VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU } from "@vfio/type1";
import { VFIO_DEVICE_GET_REGION_INFO, VFIO_PCI_CONFIG_REGION_INDEX } from "@vfio/uapi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createBoard } from "../boards/index.js";
import { BoardSys } from "./board-sys.js";
import { FdTable } from "./fd-table.js";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function attached(name: "x86-q35-vtd" | "arm64-virt-smmuv3") {
  const b = createBoard(name);
  const sys = new BoardSys(b);
  const g = b.groupIdOf(b.edus[0]!);
  const c = sys.open("/dev/vfio/vfio").ret;
  const gfd = sys.open(`/dev/vfio/${g}`).ret;
  const arg = sys.calloc(4);
  sys.poke(arg, new Uint8Array(new Int32Array([c]).buffer));
  expect(sys.ioctl(gfd, VFIO_GROUP_SET_CONTAINER, arg).ret).toBe(0);
  expect(sys.ioctl(c, VFIO_SET_IOMMU, BigInt(VFIO_TYPE1v2_IOMMU)).ret).toBe(0);
  const name0 = sys.calloc(16);
  sys.poke(name0, new TextEncoder().encode(`${b.edus[0]!.name}\0`));
  const dfd = sys.ioctl(gfd, 0x3b6a, name0).ret;
  expect(dfd).toBeGreaterThan(0);
  return { b, sys, c, gfd, dfd };
}

describe("BoardSys system calls", () => {
  it("open/read/lseek/close of a sysfs file: one snapshot per open, EBADF after close", () => {
    const sys = new BoardSys(createBoard("x86-q35-vtd"));
    const fd = sys.open("/sys/kernel/iommu_groups/1/reserved_regions").ret;
    expect(text(sys.read(fd, 19).data)).toBe("0x00000000fee00000 ");
    expect(text(sys.read(fd, 100).data)).toBe("0x00000000feefffff msi\n");
    expect(sys.read(fd, 100)).toMatchObject({ ret: 0 });
    expect(sys.lseek(fd, 0n, 0).ret).toBe(0);
    expect(text(sys.pread(fd, 6, 10n).data)).toBe("fee000");
    expect(sys.close(fd).ret).toBe(0);
    expect(sys.read(fd, 1)).toMatchObject({ ret: -1, errno: ERRNO.EBADF });
    expect(sys.close(fd)).toEqual({ ret: -1, errno: ERRNO.EBADF });
  });

  it("paths nothing serves are ENOENT; a directory opened for reading is EISDIR", () => {
    const sys = new BoardSys(createBoard("arm64-virt-smmuv3"));
    expect(sys.open("/sys/kernel/iommu_groups/9/type")).toEqual({ ret: -1, errno: ERRNO.ENOENT });
    expect(sys.open("/dev/vfio/7")).toMatchObject({ ret: -1 });
    expect(sys.open("/sys/kernel/iommu_groups/0")).toEqual({ ret: -1, errno: ERRNO.EISDIR });
  });

  it("sysfs: links, directories and stat as a VFIO user walks them", () => {
    const b = createBoard("x86-q35-vtd", { eduCount: 2 });
    const sys = new BoardSys(b);
    expect(sys.readlink("/sys/bus/pci/devices/0000:00:02.0/iommu_group").target).toBe(
      "../../../../kernel/iommu_groups/2",
    );
    expect(sys.readdir("/sys/kernel/iommu_groups").names).toEqual(["0", "1", "2"]);
    expect(sys.readdir("/sys/kernel/iommu_groups/2/devices").names).toEqual(["0000:00:02.0"]);
    expect(sys.readdir("/dev/vfio").names).toEqual(["vfio", "1", "2"]);
    expect(sys.stat("/dev/vfio/vfio").kind).toBe("chr");
    expect(sys.stat("/sys/bus/pci/devices/0000:00:01.0/iommu_group").kind).toBe("dir");
    expect(sys.stat("/sys/bus/pci/devices/0000:00:01.0/iommu_group", false).kind).toBe("link");
    expect(sys.readlink("/sys/kernel/iommu_groups/1/type")).toMatchObject({ ret: -1, errno: ERRNO.EINVAL });
    expect(sys.readdir("/sys/kernel/iommu_groups/1/type")).toMatchObject({ ret: -1, errno: ERRNO.ENOTDIR });
    expect(sys.stat("/sys/kernel/iommu_groups/5")).toEqual({ ret: -1, errno: ERRNO.ENOENT });
  });

  it("/proc/self/status: VmLck is type1's locked_vm of this process", () => {
    const sys = new BoardSys(createBoard("x86-q35-vtd"));
    expect(text(sys.readFile("/proc/self/status", 4096).data)).toMatch(/^VmLck:\s+0 kB$/m);
  });

  it("eventfd: write adds, read returns the sum and resets, EAGAIN at zero, ENOTTY for ioctls", () => {
    const sys = new BoardSys(createBoard("x86-q35-vtd"));
    const fd = sys.eventfd().ret;
    expect(sys.read(fd, 8)).toMatchObject({ ret: -1, errno: ERRNO.EAGAIN });
    const two = new Uint8Array(8);
    two[0] = 2;
    expect(sys.write(fd, two).ret).toBe(8);
    expect(sys.write(fd, two).ret).toBe(8);
    expect(sys.readEventfd(fd).value).toBe(4n);
    expect(sys.read(fd, 8)).toMatchObject({ ret: -1, errno: ERRNO.EAGAIN });
    expect(sys.ioctl(fd, 0x3b64, 0n)).toEqual({ ret: -1, errno: ERRNO.ENOTTY });
  });

  it("/dev/kmsg: SEEK_END skips the backlog, then one escaped record per read, EAGAIN when drained", () => {
    const b = createBoard("x86-q35-vtd");
    const sys = new BoardSys(b);
    const fd = sys.open("/dev/kmsg").ret;
    expect(sys.lseek(fd, 0n, 2).ret).toBe(0);
    const p = b.createProcess({ memlockBytes: 0n });
    p.klog.push("tab\there");
    const r = text(sys.read(fd, 1024).data);
    expect(r).toMatch(/^6,\d+,0,-;tab\\x09here\n$/);
    expect(sys.read(fd, 1024)).toMatchObject({ ret: -1, errno: ERRNO.EAGAIN });
  });

  it.each(["x86-q35-vtd", "arm64-virt-smmuv3"] as const)(
    "%s device fd: region info from bytes, config pread, BAR0 mmap; ENOTTY, EFAULT, EINVAL as the kernel",
    (name) => {
      const { sys, dfd } = attached(name);
      const ri = sys.calloc(32);
      sys.poke(ri, new Uint8Array([32, 0, 0, 0, 0, 0, 0, 0, VFIO_PCI_CONFIG_REGION_INDEX, 0, 0, 0]));
      expect(sys.ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, ri).ret).toBe(0);
      const v = new DataView(sys.peek(ri, 32).buffer);
      expect(v.getBigUint64(16, true)).toBe(256n);
      expect(v.getBigUint64(24, true)).toBe(7n << 40n);
      expect([...sys.pread(dfd, 4, 7n << 40n).data]).toEqual([0x34, 0x12, 0xe8, 0x11]);
      expect(sys.mmap(dfd, 0x100000n, 0n).bar?.read32(0)).toBe(0x010000ed);
      expect(sys.mmap(dfd, 0x100000n, 7n << 40n)).toEqual({ ret: -1, errno: ERRNO.EINVAL });
      expect(sys.ioctl(dfd, 0x3b99, ri)).toEqual({ ret: -1, errno: ERRNO.ENOTTY });
      expect(sys.ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, 0x10n)).toEqual({ ret: -1, errno: ERRNO.EFAULT });
      // argsz below the struct: EINVAL, and nothing written back
      sys.poke(ri, new Uint8Array([8, 0, 0, 0, 0xaa]));
      expect(sys.ioctl(dfd, VFIO_DEVICE_GET_REGION_INFO, ri)).toEqual({ ret: -1, errno: ERRNO.EINVAL });
      expect(sys.peek(ri, 5)[4]).toBe(0xaa);
    },
  );

  it("SET_CONTAINER names the container by this process's number: a non-container is EINVAL, a closed one EBADF", () => {
    const b = createBoard("arm64-virt-smmuv3");
    const sys = new BoardSys(b);
    const gfd = sys.open("/dev/vfio/0").ret;
    const ev = sys.eventfd().ret;
    const arg = sys.calloc(4);
    sys.poke(arg, new Uint8Array(new Int32Array([ev]).buffer));
    expect(sys.ioctl(gfd, VFIO_GROUP_SET_CONTAINER, arg)).toEqual({ ret: -1, errno: ERRNO.EINVAL });
    sys.poke(arg, new Uint8Array(new Int32Array([4242]).buffer));
    expect(sys.ioctl(gfd, VFIO_GROUP_SET_CONTAINER, arg)).toEqual({ ret: -1, errno: ERRNO.EBADF });
    expect(b.vfio.group(0)!.containerUsers).toBe(0);
  });

  it("exit closes every descriptor: the device reference and the group's container go away", () => {
    const { b, sys } = attached("x86-q35-vtd");
    const g = b.groupIdOf(b.edus[0]!);
    expect(b.vfioPci.openDevicesOf(g).length).toBe(1);
    sys.exit();
    expect(b.vfioPci.openDevicesOf(g)).toEqual([]);
    expect(sys.fds.numbers()).toEqual([]);
  });
});

describe("FdTable", () => {
  it("property: numbers are unique among open entries, and a closed number is free again", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(-1), fc.nat(20)), { maxLength: 60 }), (ops) => {
        const t = new FdTable(3);
        const open = new Set<number>();
        for (const op of ops) {
          if (op < 0) {
            const fd = t.alloc({ kind: "kmsg", seq: 0 });
            expect(open.has(fd)).toBe(false);
            expect(fd).toBeGreaterThanOrEqual(3);
            open.add(fd);
          } else {
            expect(t.take(op + 3) !== undefined).toBe(open.delete(op + 3));
          }
        }
        expect(t.numbers()).toEqual([...open].sort((a, b) => a - b));
      }),
      { numRuns: 100, seed: 17 },
    );
  });
});
