/**
 * The C library the replayed probe links against, on the model: `ProbeSys` written on top of the host's
 * system-call surface (`BoardSys`) for a model process. User space only: calloc is the process's heap,
 * a BAR is a mapping the loads and stores go through, `readFile` is open + read + close. Every answer
 * about the kernel's state comes from a system call.
 */
import { type BarMapping, type Board, BoardSys, ProcessMemory } from "@iommu-sim/host";
import type { ProbeDevice, ProbeSys, SysResult } from "./sys.js";

/** Where BAR mmaps land (outside every vma, so only `read32`… reach them). */
const MMIO_BASE = 0x7e00_0000_0000n;

const ok = (ret = 0): SysResult => ({ ret, errno: 0 });
const fail = (errno: number): SysResult => ({ ret: -1, errno });

export interface ProbeLibcOptions {
  /** uname fields (they describe the host; not compared). */
  uname?: { release: string; version: string; machine: string };
}

export class ProbeLibc implements ProbeSys {
  readonly sys: BoardSys;
  private readonly heap: ProcessMemory;
  private readonly bars = new Map<bigint, BarMapping>();
  private nextBar = MMIO_BASE;

  constructor(
    private readonly board: Board,
    private readonly opts: ProbeLibcOptions = {},
  ) {
    // The probe runs as root: CAP_IPC_LOCK until a `memlock` header drops it; default RLIMIT_MEMLOCK 8 MiB.
    const process = board.createProcess({ memlockBytes: 8n << 20n, capIpcLock: true });
    this.heap = new ProcessMemory(process);
    this.sys = new BoardSys(board, { process, memory: this.heap });
  }

  uname() {
    return (
      this.opts.uname ?? {
        release: "iommu-sim",
        version: `model of Linux ${this.board.kernel.version} (${this.board.name})`,
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

  mmapAnonymous(addr: bigint, len: bigint): SysResult {
    try {
      this.sys.process.mmap({ start: addr, size: len, kind: "anon", writable: true, name: "probe buffer" });
      return ok();
    } catch (e) {
      return fail(-((e as { errno?: number }).errno ?? -22));
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
    return this.heap.read(addr, len);
  }

  poke(addr: bigint, bytes: Uint8Array): void {
    this.heap.write(addr, bytes);
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

  open(path: string): SysResult {
    return this.sys.open(path);
  }

  close(fd: number): SysResult {
    return this.sys.close(fd);
  }

  ioctl(fd: number, request: number, arg: bigint): SysResult {
    return this.sys.ioctl(fd, request, arg);
  }

  pread(fd: number, len: number, offset: bigint): SysResult & { data: Uint8Array } {
    return this.sys.pread(fd, len, offset);
  }

  pwrite(fd: number, bytes: Uint8Array, offset: bigint): SysResult {
    return this.sys.pwrite(fd, bytes, offset);
  }

  mmapDevice(fd: number, len: bigint, offset: bigint): SysResult & { addr: bigint } {
    const r = this.sys.mmap(fd, len, offset);
    if (!r.bar) return { ...fail(r.errno), addr: 0n };
    const addr = this.nextBar;
    this.nextBar += (len + 0xfffffn) & ~0xfffffn;
    this.bars.set(addr, r.bar);
    return { ret: 0, errno: 0, addr };
  }

  munmap(addr: bigint): void {
    this.bars.delete(addr);
  }

  eventfd(): SysResult {
    return this.sys.eventfd();
  }

  readEventfd(fd: number): SysResult & { value: bigint } {
    const r = this.sys.read(fd, 8);
    if (r.ret < 0) return { ...fail(r.errno), value: 0n };
    return { ...ok(8), value: new DataView(r.data.buffer).getBigUint64(0, true) };
  }

  poll(fd: number, _timeoutMs: number): SysResult {
    // The model delivers interrupts synchronously: what has not arrived by now never will.
    const r = this.sys.pollIn(fd);
    return r;
  }

  usleep(_us: number): void {
    // device work completes before the next access in this model; nothing to wait for
  }

  readFile(path: string, max: number): SysResult & { data: Uint8Array } {
    const fd = this.sys.open(path);
    if (fd.ret < 0) return { ...fd, data: new Uint8Array(0) };
    const r = this.sys.read(fd.ret, max);
    this.sys.close(fd.ret);
    return r.ret < 0 ? r : { ...ok(), data: r.data };
  }

  readDir(path: string): string[] | null {
    const r = this.sys.readdir(path);
    return r.ret < 0 ? null : r.names;
  }

  dropIpcLockAndSetMemlock(bytes: bigint): string | null {
    // capset(2) and setrlimit(2) on the model process
    this.sys.process.capIpcLock = false;
    this.sys.process.rlimitMemlock = bytes;
    return null;
  }

  /** /dev/kmsg: the kernel log since the last call, each record's text as the probe extracts it. */
  kmsg(): string[] {
    if (this.kmsgFd < 0) this.kmsgFd = this.sys.open("/dev/kmsg").ret;
    const out: string[] = [];
    for (;;) {
      const r = this.sys.read(this.kmsgFd, 8192);
      if (r.ret < 0) break;
      const rec = String.fromCharCode(...r.data);
      out.push(rec.slice(rec.indexOf(";") + 1).replace(/\n$/, ""));
    }
    return out;
  }

  private kmsgFd = -1;
}
