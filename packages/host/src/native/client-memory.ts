/**
 * A real process's memory as the kernel reaches it: /proc/PID/mem for copy_from_user / copy_to_user,
 * /proc/PID/maps for its vmas, /proc/PID/pagemap for which pages are resident. The door's server reads
 * and writes the client program's own memory with it (the client allows it with PR_SET_PTRACER).
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { ErrnoError, U64_MAX } from "@iommu/core";
import type { UserMemory } from "../sys/user-memory.js";

export interface ClientVma {
  readonly start: bigint;
  readonly end: bigint;
  readonly writable: boolean;
  readonly name: string;
}

/** Largest argument the server copies in for one ioctl (GET_INFO buffers, bitmaps headers). */
const ARG_MAX = 1 << 20;

export class ClientMemory implements UserMemory {
  private readonly mem: number;
  private readonly pagemap: number;
  private closed = false;

  constructor(readonly pid: number) {
    this.mem = openSync(`/proc/${pid}/mem`, "r+");
    this.pagemap = openSync(`/proc/${pid}/pagemap`, "r");
  }

  read(addr: bigint, len: number): Uint8Array {
    const out = new Uint8Array(len);
    if (len === 0) return out;
    let got = 0;
    try {
      if (!this.closed && addr >= 0n && addr + BigInt(len) <= 1n << 47n)
        got = readSync(this.mem, out, 0, len, Number(addr));
    } catch {}
    if (got !== len) throw new ErrnoError("EFAULT", "copy_from_user", "bad user address", { addr, len });
    return out;
  }

  write(addr: bigint, bytes: Uint8Array): void {
    let put = 0;
    try {
      if (!this.closed && addr >= 0n && addr + BigInt(bytes.length) <= 1n << 47n)
        put = writeSync(this.mem, bytes, 0, bytes.length, Number(addr));
    } catch {}
    if (put !== bytes.length) throw new ErrnoError("EFAULT", "copy_to_user", "bad user address", { addr });
  }

  /**
   * Up to the end of the mapping that holds `addr` (and the mappings right after it that can be read), at
   * most 1 MiB. A mapping whose pages cannot be read at all (the seccomp door's BAR placeholder: a memfd
   * past its end) ends the run, so an argument just before it still copies in.
   */
  argExtent(addr: bigint, min: number): number {
    let end = addr;
    for (const v of this.maps()) {
      if (v.start <= end && end < v.end) {
        if (v.start > addr && !this.readable(v.start)) break;
        end = v.end;
      }
    }
    const room = Number(end - addr > BigInt(ARG_MAX) ? BigInt(ARG_MAX) : end - addr);
    return Math.max(min, room);
  }

  private readable(addr: bigint): boolean {
    try {
      return !this.closed && readSync(this.mem, new Uint8Array(1), 0, 1, Number(addr)) === 1;
    } catch {
      return false;
    }
  }

  /** The process's mappings, in address order. */
  maps(): ClientVma[] {
    let text = "";
    try {
      text = readFileSync(`/proc/${this.pid}/maps`, "latin1");
    } catch {
      return [];
    }
    const out: ClientVma[] = [];
    for (const line of text.split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (!m) continue;
      out.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), writable: m[3]![1] === "w", name: m[4] ?? "" });
    }
    return out;
  }

  /** Whether the page at `vaddr` is resident (present or swapped) in the process. */
  resident(vaddr: bigint): boolean {
    const b = Buffer.alloc(8);
    try {
      if (readSync(this.pagemap, b, 0, 8, Number((vaddr >> 12n) * 8n)) !== 8) return false;
    } catch {
      return false;
    }
    return b.readBigUInt64LE(0) >> 62n !== 0n;
  }

  /** /proc/PID/status as the process would read it. */
  statusText(): string {
    try {
      return readFileSync(`/proc/${this.pid}/status`, "latin1");
    } catch {
      return "";
    }
  }

  /** CAP_IPC_LOCK in the effective set, and RLIMIT_MEMLOCK's soft limit (what type1 reads from the task). */
  credentials(): { capIpcLock: boolean; memlock: bigint } | null {
    try {
      const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${this.pid}/status`, "latin1"));
      const lim = /^Max locked memory\s+(\S+)/m.exec(readFileSync(`/proc/${this.pid}/limits`, "latin1"));
      if (!eff || !lim) return null;
      const CAP_IPC_LOCK = 14n;
      return {
        capIpcLock: ((BigInt(`0x${eff[1]}`) >> CAP_IPC_LOCK) & 1n) === 1n,
        memlock: lim[1] === "unlimited" ? U64_MAX : BigInt(lim[1]!),
      };
    } catch {
      return null;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.mem);
    closeSync(this.pagemap);
  }
}
