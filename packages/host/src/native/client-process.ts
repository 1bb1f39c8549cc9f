/**
 * The model's view of a real client process. Its vmas mirror /proc/PID/maps; the frames type1 pins for it
 * are a window of the board's physical address space whose every byte is the client's own memory at the
 * pinned virtual address (an MMIO region served from /proc/PID/mem), so a device's DMA through the IOMMU
 * lands in the client's buffer and reads what the client wrote. A page the client has touched pins as
 * itself (not the zero page), as GUP would find it.
 */
import type { MemRegion, MmioHandler, PhysicalMemory } from "@iommu/core";
import { PAGE_SIZE, Process, type ProcessInit, type Vma } from "@vfio/type1";
import { HostPagePool } from "../boards/page-pool.js";
import type { ClientMemory } from "./client-memory.js";

/** Physical windows of door clients: above every board's RAM and MMIO, below VT-d's 39-bit width. */
export const CLIENT_WINDOW_BASE = 0x60_0000_0000n;
export const CLIENT_WINDOW_SIZE = 0x2_0000_0000n;
export const CLIENT_WINDOW_SLOTS = 16;

export class ClientProcess extends Process {
  constructor(
    init: ProcessInit,
    readonly client: ClientMemory,
  ) {
    super(init);
  }

  override faultIn(vaddr: bigint, write: boolean, maxPages: number, unshare = false) {
    // GUP finds the page the client already touched; only an untouched one reads as the zero page
    // (and not even that under FAULT_FLAG_UNSHARE, which the kernel profile's longtermPinUnshare asks for)
    const vma = this.vmaAt(vaddr);
    if (!write && vma?.writable && !vma.pages.has(Number((vaddr - vma.start) / vma.pageSize))) {
      if (this.client.resident(vaddr)) return super.faultIn(vaddr, true, maxPages, unshare);
    }
    return super.faultIn(vaddr, write, maxPages, unshare);
  }

  override readUser(vaddr: bigint, len: number): Uint8Array {
    this.checkUser(vaddr, len, false);
    return this.client.read(vaddr, len);
  }

  override writeUser(vaddr: bigint, bytes: Uint8Array): void {
    this.checkUser(vaddr, bytes.length, true);
    this.client.write(vaddr, bytes);
  }

  /** Adds the client's mappings the model does not have yet (the client maps memory without telling us). */
  syncMaps(): void {
    const have = this.listVmas();
    for (const v of this.client.maps()) {
      if (v.end > this.taskSize) continue;
      let start = v.start;
      for (const h of have) {
        if (h.end <= start || h.start >= v.end) continue;
        if (h.start > start)
          this.mmap({ start, size: h.start - start, kind: "anon", writable: v.writable, name: v.name });
        if (h.end > start) start = h.end;
      }
      if (start < v.end) this.mmap({ start, size: v.end - start, kind: "anon", writable: v.writable, name: v.name });
    }
  }

  /** CAP_IPC_LOCK and RLIMIT_MEMLOCK as the client has them now. */
  syncCredentials(): void {
    const c = this.client.credentials();
    if (!c) return;
    this.capIpcLock = c.capIpcLock;
    this.rlimitMemlock = c.memlock;
  }
}

/** The window of one client: its frames, and where each frame's bytes live in the client. */
export class ClientWindow implements MmioHandler {
  readonly pages: HostPagePool;
  private readonly region: MemRegion;
  private owner: ClientProcess | null = null;
  private reverse = new Map<bigint, bigint>();

  constructor(
    private readonly memory: PhysicalMemory,
    readonly base: bigint,
    readonly size: bigint,
    private readonly client: ClientMemory,
  ) {
    this.pages = new HostPagePool(base, size);
    this.region = memory.addMmio(base, size, this, `door client ${client.pid}`);
  }

  attach(p: ClientProcess): void {
    this.owner = p;
  }

  /** The client address behind a frame of the window (rebuilt from the vmas' pages on a miss). */
  private vaddrOf(frame: bigint): bigint | undefined {
    let v = this.reverse.get(frame);
    if (v === undefined && this.owner) {
      this.reverse = new Map();
      for (const vma of this.owner.listVmas() as readonly Vma[]) {
        for (const [idx, phys] of vma.pages) {
          for (let o = 0n; o < vma.pageSize; o += PAGE_SIZE) {
            this.reverse.set(phys + o, vma.start + BigInt(idx) * vma.pageSize + o);
          }
        }
      }
      v = this.reverse.get(frame);
    }
    return v;
  }

  read(offset: bigint, size: 1 | 2 | 4 | 8): bigint {
    const v = this.vaddrOf((this.base + offset) & ~(PAGE_SIZE - 1n));
    if (v === undefined) return 0n; // the zero page, or a frame not handed out
    try {
      const b = this.client.read(v + (offset & (PAGE_SIZE - 1n)), size);
      let x = 0n;
      for (let i = size - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
      return x;
    } catch {
      return (1n << BigInt(8 * size)) - 1n; // the client is gone: reads complete with all ones
    }
  }

  write(offset: bigint, size: 1 | 2 | 4 | 8, value: bigint): void {
    const v = this.vaddrOf((this.base + offset) & ~(PAGE_SIZE - 1n));
    if (v === undefined) return;
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = Number((value >> BigInt(8 * i)) & 0xffn);
    try {
      this.client.write(v + (offset & (PAGE_SIZE - 1n)), b);
    } catch {}
  }

  close(): void {
    this.memory.remove(this.region);
  }
}
