/**
 * The system-call surface of one simulated process on a board: `open`/`close`/`ioctl`/`read`/`write`/
 * `pread`/`pwrite`/`mmap`/`munmap`/`readlink`/`stat`/`readdir` on `/dev/vfio/vfio`, `/dev/vfio/N`, vfio-pci
 * device fds, eventfds, `/dev/kmsg` and the sysfs/procfs files of `SysFs`. Containers and groups are
 * `@vfio/type1`'s byte ioctls, fed with the bytes the process left in its own memory (`UserMemory`);
 * device ioctls are decoded from bytes beside vfio-pci (`vfioPciIoctl`). The replay's probe runs on the
 * model process (`ProbeSys`, below); the native door runs a real process on the same surface.
 *
 * Conventions are Linux's: calls return `ret` (>= 0 on success) and, when `ret < 0`, a positive `errno`.
 * Pointers are user virtual addresses (`bigint`).
 */
import { ERRNO, ErrnoError } from "@iommu/core";
import type { Process } from "@vfio/type1";
import {
  GROUP_STATUS_SIZE,
  VFIO_CHECK_EXTENSION,
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
import type { BarMapping, VfioPciDevice } from "../kernel/vfio-pci.js";
import { type EventfdLookup, vfioPciIoctl } from "../kernel/vfio-pci-ioctl.js";
import { type FdEntry, FdTable } from "./fd-table.js";
import type { ProbeDevice, ProbeSys, SysResult } from "./sys.js";
import { type NodeKind, type StatusText, SysFs } from "./sysfs.js";
import { ProcessMemory, type UserMemory } from "./user-memory.js";

const { EBADF, EAGAIN, EINVAL, ENOTTY, ENOENT, EFAULT, ESPIPE, EISDIR, ENODEV } = ERRNO;

/** Where BAR mmaps of the model process land (outside every vma, so only `read32`… reach them). */
const MMIO_BASE = 0x7e00_0000_0000n;
/** VFIO_PCI_INDEX_TO_OFFSET: a device fd's region index is offset >> 40. */
const REGION_SHIFT = 40n;
const REGION_MASK = (1n << REGION_SHIFT) - 1n;

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
  /** uname fields (they describe the host; not compared). */
  uname?: { release: string; version: string; machine: string };
  /**
   * The process and its memory. Default: a new model process on the board (root: CAP_IPC_LOCK, RLIMIT_MEMLOCK
   * 8 MiB) with a C heap (`ProcessMemory`).
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

export class BoardSys implements ProbeSys {
  readonly process: Process;
  readonly memory: UserMemory;
  readonly fds: FdTable;
  readonly sysfs: SysFs;
  /** BAR mappings of the model process (address → mapping). */
  private readonly bars = new Map<bigint, BarMapping>();
  private nextBar = MMIO_BASE;
  /** /dev/kmsg records not read yet by any kmsg fd (a record's sequence number is its index). */
  private readonly kmsgRecords: string[] = [];

  constructor(
    private readonly board: Board,
    private readonly opts: BoardSysOptions = {},
  ) {
    this.process = opts.process ?? board.createProcess({ memlockBytes: 8n << 20n, capIpcLock: true });
    this.memory = opts.memory ?? new ProcessMemory(this.process);
    this.fds = new FdTable(opts.firstFd ?? 1000);
    this.sysfs = new SysFs(board, () => this.process.vmLckKb, opts.status);
  }

  // ---- the system calls ----

  /**
   * open(2). `fd`: the number to install at (the native door's client placeholder); default the table's
   * next. ENOENT for paths nothing serves.
   */
  open(path: string, fd?: number): SysResult {
    const install = (e: FdEntry, at = fd) => ok(at === undefined ? this.fds.alloc(e) : this.fds.install(at, e));
    try {
      if (path === "/dev/vfio/vfio") {
        const c = this.board.vfio.openContainer(this.process);
        // the model process's numbers are type1's (the probe's transcripts never print them)
        return install({ kind: "container", vfioFd: c.fd }, fd ?? c.fd);
      }
      const m = /^\/dev\/vfio\/(\d+)$/.exec(path);
      if (m) {
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
    } else if (e.kind === "container" || e.kind === "group") {
      return fromKernel(this.board.vfio.close(e.vfioFd));
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
    if (e.kind !== "device") return { ...fail(ESPIPE), data: none };
    const h = e.h;
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
    if (e.kind !== "device") return fail(e.kind === "file" ? EINVAL : ESPIPE);
    const h = e.h;
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
    if (e.kind !== "device") return fail(ENODEV);
    if (offset >> REGION_SHIFT !== BigInt(VFIO_PCI_BAR0_REGION_INDEX)) return fail(EINVAL);
    if (len <= 0n) return fail(EINVAL);
    try {
      return { ...ok(), bar: e.h.mmapBar0() };
    } catch (err) {
      return fail(errnoOf(err));
    }
  }

  /** eventfd(2) in this table (the model process's eventfds). */
  eventfd(): SysResult {
    return ok(this.fds.alloc({ kind: "eventfd", e: new EventFd("probe msi") }));
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
    switch (request) {
      case VFIO_GROUP_GET_STATUS:
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
        if (e.kind !== "container") return fail(EINVAL);
        const b = new Uint8Array(new Int32Array([e.vfioFd]).buffer);
        return fromKernel(vfio.ioctl(vfioFd, request, b));
      }
      case VFIO_GROUP_UNSET_CONTAINER:
        return fromKernel(vfio.ioctl(vfioFd, request, 0));
      case VFIO_GROUP_GET_DEVICE_FD: {
        // vfio-pci takes the group's device reference (vfio_device_assign_container) itself
        const h = this.board.vfioPci.openDevice(groupId, this.cString(arg));
        const e: FdEntry = { kind: "device", h, groupId };
        return ok(newFd === undefined ? this.fds.alloc(e) : this.fds.install(newFd, e));
      }
      default:
        return fromKernel(vfio.ioctl(vfioFd, request, arg));
    }
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
    return e?.kind === "device" ? e.h : null;
  }

  // ---- ProbeSys: the C library the replay's probe sees, on top of the system calls above ----

  uname() {
    return (
      this.opts.uname ?? {
        release: "iommu-sim",
        version: `model of Linux 6.1 (${this.board.name})`,
        machine: this.board.arch,
      }
    );
  }

  devices(): readonly ProbeDevice[] {
    return this.board.edus.map((d) => ({ bdf: d.name, group: this.board.groupIdOf(d) }));
  }

  pageSize(): number {
    return 4096;
  }

  private get heap(): ProcessMemory {
    if (!(this.memory instanceof ProcessMemory)) throw new TypeError("no C heap: the process is not the model's");
    return this.memory;
  }

  mmapAnonymous(addr: bigint, len: bigint): SysResult {
    try {
      this.process.mmap({ start: addr, size: len, kind: "anon", writable: true, name: "probe buffer" });
      return ok();
    } catch (e) {
      return fail(errnoOf(e));
    }
  }

  calloc(len: number): bigint {
    return this.heap.calloc(len);
  }

  free(addr: bigint): void {
    this.heap.free(addr);
  }

  private bar(addr: bigint): { m: BarMapping; off: number } | null {
    for (const [base, m] of this.bars) {
      if (addr >= base && addr < base + BigInt(m.size)) return { m, off: Number(addr - base) };
    }
    return null;
  }

  peek(addr: bigint, len: number): Uint8Array {
    return this.memory.read(addr, len);
  }

  poke(addr: bigint, bytes: Uint8Array): void {
    this.memory.write(addr, bytes);
  }

  read32(addr: bigint): number {
    const b = this.bar(addr);
    if (b) return b.m.read32(b.off) >>> 0;
    return new DataView(this.peek(addr, 4).buffer).getUint32(0, true);
  }

  write32(addr: bigint, v: number): void {
    const b = this.bar(addr);
    if (b) {
      b.m.write32(b.off, v >>> 0);
      return;
    }
    const x = new Uint8Array(4);
    new DataView(x.buffer).setUint32(0, v >>> 0, true);
    this.poke(addr, x);
  }

  read64(addr: bigint): bigint {
    const b = this.bar(addr);
    if (b) return b.m.read64(b.off);
    return new DataView(this.peek(addr, 8).buffer).getBigUint64(0, true);
  }

  write64(addr: bigint, v: bigint): void {
    const b = this.bar(addr);
    if (b) {
      b.m.write64(b.off, v);
      return;
    }
    const x = new Uint8Array(8);
    new DataView(x.buffer).setBigUint64(0, v, true);
    this.poke(addr, x);
  }

  mmapDevice(fd: number, len: bigint, offset: bigint): SysResult & { addr: bigint } {
    const r = this.mmap(fd, len, offset);
    if (!r.bar) return { ...fail(r.errno), addr: 0n };
    const addr = this.nextBar;
    this.nextBar += (len + 0xfffffn) & ~0xfffffn;
    this.bars.set(addr, r.bar);
    return { ret: 0, errno: 0, addr };
  }

  munmap(addr: bigint): void {
    this.bars.delete(addr);
  }

  readEventfd(fd: number): SysResult & { value: bigint } {
    const r = this.read(fd, 8);
    if (r.ret < 0) return { ...fail(r.errno), value: 0n };
    return { ...ok(8), value: new DataView(r.data.buffer).getBigUint64(0, true) };
  }

  poll(fd: number, _timeoutMs: number): SysResult {
    // The model delivers interrupts synchronously: what has not arrived by now never will.
    const e = this.fds.get(fd);
    if (e?.kind !== "eventfd") return fail(EBADF);
    return ok(e.e.readable ? 1 : 0);
  }

  usleep(_us: number): void {
    // device work completes before the next access in this model; nothing to wait for
  }

  readFile(path: string, max: number): DataResult {
    const fd = this.open(path);
    if (fd.ret < 0) return { ...fd, data: new Uint8Array(0) };
    const r = this.read(fd.ret, max);
    this.close(fd.ret);
    return r.ret < 0 ? r : { ...ok(), data: r.data };
  }

  readDir(path: string): string[] | null {
    const r = this.readdir(path);
    return r.ret < 0 ? null : r.names;
  }

  dropIpcLockAndSetMemlock(bytes: bigint): string | null {
    this.process.capIpcLock = false;
    this.process.rlimitMemlock = bytes;
    return null;
  }

  /** /dev/kmsg: the board kernel's log since the last read, each record's text escaped as the kernel does. */
  kmsg(): string[] {
    return this.board.kernelLog().map(kmsgEscape);
  }
}
