/**
 * The native door's server: a board's system-call surface (`BoardSys`) over a Unix socket, one simulated
 * process per connection, for programs running with the preload library (native/preload.c). The wire is
 * the library's: a request is `{u32 len, u32 op}` and the op's fields; a reply is `{i64 ret, i32 errno,
 * u32 nsig, u32 len, u32 pad}`, the eventfd signals the model raised (each `{i32 fd, u32 pad, u64 count}`,
 * which the client writes to its own eventfds: an MSI), then `len` data bytes. A request the model
 * cannot serve answers an errno; a bug in the model answers EIO and is reported, and the server goes on
 * serving every other connection.
 */
import { readlinkSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { ERRNO, ErrnoError, U64_MAX } from "@iommu/core";
import { VFIO_PCI_BAR0_REGION_INDEX } from "@vfio/uapi";
import type { Board } from "../boards/types.js";
import { EventFd } from "../kernel/eventfd.js";
import type { VfioPciDevice } from "../kernel/vfio-pci.js";
import { BoardSys, type DataResult } from "../sys/board-sys.js";
import { spliceStatus } from "../sys/sysfs.js";
import { ClientMemory } from "./client-memory.js";
import {
  CLIENT_WINDOW_BASE,
  CLIENT_WINDOW_SIZE,
  CLIENT_WINDOW_SLOTS,
  ClientProcess,
  ClientWindow,
} from "./client-process.js";
import { OP } from "./door-server-ops.js";
import { traceLine } from "./door-trace.js";

export { OP } from "./door-server-ops.js";

const KIND_NUMBER = { file: 1, dir: 2, link: 3, chr: 4 } as const;

/** A client eventfd the model signals: each signal is a write the client makes to its own eventfd. */
class ClientEventFd extends EventFd {
  constructor(
    readonly fd: number,
    private readonly pending: { fd: number; count: bigint }[],
  ) {
    super(`client eventfd ${fd}`);
  }

  override signal(n = 1n): void {
    super.signal(n);
    this.pending.push({ fd: this.fd, count: n });
  }
}

interface Reply {
  ret: number | bigint;
  errno: number;
  data?: Uint8Array;
}

/** One connected program: its process on the board, its memory, the signals owed to it. */
class Session {
  readonly sys: BoardSys;
  readonly process: ClientProcess;
  readonly pending: { fd: number; count: bigint }[] = [];
  private readonly eventfds = new Map<number, ClientEventFd>();
  private readonly bars = new Map<number, VfioPciDevice>();

  constructor(
    board: Board,
    readonly memory: ClientMemory,
    readonly window: ClientWindow,
    private readonly trace?: (line: string) => void,
  ) {
    this.process = board.adoptProcess(
      new ClientProcess(
        { memory: board.memory, pages: window.pages, pid: memory.pid, name: `door client ${memory.pid}` },
        memory,
      ),
    );
    window.attach(this.process);
    this.process.syncCredentials();
    this.sys = new BoardSys(board, {
      process: this.process,
      memory,
      eventfds: (fd) => this.eventfdOf(fd),
      status: (vmLck, vmPin) => spliceStatus(memory.statusText())(vmLck, vmPin),
    });
  }

  /** eventfd_ctx_fdget on the client's descriptor: EBADF when it is not open, EINVAL when not an eventfd. */
  private eventfdOf(fd: number): EventFd | number {
    let target: string;
    try {
      target = readlinkSync(`/proc/${this.memory.pid}/fd/${fd}`);
    } catch {
      return -ERRNO.EBADF;
    }
    if (target !== "anon_inode:[eventfd]") return -ERRNO.EINVAL;
    let e = this.eventfds.get(fd);
    if (!e) {
      e = new ClientEventFd(fd, this.pending);
      this.eventfds.set(fd, e);
    }
    return e;
  }

  handle(op: number, p: Buffer): Reply {
    if (!this.trace) return this.serve(op, p);
    const kind = op === OP.CLOSE ? this.sys.fds.get(p.readInt32LE(0))?.kind : undefined;
    let reply: Reply;
    try {
      reply = this.serve(op, p);
    } catch (e) {
      reply = { ret: -1, errno: e instanceof ErrnoError ? -e.errno : ERRNO.EIO };
      this.traceCall(op, p, reply, kind);
      throw e;
    }
    this.traceCall(op, p, reply, kind);
    return reply;
  }

  private traceCall(op: number, p: Buffer, reply: Reply, closedKind: string | undefined): void {
    const vfioKinds = ["container", "group", "device"];
    const line = traceLine(op, p, reply, {
      isVfioFd: (fd) => (op === OP.CLOSE ? vfioKinds.includes(closedKind ?? "") : this.sys.deviceOf(fd) !== null),
      isVfioDevice: (fd) => this.sys.deviceOf(fd) !== null,
      read: (addr, len) => this.memory.read(addr, len),
    });
    if (line !== null) this.trace?.(`[pid ${this.memory.pid}] ${line}`);
  }

  private serve(op: number, p: Buffer): Reply {
    const sys = this.sys;
    const str = (at: number) => p.subarray(at).toString("latin1");
    const res = (r: { ret: number; errno: number }, data?: Uint8Array): Reply => ({ ...r, ...(data ? { data } : {}) });
    switch (op) {
      case OP.OPEN:
        return res(sys.open(str(8), p.readInt32LE(0)));
      case OP.CLOSE: {
        const fd = p.readInt32LE(0);
        this.bars.delete(fd);
        return res(sys.close(fd));
      }
      case OP.IOCTL: {
        const req = p.readBigUInt64LE(8);
        if (req > 0xffff_ffffn) return { ret: -1, errno: ERRNO.ENOTTY };
        // type1 reads the task's mappings and credentials when it pins: take them as the client has them now
        this.process.syncMaps();
        this.process.syncCredentials();
        const newFd = p.readInt32LE(4);
        return res(sys.ioctl(p.readInt32LE(0), Number(req), p.readBigUInt64LE(16), newFd >= 0 ? newFd : undefined));
      }
      case OP.READ: {
        const r: DataResult = sys.read(p.readInt32LE(0), p.readUInt32LE(4));
        return res(r, r.data);
      }
      case OP.PREAD: {
        const r = sys.pread(p.readInt32LE(0), p.readUInt32LE(4), p.readBigInt64LE(8));
        return res(r, r.data);
      }
      case OP.WRITE:
        return res(sys.write(p.readInt32LE(0), p.subarray(16)));
      case OP.PWRITE:
        return res(sys.pwrite(p.readInt32LE(0), p.subarray(16), p.readBigInt64LE(8)));
      case OP.LSEEK: {
        const whence = p.readInt32LE(4);
        if (whence !== 0 && whence !== 1 && whence !== 2) return { ret: -1, errno: ERRNO.EINVAL };
        return res(sys.lseek(p.readInt32LE(0), p.readBigInt64LE(8), whence));
      }
      case OP.MMAP: {
        const fd = p.readInt32LE(0);
        const r = sys.mmap(fd, p.readBigUInt64LE(8), p.readBigInt64LE(16));
        const dev = sys.deviceOf(fd);
        if (r.ret >= 0 && dev) {
          this.bars.set(fd, dev);
          if (p.length >= 32) this.mapBarVma(dev, p.readBigUInt64LE(24), p.readBigUInt64LE(8), p.readUInt32LE(4));
        }
        return res(r);
      }
      case OP.MMIO:
        return this.mmio(p);
      case OP.READLINK: {
        const r = sys.readlink(str(0));
        return res(r, Buffer.from(r.target, "latin1"));
      }
      case OP.STAT: {
        const path = str(4);
        const r = sys.stat(path, p.readInt32LE(0) !== 0);
        if (r.ret < 0 || !r.kind) return res(r);
        const out = Buffer.alloc(16);
        out.writeUInt32LE(KIND_NUMBER[r.kind], 0);
        out.writeBigUInt64LE(BigInt(r.kind === "file" ? (sys.sysfs.file(path)?.length ?? 0) : 0), 8);
        return res(r, out);
      }
      case OP.READDIR: {
        const r = sys.readdir(str(0));
        return res(r, Buffer.from(r.names.map((n) => `${n}\0`).join(""), "latin1"));
      }
      default:
        return { ret: -1, errno: ERRNO.ENOSYS };
    }
  }

  /**
   * The client's BAR mapping as the kernel has it: a VM_PFNMAP vma over the BAR's physical pages
   * (vfio_pci_core_mmap's remap), so a MAP_DMA of it (QEMU maps every BAR for peer-to-peer) pins the MMIO
   * pfns through follow_fault_pfn. A range the model already holds stays as it is.
   */
  private mapBarVma(dev: VfioPciDevice, addr: bigint, len: bigint, prot: number): void {
    const base = dev.device.bar0Base;
    if (base === null || addr === 0n) return;
    try {
      this.process.mmap({
        start: addr,
        size: (len + 0xfffn) & ~0xfffn,
        kind: "pfnmap",
        phys: base,
        writable: (prot & 2) !== 0,
        name: `${dev.name} BAR0`,
      });
    } catch (e) {
      if (!(e instanceof ErrnoError)) throw e;
    }
  }

  /** A CPU load or store to a BAR the client mapped: the device's MMIO handler, no IOMMU on this path. */
  private mmio(p: Buffer): Reply {
    const fd = p.readInt32LE(0);
    const size = p.readUInt32LE(4);
    const off = p.readBigUInt64LE(8);
    const write = p.readUInt32LE(16) !== 0;
    const dev = this.bars.get(fd);
    const out = Buffer.alloc(8);
    if (!dev || off >> 40n !== BigInt(VFIO_PCI_BAR0_REGION_INDEX) || ![1, 2, 4, 8].includes(size)) {
      out.writeBigUInt64LE(U64_MAX);
      return { ret: -1, errno: ERRNO.EFAULT, data: out };
    }
    const at = off & ((1n << 40n) - 1n);
    const s = size as 1 | 2 | 4 | 8;
    if (write) dev.device.bar0.write(at, s, p.readBigUInt64LE(24), {});
    else out.writeBigUInt64LE(BigInt.asUintN(64, dev.device.bar0.read(at, s, {})));
    return { ret: 0, errno: 0, data: out };
  }

  close(): void {
    this.sys.exit();
    this.memory.close();
  }
}

export interface DoorServer {
  readonly path: string;
  /** Connections being served now. */
  readonly sessions: number;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Where model bugs are reported (default: stderr). */
  report?: (line: string) => void;
  /** Each VFIO call a client makes and its answer, one line (door-trace.ts); none when absent. */
  trace?: (line: string) => void;
}

/** Serves `board`'s system calls on a Unix socket at `path` (replacing a stale socket file). */
export function serveBoard(board: Board, path: string, opts: ServeOptions = {}): Promise<DoorServer> {
  const report = opts.report ?? ((l: string) => process.stderr.write(`${l}\n`));
  const slots: (ClientWindow | null)[] = new Array(CLIENT_WINDOW_SLOTS).fill(null);
  const sockets = new Set<Socket>();
  let live = 0;

  const onConnection = (sock: Socket) => {
    sockets.add(sock);
    live++;
    let session: Session | null = null;
    let slot = -1;
    let buf = Buffer.alloc(0);
    const finish = () => {
      if (!sockets.delete(sock)) return;
      live--;
      try {
        session?.close();
      } catch (e) {
        report(`iommu-sim door: cleanup of a client failed: ${String(e)}`);
      }
      if (slot >= 0) {
        slots[slot]?.close();
        slots[slot] = null;
      }
    };
    sock.on("error", () => finish());
    sock.on("close", () => finish());
    sock.on("data", (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 8) {
        const len = buf.readUInt32LE(0);
        if (len < 4 || len > 64 << 20) {
          sock.destroy();
          return;
        }
        if (buf.length < 4 + len) break;
        const op = buf.readUInt32LE(4);
        const payload = buf.subarray(8, 4 + len);
        buf = buf.subarray(4 + len);
        let reply: Reply;
        try {
          if (op === OP.HELLO) {
            if (session) reply = { ret: -1, errno: ERRNO.EINVAL };
            else {
              slot = slots.indexOf(null);
              if (slot < 0) reply = { ret: -1, errno: ERRNO.ENOSPC };
              else {
                const mem = new ClientMemory(payload.readInt32LE(0));
                const window = new ClientWindow(
                  board.memory,
                  CLIENT_WINDOW_BASE + BigInt(slot) * CLIENT_WINDOW_SIZE,
                  CLIENT_WINDOW_SIZE,
                  mem,
                );
                slots[slot] = window;
                session = new Session(board, mem, window, opts.trace);
                reply = { ret: 0, errno: 0 };
              }
            }
          } else if (!session) reply = { ret: -1, errno: ERRNO.EIO };
          else reply = session.handle(op, payload);
        } catch (e) {
          // a model bug must not take the other clients down: this call fails, the server goes on
          if (!(e instanceof ErrnoError))
            report(`iommu-sim door: op ${op} failed: ${e instanceof Error ? e.stack : e}`);
          reply = { ret: -1, errno: e instanceof ErrnoError ? -e.errno : ERRNO.EIO };
        }
        if (!sock.destroyed) sock.write(encodeReply(reply, session?.pending.splice(0) ?? []));
      }
    });
  };

  return new Promise((resolve, reject) => {
    rmSync(path, { force: true });
    const server: Server = createServer(onConnection);
    server.once("error", reject);
    server.listen(path, () =>
      resolve({
        path,
        get sessions() {
          return live;
        },
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => {
              rmSync(path, { force: true });
              done();
            });
          }),
      }),
    );
  });
}

function encodeReply(r: Reply, signals: readonly { fd: number; count: bigint }[]): Buffer {
  const data = r.data ?? new Uint8Array(0);
  const out = Buffer.alloc(24 + 16 * signals.length + data.length);
  out.writeBigInt64LE(BigInt(r.ret), 0);
  out.writeInt32LE(r.errno, 8);
  out.writeUInt32LE(signals.length, 12);
  out.writeUInt32LE(data.length, 16);
  signals.forEach((s, i) => {
    out.writeInt32LE(s.fd, 24 + 16 * i);
    out.writeBigUInt64LE(s.count, 32 + 16 * i);
  });
  out.set(data, 24 + 16 * signals.length);
  return out;
}
