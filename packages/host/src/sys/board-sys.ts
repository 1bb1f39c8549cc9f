/**
 * The system-call surface of one simulated process on a board: `open`/`close`/`ioctl`/`read`/`write`/
 * `pread`/`pwrite`/`mmap`/`munmap`/`readlink`/`stat`/`readdir` on `/dev/vfio/vfio`, `/dev/vfio/N`, vfio-pci
 * device fds, eventfds, `/dev/kmsg` and the sysfs/procfs files of `SysFs`. Containers and groups are
 * `@vfio/type1`'s byte ioctls, fed with the bytes the process left in its own memory (`UserMemory`);
 * device ioctls are decoded from bytes beside vfio-pci (`vfioPciIoctl`). A model process (the replay's
 * probe, a TypeScript caller) or a real one (the native door) runs on the same surface.
 *
 * Conventions are Linux's: calls return `ret` (>= 0 on success) and, when `ret < 0`, a positive `errno`.
 * Pointers are user virtual addresses (`bigint`).
 */
import { ERRNO, ErrnoError, PAGE_SIZE } from "@iommu/core";
import { iommufdIoctl } from "@iommu/iommufd";
import type { Process } from "@vfio/type1";
import {
  DEVICE_ATTACH_IOMMUFD_PT_SIZE,
  DEVICE_BIND_IOMMUFD_SIZE,
  DEVICE_DETACH_IOMMUFD_PT_SIZE,
  GROUP_STATUS_SIZE,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_SET_IOMMU,
} from "@vfio/uapi";
import type { Board } from "../boards/types.js";
import { EventFd } from "../kernel/eventfd.js";
import { kmsgEscape } from "../kernel/kernel-log.js";
import { VfioCdev } from "../kernel/vfio-iommufd.js";
import type { BarMapping, VfioPciDevice } from "../kernel/vfio-pci.js";
import { type EventfdLookup, vfioPciIoctl } from "../kernel/vfio-pci-ioctl.js";
import { type FdEntry, FdTable } from "./fd-table.js";
import { type NodeKind, type StatusText, SysFs } from "./sysfs.js";
import { ProcessMemory, type UserMemory } from "./user-memory.js";

const { EBADF, EAGAIN, EINVAL, ENOTTY, ENOENT, EFAULT, ESPIPE, EISDIR, ENODEV, EBUSY } = ERRNO;

/** VFIO_PCI_INDEX_TO_OFFSET: a device fd's region index is offset >> 40. */
const REGION_SHIFT = 40n;
const REGION_MASK = (1n << REGION_SHIFT) - 1n;

/** A system call's answer: `ret` >= 0 on success; else -1 and a positive `errno`. */
export interface SysResult {
  ret: number;
  /** Positive errno number when ret < 0, else 0. */
  errno: number;
}

const ok = (ret = 0): SysResult => ({ ret, errno: 0 });
const fail = (errno: number): SysResult => ({ ret: -1, errno });

/** Negative errno (the model's ioctl convention) → SysResult. */
function fromKernel(r: number): SysResult {
  return r < 0 ? fail(-r) : ok(r);
}

/** The errno number of an `ErrnoError`; anything else is a bug in the model and is rethrown. */
function errnoOf(e: unknown): number {
  if (e instanceof ErrnoError) return e.code;
  throw e;
}

export type DataResult = SysResult & { data: Uint8Array };

export interface BoardSysOptions {
  /**
   * The process and its memory. Default: a new model process on the board (root: CAP_IPC_LOCK, RLIMIT_MEMLOCK
   * 8 MiB) and its memory (`ProcessMemory`).
   */
  process?: Process;
  memory?: UserMemory;
  /** Eventfds that live outside this table (the native door's client eventfds). Default: only the table's. */
  eventfds?: EventfdLookup;
  /** /proc/self/status around the model's VmLck line. */
  status?: StatusText;
  /** The first descriptor number the table picks itself (default 1000). */
  firstFd?: number;
}

export class BoardSys {
  readonly process: Process;
  readonly memory: UserMemory;
  readonly fds: FdTable;
  readonly sysfs: SysFs;
  /** /dev/kmsg records not read yet by any kmsg fd (a record's sequence number is its index). */
  private readonly kmsgRecords: string[] = [];

  constructor(
    private readonly board: Board,
    private readonly opts: BoardSysOptions = {},
  ) {
    this.process = opts.process ?? board.createProcess({ memlockBytes: 8n << 20n, capIpcLock: true });
    this.memory = opts.memory ?? new ProcessMemory(this.process);
    this.fds = new FdTable(opts.firstFd ?? 1000);
    this.sysfs = new SysFs(
      board,
      () => this.process.vmLckKb,
      opts.status,
      () => this.process.pinnedVm * 4,
    );
  }

  // ---- the system calls ----

  /**
   * open(2). `fd`: the number to install at (the native door's client placeholder); default the table's
   * next. ENOENT for paths nothing serves.
   */
  open(path: string, fd?: number): SysResult {
    const install = (e: FdEntry, at = fd) => ok(at === undefined ? this.fds.alloc(e) : this.fds.install(at, e));
    try {
      const fdSide = this.board.vfioIommufd;
      if (path === "/dev/iommu" || (path === "/dev/vfio/vfio" && fdSide.compatContainer)) {
        const compat = path === "/dev/vfio/vfio";
        return install({ kind: "iommufd", ctx: fdSide.openIommufd(this.process, compat), compat }, fd);
      }
      const cdev = /^\/dev\/vfio\/devices\/vfio(\d+)$/.exec(path);
      if (cdev) {
        const dev = fdSide.cdevDevice(Number(cdev[1]));
        if (!dev) return fail(ENOENT);
        return install({ kind: "cdev", c: new VfioCdev(dev, this.board.groupIdOf(dev)) }, fd);
      }
      if (path === "/dev/vfio/vfio") {
        const c = this.board.vfio.openContainer(this.process);
        // the model process's numbers are type1's (the probe's transcripts never print them)
        return install({ kind: "container", vfioFd: c.fd }, fd ?? c.fd);
      }
      const m = /^\/dev\/vfio\/(\d+)$/.exec(path);
      if (m) {
        // vfio_group_fops_open: a device of the group is bound through its cdev
        if (fdSide.groupBlocked(Number(m[1]))) return fail(EBUSY);
        const g = this.board.vfio.openGroup(Number(m[1]));
        return install({ kind: "group", vfioFd: g.fd, groupId: g.id }, fd ?? g.fd);
      }
      if (path === "/dev/kmsg") return install({ kind: "kmsg", seq: 0 }, fd);
      const kind = this.stat(path);
      if (kind.ret < 0) return kind;
      const data = this.sysfs.file(path);
      if (data === null) return fail(EISDIR);
      return install({ kind: "file", path, data, pos: 0 }, fd);
    } catch (e) {
      return fail(errnoOf(e));
    }
  }

  close(fd: number): SysResult {
    const e = this.fds.take(fd);
    if (!e) return fail(EBADF);
    if (e.kind === "device") {
      // vfio-pci drops the group's device reference itself (vfio_device_unassign_container)
      e.h.close();
      // device fds hold the group file: a group closed before them is released (its iommufd dropped) now
      if (!this.board.vfio.group(e.groupId) && this.board.vfioPci.openDevicesOf(e.groupId).length === 0) {
        this.board.vfioIommufd.groupUnset(e.groupId);
      }
    } else if (e.kind === "group") {
      const r = this.board.vfio.close(e.vfioFd);
      // vfio_group_fops_release drops the group's iommufd once no device of it is open
      if (this.board.vfioPci.openDevicesOf(e.groupId).length === 0) this.board.vfioIommufd.groupUnset(e.groupId);
      return fromKernel(r);
    } else if (e.kind === "container") {
      return fromKernel(this.board.vfio.close(e.vfioFd));
    } else if (e.kind === "iommufd") {
      e.ctx.close();
    } else if (e.kind === "cdev") {
      this.board.vfioIommufd.cdevClose(e.c);
    }
    return ok();
  }

  /** Closes every descriptor, lowest first, as exit(2) does. */
  exit(): void {
    for (const fd of this.fds.numbers()) this.close(fd);
  }

  /** ioctl(2). `newFd`: where a descriptor the call creates goes (VFIO_GROUP_GET_DEVICE_FD), as for `open`. */
  ioctl(fd: number, request: number, arg: bigint, newFd?: number): SysResult {
    const e = this.fds.get(fd);
    if (!e) return fail(EBADF);
    try {
      switch (e.kind) {
        case "container":
          return this.containerIoctl(e.vfioFd, request, arg);
        case "group":
          return this.groupIoctl(e.vfioFd, e.groupId, request, arg, newFd);
        case "device":
          return fromKernel(vfioPciIoctl(e.h, request, arg, this.memory, (n) => this.eventfdOf(n)));
        case "iommufd":
          return this.iommufdFileIoctl(e, request, arg);
        case "cdev":
          return this.cdevIoctl(e.c, request, arg);
        default:
          return fail(ENOTTY);
      }
    } catch (err) {
      return fail(errnoOf(err));
    }
  }

  /** read(2): a file from its position, an eventfd's counter (8 bytes, EAGAIN at 0), a /dev/kmsg record. */
  read(fd: number, len: number): DataResult {
    const e = this.fds.get(fd);
    const none = new Uint8Array(0);
    if (!e) return { ...fail(EBADF), data: none };
    switch (e.kind) {
      case "file": {
        const data = e.data.slice(e.pos, e.pos + Math.max(0, len));
        e.pos += data.length;
        return { ...ok(data.length), data };
      }
      case "eventfd": {
        if (len < 8) return { ...fail(EINVAL), data: none };
        if (!e.e.readable) return { ...fail(EAGAIN), data: none };
        const data = new Uint8Array(8);
        new DataView(data.buffer).setBigUint64(0, e.e.read(), true);
        return { ...ok(8), data };
      }
      case "kmsg": {
        this.kmsgRecords.push(...this.board.kernelLog().map(kmsgEscape));
        const text = this.kmsgRecords[e.seq];
        if (text === undefined) return { ...fail(EAGAIN), data: none };
        const rec = Uint8Array.from(`6,${e.seq},0,-;${text}\n`, (c) => c.charCodeAt(0) & 0xff);
        if (rec.length > len) return { ...fail(EINVAL), data: none };
        e.seq++;
        return { ...ok(rec.length), data: rec };
      }
      case "device":
      case "cdev":
        return this.pread(fd, len, BigInt(VFIO_PCI_CONFIG_REGION_INDEX) << REGION_SHIFT);
      default:
        return { ...fail(EINVAL), data: none };
    }
  }

  /** write(2): an eventfd adds the 8-byte value; sysfs files here are read-only. */
  write(fd: number, bytes: Uint8Array): SysResult {
    const e = this.fds.get(fd);
    if (!e) return fail(EBADF);
    if (e.kind === "eventfd") {
      if (bytes.length < 8) return fail(EINVAL);
      const v = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
      if (v === 0xffff_ffff_ffff_ffffn) return fail(EINVAL);
      e.e.signal(v);
      return ok(8);
    }
    return fail(EINVAL);
  }

  /** lseek(2) for files and /dev/kmsg (SEEK_END on kmsg skips to after the last record). */
  lseek(fd: number, offset: bigint, whence: 0 | 1 | 2): SysResult {
    const e = this.fds.get(fd);
    if (!e) return fail(EBADF);
    if (e.kind === "kmsg") {
      this.kmsgRecords.push(...this.board.kernelLog().map(kmsgEscape));
      if (whence === 2) e.seq = this.kmsgRecords.length;
      else if (whence === 0 && offset === 0n) e.seq = 0;
      else return fail(EINVAL);
      return ok(0);
    }
    if (e.kind !== "file") return fail(ESPIPE);
    const base = whence === 0 ? 0n : whence === 1 ? BigInt(e.pos) : BigInt(e.data.length);
    const to = base + offset;
    if (to < 0n) return fail(EINVAL);
    e.pos = Number(to);
    return ok(e.pos);
  }

  /** pread(2): a file at an offset, or a device region (only the config space is readable this way). */
  pread(fd: number, len: number, offset: bigint): DataResult {
    const e = this.fds.get(fd);
    const none = new Uint8Array(0);
    if (!e) return { ...fail(EBADF), data: none };
    if (e.kind === "file") {
      const at = Number(offset < 0n ? 0n : offset);
      if (offset < 0n) return { ...fail(EINVAL), data: none };
      const data = e.data.slice(at, at + Math.max(0, len));
      return { ...ok(data.length), data };
    }
    const h = this.handleOf(e);
    if (typeof h === "number") return { ...fail(h), data: none };
    if (offset >> REGION_SHIFT !== BigInt(VFIO_PCI_CONFIG_REGION_INDEX)) return { ...fail(EINVAL), data: none };
    const off = Number(offset & REGION_MASK);
    const n = Math.max(0, Math.min(len, 256 - off));
    const data = new Uint8Array(n);
    try {
      for (let i = 0; i < n; i++) data[i] = h.configRead(off + i, 1);
    } catch (err) {
      return { ...fail(errnoOf(err)), data: none };
    }
    return { ret: n, errno: 0, data };
  }

  pwrite(fd: number, bytes: Uint8Array, offset: bigint): SysResult {
    const e = this.fds.get(fd);
    if (!e) return fail(EBADF);
    if (e.kind === "file") return fail(EINVAL);
    const h = this.handleOf(e);
    if (typeof h === "number") return fail(h);
    if (offset >> REGION_SHIFT !== BigInt(VFIO_PCI_CONFIG_REGION_INDEX)) return fail(EINVAL);
    const off = Number(offset & REGION_MASK);
    try {
      if (bytes.length === 2 && off % 2 === 0) h.configWrite(off, 2, bytes[0]! | (bytes[1]! << 8));
      else {
        for (let i = 0; i < bytes.length; i++) h.configWrite(off + i, 1, bytes[i]!);
      }
    } catch (err) {
      return fail(errnoOf(err));
    }
    return ok(bytes.length);
  }

  /** mmap(2) of a device region: only BAR0 maps (its MMIO, no IOMMU on the CPU's path). ENODEV otherwise. */
  mmap(fd: number, len: bigint, offset: bigint): SysResult & { bar?: BarMapping } {
    const e = this.fds.get(fd);
    if (!e) return fail(EBADF);
    const h = this.handleOf(e);
    if (typeof h === "number") return fail(h === ESPIPE ? ENODEV : h);
    if (offset >> REGION_SHIFT !== BigInt(VFIO_PCI_BAR0_REGION_INDEX)) return fail(EINVAL);
    if (len <= 0n) return fail(EINVAL);
    try {
      return { ...ok(), bar: h.mmapBar0() };
    } catch (err) {
      return fail(errnoOf(err));
    }
  }

  /** eventfd(2) in this table (the model process's eventfds). */
  eventfd(): SysResult {
    return ok(this.fds.alloc({ kind: "eventfd", e: new EventFd("probe msi") }));
  }

  /** poll(2) for POLLIN on one model eventfd: 1 when readable (interrupts arrive synchronously here). */
  pollIn(fd: number): SysResult {
    const e = this.fds.get(fd);
    if (e?.kind !== "eventfd") return fail(EBADF);
    return ok(e.e.readable ? 1 : 0);
  }

  /** readlink(2) of a sysfs link. EINVAL for a path that exists but is not a link. */
  readlink(path: string): SysResult & { target: string } {
    const t = this.sysfs.readlink(path);
    if (t !== null) return { ...ok(t.length), target: t };
    return { ...fail(this.sysfs.stat(path) === null ? ENOENT : EINVAL), target: "" };
  }

  /** stat(2) (`follow`: links resolve; every link here names a directory) or lstat(2). */
  stat(path: string, follow = true): SysResult & { kind?: NodeKind } {
    const k = this.sysfs.stat(path);
    if (k === null) return fail(ENOENT);
    return { ...ok(), kind: follow && k === "link" ? "dir" : k };
  }

  /** getdents: a directory's entries, or ENOENT / ENOTDIR. */
  readdir(path: string): SysResult & { names: string[] } {
    const names = this.sysfs.readdir(path);
    if (names !== null) return { ...ok(names.length), names };
    return { ...fail(this.sysfs.stat(path) === null ? ENOENT : ERRNO.ENOTDIR), names: [] };
  }

  /** The vfio-pci device behind a device fd or a bound cdev; else the errno (EINVAL before bind). */
  private handleOf(e: FdEntry): VfioPciDevice | number {
    if (e.kind === "device") return e.h;
    if (e.kind === "cdev") return e.c.h ?? EINVAL;
    return ESPIPE;
  }

  private eventfdOf(fd: number): EventFd | number {
    const ent = this.fds.get(fd);
    if (ent?.kind === "eventfd") return ent.e;
    if (this.opts.eventfds) return this.opts.eventfds(fd);
    return -EBADF;
  }

  /** The kernel copies the argument in, runs, and copies back what it wrote. */
  private withUserBytes(arg: bigint, n: number, fn: (b: Uint8Array) => number): SysResult {
    let bytes: Uint8Array;
    try {
      bytes = this.memory.read(arg, n);
    } catch {
      return fail(EFAULT);
    }
    const before = bytes.slice();
    const r = fn(bytes);
    // copy back only what changed: bytes the kernel did not write stay as the user left them
    let lo = 0;
    while (lo < n && bytes[lo] === before[lo]) lo++;
    let hi = n;
    while (hi > lo && bytes[hi - 1] === before[hi - 1]) hi--;
    if (hi > lo) this.memory.write(arg + BigInt(lo), bytes.subarray(lo, hi));
    return fromKernel(r);
  }

  private containerIoctl(vfioFd: number, request: number, arg: bigint): SysResult {
    const vfio = this.board.vfio;
    switch (request) {
      case VFIO_GET_API_VERSION:
      case VFIO_CHECK_EXTENSION:
      case VFIO_SET_IOMMU:
        return fromKernel(vfio.ioctl(vfioFd, request, Number(BigInt.asIntN(32, arg))));
      case VFIO_IOMMU_GET_INFO:
      case VFIO_IOMMU_MAP_DMA:
      case VFIO_IOMMU_UNMAP_DMA:
      case VFIO_IOMMU_DIRTY_PAGES:
        return this.withUserBytes(arg, this.memory.argExtent(arg, 8), (b) => vfio.ioctl(vfioFd, request, b));
      default:
        return fromKernel(vfio.ioctl(vfioFd, request, arg));
    }
  }

  private groupIoctl(vfioFd: number, groupId: number, request: number, arg: bigint, newFd?: number): SysResult {
    const vfio = this.board.vfio;
    const fdSide = this.board.vfioIommufd;
    switch (request) {
      case VFIO_GROUP_GET_STATUS:
        if (fdSide.linked(groupId)) {
          // vfio_group_has_iommu through an iommufd: VIABLE | CONTAINER_SET (ownership is taken at bind)
          return this.withUserBytes(arg, GROUP_STATUS_SIZE, (b) => {
            const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
            if (v.getUint32(0, true) < GROUP_STATUS_SIZE) return -EINVAL;
            v.setUint32(4, 3, true);
            return 0;
          });
        }
        return this.withUserBytes(arg, GROUP_STATUS_SIZE, (b) => vfio.ioctl(vfioFd, request, b));
      case VFIO_GROUP_SET_CONTAINER: {
        // get_user(fd, arg): the container the process names, as type1's table knows it
        let user: Uint8Array;
        try {
          user = this.memory.read(arg, 4);
        } catch {
          return fail(EFAULT);
        }
        const e = this.fds.get(new DataView(user.buffer, user.byteOffset, 4).getInt32(0, true));
        if (!e) return fail(EBADF);
        if (e.kind === "iommufd") {
          fdSide.groupSetIommufd(groupId, e.ctx);
          return ok();
        }
        if (e.kind !== "container") return fail(EINVAL);
        if (fdSide.linked(groupId)) return fail(EINVAL);
        const b = new Uint8Array(new Int32Array([e.vfioFd]).buffer);
        return fromKernel(vfio.ioctl(vfioFd, request, b));
      }
      case VFIO_GROUP_UNSET_CONTAINER:
        if (fdSide.linked(groupId)) {
          fdSide.groupUnset(groupId);
          return ok();
        }
        return fromKernel(vfio.ioctl(vfioFd, request, 0));
      case VFIO_GROUP_GET_DEVICE_FD: {
        // vfio-pci takes the group's device reference (vfio_device_assign_container) itself
        const name = this.cString(arg);
        const h = fdSide.linked(groupId)
          ? fdSide.groupOpenDevice(groupId, name)
          : this.board.vfioPci.openDevice(groupId, name);
        const e: FdEntry = { kind: "device", h, groupId };
        return ok(newFd === undefined ? this.fds.alloc(e) : this.fds.install(newFd, e));
      }
      default:
        return fromKernel(vfio.ioctl(vfioFd, request, arg));
    }
  }

  /**
   * An iommufd file's ioctl: iommufd's own commands copy `size` bytes (the rules on it are iommufd's);
   * the VFIO container commands of the compat file take an integer or their argsz'd struct.
   */
  private iommufdFileIoctl(e: Extract<FdEntry, { kind: "iommufd" }>, request: number, arg: bigint): SysResult {
    const nr = request & 0xff;
    if (nr >= 0x80 && nr <= 0x8e) {
      let size: number;
      try {
        size = new DataView(this.memory.read(arg, 4).buffer).getUint32(0, true);
      } catch {
        return fail(EFAULT);
      }
      // a size past PAGE_SIZE is refused (E2BIG) before anything past the size field is read
      const n = BigInt(size) > PAGE_SIZE ? 4 : Math.max(4, size);
      return this.withUserBytes(arg, n, (b) => iommufdIoctl(e.ctx, request, b));
    }
    switch (request) {
      case VFIO_GET_API_VERSION:
      case VFIO_CHECK_EXTENSION:
      case VFIO_SET_IOMMU:
        return fromKernel(iommufdIoctl(e.ctx, request, Number(BigInt.asIntN(32, arg))));
      default:
        return this.withUserBytes(arg, this.memory.argExtent(arg, 8), (b) => iommufdIoctl(e.ctx, request, b));
    }
  }

  /** The VFIO device cdev's ioctls (device_cdev.c): BIND first; everything else EINVAL until bound. */
  private cdevIoctl(c: VfioCdev, request: number, arg: bigint): SysResult {
    const fdSide = this.board.vfioIommufd;
    if (request === VFIO_DEVICE_BIND_IOMMUFD) {
      return this.withUserBytes(arg, DEVICE_BIND_IOMMUFD_SIZE, (b) => {
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (v.getUint32(0, true) < DEVICE_BIND_IOMMUFD_SIZE || v.getUint32(4, true) || v.getInt32(8, true) < 0) {
          return -EINVAL;
        }
        const fd = v.getInt32(8, true);
        try {
          const devid = fdSide.cdevBind(c, () => {
            const f = this.fds.get(fd);
            if (!f) throw new ErrnoError("EBADF", "iommufd_ctx_from_fd", "bad fd", { fd });
            if (f.kind !== "iommufd") throw new ErrnoError("EBADFD", "iommufd_ctx_from_fd", "not an iommufd", { fd });
            return f.ctx;
          });
          v.setUint32(12, devid, true);
          return 0;
        } catch (err) {
          return -errnoOf(err);
        }
      });
    }
    const h = c.h;
    if (!h) return fail(EINVAL);
    if (request === VFIO_DEVICE_ATTACH_IOMMUFD_PT) {
      return this.withUserBytes(arg, DEVICE_ATTACH_IOMMUFD_PT_SIZE, (b) => {
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (v.getUint32(0, true) < DEVICE_ATTACH_IOMMUFD_PT_SIZE || v.getUint32(4, true)) return -EINVAL;
        try {
          v.setUint32(8, fdSide.cdevAttach(c, v.getUint32(8, true)), true);
          return 0;
        } catch (err) {
          return -errnoOf(err);
        }
      });
    }
    if (request === VFIO_DEVICE_DETACH_IOMMUFD_PT) {
      return this.withUserBytes(arg, DEVICE_DETACH_IOMMUFD_PT_SIZE, (b) => {
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (v.getUint32(0, true) < DEVICE_DETACH_IOMMUFD_PT_SIZE || v.getUint32(4, true)) return -EINVAL;
        fdSide.cdevDetach(c);
        return 0;
      });
    }
    return fromKernel(vfioPciIoctl(h, request, arg, this.memory, (n) => this.eventfdOf(n)));
  }

  /** strncpy_from_user of a device name (at most 256 bytes, stops at NUL or an unmapped page). */
  private cString(addr: bigint): string {
    let s = "";
    for (let i = 0; i < 256; i++) {
      const c = this.memory.read(addr + BigInt(i), 1)[0]!;
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s;
  }

  /** The device an fd designates (for the native door's BAR accesses). */
  deviceOf(fd: number): VfioPciDevice | null {
    const e = this.fds.get(fd);
    if (!e) return null;
    const h = this.handleOf(e);
    return typeof h === "number" ? null : h;
  }
}
