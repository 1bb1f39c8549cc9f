/**
 * `ProbeSys` served by a model board: the "kernel" the replayed probe runs on. File descriptors map to
 * VFIO containers/groups (`@vfio/type1`'s byte ioctls, fed with the bytes the probe left in its own
 * memory), vfio-pci device handles (region info, config space, BAR0 mmap, MSI SET_IRQS decoded from bytes
 * here, as vfio_pci_core's ioctl entry does) and eventfds; sysfs and procfs files are rendered from the
 * IOMMU core's groups, the PCI devices' config space and the process's `locked_vm`.
 */
import { ERRNO, ErrnoError } from "@iommu/core";
import {
  GROUP_STATUS_SIZE,
  type Process,
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
  VFIO_SET_IOMMU,
} from "@vfio/type1";
import type { Board } from "../boards/index.js";
import type { EduDevice } from "../devices/edu.js";
import { EventFd } from "../kernel/eventfd.js";
import { kmsgEscape } from "../kernel/kernel-log.js";
import {
  type BarMapping,
  SIZEOF_IRQ_INFO,
  SIZEOF_IRQ_SET,
  SIZEOF_REGION_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  type VfioPciDevice,
} from "../kernel/vfio-pci.js";
import type { ProbeDevice, ProbeSys, SysResult } from "./sys.js";

const { EBADF, EAGAIN, EINVAL, ENOTTY, ENOENT, EFAULT } = ERRNO;

/**
 * The probe's heap (malloc'd ioctl structs and bitmaps): a sparse 1 TiB anonymous vma, handed out once and
 * never reused, so every calloc gets never-touched memory, which reads as zero without being written.
 */
const HEAP_BASE = 0x7f00_0000_0000n;
const HEAP_SIZE = 0x100_0000_0000n;
/** Where BAR mmaps land (outside every vma, so only `read32`… reach them). */
const MMIO_BASE = 0x7e00_0000_0000n;

type FdEntry =
  | { kind: "container" }
  | { kind: "group"; groupId: number }
  | { kind: "device"; h: VfioPciDevice; groupId: number }
  | { kind: "eventfd"; e: EventFd };

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

export interface BoardSysOptions {
  /** uname fields (they describe the host; not compared). */
  uname?: { release: string; version: string; machine: string };
}

export class BoardSys implements ProbeSys {
  readonly process: Process;
  private readonly fds = new Map<number, FdEntry>();
  /** Device and eventfd descriptors; containers and groups use the fds of `@vfio/type1`'s own table. */
  private nextFd = 1000;
  private heapNext = HEAP_BASE;
  /** Blocks handed out by calloc (start → length): the user memory an ioctl argument may span. */
  private readonly blocks = new Map<bigint, number>();
  private readonly bars = new Map<bigint, BarMapping>();
  private nextBar = MMIO_BASE;
  private readonly edus: readonly EduDevice[];

  constructor(
    private readonly board: Board,
    private readonly opts: BoardSysOptions = {},
  ) {
    // The probe runs as root: CAP_IPC_LOCK until a `memlock` header drops it; default RLIMIT_MEMLOCK 8 MiB.
    this.process = board.createProcess({ memlockBytes: 8n << 20n, capIpcLock: true });
    this.process.mmap({ start: HEAP_BASE, size: HEAP_SIZE, kind: "anon", writable: true, name: "[heap]" });
    this.edus = board.edus;
  }

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
    return this.edus.map((d) => ({ bdf: d.name, group: this.board.groupIdOf(d) }));
  }

  pageSize(): number {
    return 4096;
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
    const a = this.heapNext;
    const n = (BigInt(Math.max(len, 1)) + 0xfffn) & ~0xfffn;
    if (a + n > HEAP_BASE + HEAP_SIZE) throw new RangeError("probe heap exhausted");
    this.heapNext += n;
    this.blocks.set(a, len);
    return a;
  }

  free(addr: bigint): void {
    // bump allocator: the probe's allocations are few and small; only forget the block
    this.blocks.delete(addr);
  }

  private bar(addr: bigint): { m: BarMapping; off: number } | null {
    for (const [base, m] of this.bars) {
      if (addr >= base && addr < base + BigInt(m.size)) return { m, off: Number(addr - base) };
    }
    return null;
  }

  peek(addr: bigint, len: number): Uint8Array {
    return this.process.readUser(addr, len);
  }

  poke(addr: bigint, bytes: Uint8Array): void {
    this.process.writeUser(addr, bytes);
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

  private alloc(e: FdEntry): number {
    const fd = this.nextFd++;
    this.fds.set(fd, e);
    return fd;
  }

  open(path: string): SysResult {
    try {
      if (path === "/dev/vfio/vfio") {
        const c = this.board.vfio.openContainer(this.process);
        this.fds.set(c.fd, { kind: "container" });
        return ok(c.fd);
      }
      const m = /^\/dev\/vfio\/(\d+)$/.exec(path);
      if (!m) return fail(ENOENT);
      const g = this.board.vfio.openGroup(Number(m[1]));
      this.fds.set(g.fd, { kind: "group", groupId: g.id });
      return ok(g.fd);
    } catch (e) {
      return fail(errnoOf(e));
    }
  }

  close(fd: number): SysResult {
    const e = this.fds.get(fd);
    if (!e) return fail(EBADF);
    this.fds.delete(fd);
    if (e.kind === "device") {
      // vfio-pci drops the group's device reference itself (vfio_device_unassign_container)
      e.h.close();
    } else if (e.kind === "container" || e.kind === "group") {
      return fromKernel(this.board.vfio.close(fd));
    }
    return ok();
  }

  ioctl(fd: number, request: number, arg: bigint): SysResult {
    const e = this.fds.get(fd);
    if (!e) return fail(EBADF);
    try {
      switch (e.kind) {
        case "container":
          return this.containerIoctl(fd, request, arg);
        case "group":
          return this.groupIoctl(fd, e.groupId, request, arg);
        case "device":
          return this.deviceIoctl(e.h, request, arg);
        case "eventfd":
          return fail(ENOTTY);
      }
    } catch (err) {
      return fail(errnoOf(err));
    }
  }

  /** The kernel copies `n` bytes of the argument in, runs, and copies back what it wrote. */
  private withUserBytes(arg: bigint, n: number, fn: (b: Uint8Array) => number): SysResult {
    let bytes: Uint8Array;
    try {
      bytes = this.peek(arg, n);
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
    if (hi > lo) this.poke(arg + BigInt(lo), bytes.subarray(lo, hi));
    return fromKernel(r);
  }

  /** The user block an argument pointer lies in, from the pointer to the block's end (at least `min`). */
  private argBytes(arg: bigint, min: number): number {
    for (const [start, len] of this.blocks) {
      if (arg >= start && arg < start + BigInt(len)) return Math.max(min, Number(start + BigInt(len) - arg));
    }
    return min;
  }

  private containerIoctl(fd: number, request: number, arg: bigint): SysResult {
    switch (request) {
      case VFIO_GET_API_VERSION:
      case VFIO_CHECK_EXTENSION:
      case VFIO_SET_IOMMU:
        return fromKernel(this.board.vfio.ioctl(fd, request, Number(BigInt.asIntN(32, arg))));
      case VFIO_IOMMU_GET_INFO:
      case VFIO_IOMMU_MAP_DMA:
      case VFIO_IOMMU_UNMAP_DMA:
      case VFIO_IOMMU_DIRTY_PAGES:
        return this.withUserBytes(arg, this.argBytes(arg, 8), (b) => this.board.vfio.ioctl(fd, request, b));
      default:
        return fromKernel(this.board.vfio.ioctl(fd, request, arg));
    }
  }

  private groupIoctl(fd: number, groupId: number, request: number, arg: bigint): SysResult {
    switch (request) {
      case VFIO_GROUP_GET_STATUS:
        return this.withUserBytes(arg, GROUP_STATUS_SIZE, (b) => this.board.vfio.ioctl(fd, request, b));
      case VFIO_GROUP_SET_CONTAINER:
        // get_user(fd, arg): the container fd the probe wrote; resolved in @vfio/type1's fd table
        return this.withUserBytes(arg, 4, (b) => this.board.vfio.ioctl(fd, request, b));
      case VFIO_GROUP_UNSET_CONTAINER:
        return fromKernel(this.board.vfio.ioctl(fd, request, 0));
      case VFIO_GROUP_GET_DEVICE_FD: {
        // vfio-pci takes the group's device reference (vfio_device_assign_container) itself
        const h = this.board.vfioPci.openDevice(groupId, this.cString(arg));
        return ok(this.alloc({ kind: "device", h, groupId }));
      }
      default:
        return fromKernel(this.board.vfio.ioctl(fd, request, arg));
    }
  }

  private cString(addr: bigint): string {
    let s = "";
    for (let i = 0; i < 256; i++) {
      const c = this.peek(addr + BigInt(i), 1)[0]!;
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s;
  }

  /** vfio_pci_core_ioctl for the three requests the probe uses, decoded from and encoded to bytes. */
  private deviceIoctl(h: VfioPciDevice, request: number, arg: bigint): SysResult {
    if (request === VFIO_DEVICE_GET_REGION_INFO) {
      return this.withUserBytes(arg, SIZEOF_REGION_INFO, (b) => {
        const v = new DataView(b.buffer, b.byteOffset, b.length);
        if (v.getUint32(0, true) < SIZEOF_REGION_INFO) return -EINVAL;
        const ri = h.getRegionInfo(v.getUint32(8, true));
        v.setUint32(4, ri.flags, true);
        v.setUint32(12, 0, true);
        v.setBigUint64(16, ri.size, true);
        v.setBigUint64(24, ri.offset, true);
        return 0;
      });
    }
    if (request === VFIO_DEVICE_GET_IRQ_INFO) {
      return this.withUserBytes(arg, SIZEOF_IRQ_INFO, (b) => {
        const v = new DataView(b.buffer, b.byteOffset, b.length);
        if (v.getUint32(0, true) < SIZEOF_IRQ_INFO) return -EINVAL;
        const ii = h.getIrqInfo(v.getUint32(8, true));
        v.setUint32(4, ii.flags, true);
        v.setUint32(12, ii.count, true);
        return 0;
      });
    }
    if (request === VFIO_DEVICE_SET_IRQS) {
      const hdr = this.peek(arg, SIZEOF_IRQ_SET);
      const v = new DataView(hdr.buffer);
      const argsz = v.getUint32(0, true);
      const flags = v.getUint32(4, true);
      const count = v.getUint32(16, true);
      if (argsz < SIZEOF_IRQ_SET) return fail(EINVAL);
      const eventfds: (EventFd | null)[] = [];
      if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
        // vfio_set_irqs_validate_and_prepare: the data must fit in argsz
        if (argsz - SIZEOF_IRQ_SET < count * 4) return fail(EINVAL);
        const data = this.peek(arg + BigInt(SIZEOF_IRQ_SET), count * 4);
        for (let i = 0; i < count; i++) {
          const fd = new DataView(data.buffer).getInt32(i * 4, true);
          if (fd < 0) eventfds.push(null);
          else {
            const ent = this.fds.get(fd);
            if (ent?.kind !== "eventfd") return fail(EBADF);
            eventfds.push(ent.e);
          }
        }
      }
      return fromKernel(
        h.setIrqs({ flags, index: v.getUint32(8, true), start: v.getUint32(12, true), count, eventfds }),
      );
    }
    return fail(ENOTTY);
  }

  private deviceOf(fd: number): VfioPciDevice | null {
    const e = this.fds.get(fd);
    return e?.kind === "device" ? e.h : null;
  }

  pread(fd: number, len: number, offset: bigint): SysResult & { data: Uint8Array } {
    const h = this.deviceOf(fd);
    if (!h) return { ...fail(EBADF), data: new Uint8Array(0) };
    if (offset >> 40n !== BigInt(VFIO_PCI_CONFIG_REGION_INDEX)) return { ...fail(EINVAL), data: new Uint8Array(0) };
    const off = Number(offset & ((1n << 40n) - 1n));
    const n = Math.max(0, Math.min(len, 256 - off));
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = h.configRead(off + i, 1);
    return { ret: n, errno: 0, data };
  }

  pwrite(fd: number, bytes: Uint8Array, offset: bigint): SysResult {
    const h = this.deviceOf(fd);
    if (!h) return fail(EBADF);
    if (offset >> 40n !== BigInt(VFIO_PCI_CONFIG_REGION_INDEX)) return fail(EINVAL);
    const off = Number(offset & ((1n << 40n) - 1n));
    if (bytes.length === 2 && off % 2 === 0) h.configWrite(off, 2, bytes[0]! | (bytes[1]! << 8));
    else {
      for (let i = 0; i < bytes.length; i++) h.configWrite(off + i, 1, bytes[i]!);
    }
    return ok(bytes.length);
  }

  mmapDevice(fd: number, len: bigint, offset: bigint): SysResult & { addr: bigint } {
    const h = this.deviceOf(fd);
    if (!h) return { ...fail(EBADF), addr: 0n };
    if (offset >> 40n !== BigInt(VFIO_PCI_BAR0_REGION_INDEX)) return { ...fail(EINVAL), addr: 0n };
    try {
      const m = h.mmapBar0();
      const addr = this.nextBar;
      this.nextBar += (len + 0xfffffn) & ~0xfffffn;
      this.bars.set(addr, m);
      return { ret: 0, errno: 0, addr };
    } catch (e) {
      return { ...fail(errnoOf(e)), addr: 0n };
    }
  }

  munmap(addr: bigint): void {
    this.bars.delete(addr);
  }

  eventfd(): SysResult {
    return ok(this.alloc({ kind: "eventfd", e: new EventFd("probe msi") }));
  }

  readEventfd(fd: number): SysResult & { value: bigint } {
    const e = this.fds.get(fd);
    if (e?.kind !== "eventfd") return { ...fail(EBADF), value: 0n };
    if (!e.e.readable) return { ...fail(EAGAIN), value: 0n };
    return { ret: 8, errno: 0, value: e.e.read() };
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

  readFile(path: string, max: number): SysResult & { data: Uint8Array } {
    const text = this.fileText(path);
    if (text === null) return { ...fail(ENOENT), data: new Uint8Array(0) };
    const data = typeof text === "string" ? Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff) : text;
    return { ret: 0, errno: 0, data: data.subarray(0, max) };
  }

  private fileText(path: string): string | Uint8Array | null {
    let m = /^\/sys\/kernel\/iommu_groups\/(\d+)\/(reserved_regions|type)$/.exec(path);
    if (m) {
      const g = this.board.iommu.groupById(Number(m[1]));
      if (!g) return null;
      return m[2] === "type" ? g.typeText() : g.resvRegionsText();
    }
    m = /^\/sys\/bus\/pci\/devices\/([^/]+)\/config$/.exec(path);
    if (m) {
      const d = this.edus.find((x) => x.name === m![1]);
      return d ? d.config.bytes.slice(0, 256) : null;
    }
    if (path === "/proc/self/status") {
      const kb = (n: number) => `${String(n).padStart(8, " ")} kB`;
      return `Name:\tprobe\nVmLck:\t${kb(this.process.vmLckKb)}\nVmPin:\t${kb(0)}\n`;
    }
    return null;
  }

  readDir(path: string): string[] | null {
    const m = /^\/sys\/kernel\/iommu_groups\/(\d+)\/devices$/.exec(path);
    if (!m) return null;
    const g = this.board.iommu.groupById(Number(m[1]));
    return g ? g.devices.map((d) => d.name) : null;
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
