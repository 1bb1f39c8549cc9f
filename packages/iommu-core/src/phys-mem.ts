/**
 * A sparse, byte-addressable 64-bit physical address space: RAM ranges backed by 4 KiB frames that
 * appear on first touch (zero-filled), and MMIO ranges served by handlers. Drivers keep their tables
 * here and devices' DMA lands here, so a driver and the hardware it drives meet only through memory.
 */

import { ErrnoError } from "./errno.js";
import { U64_MAX } from "./u64.js";

export const FRAME_SHIFT = 12;
export const FRAME_SIZE = 1 << FRAME_SHIFT;
const FRAME_MASK = BigInt(FRAME_SIZE - 1);
/** Below this, an address converts to a JS number exactly (fast paths). */
const SAFE_ADDR = 1n << 53n;
/** Attributes of a CPU access (the fast paths pass one shared object). */
const NO_ATTRS: MemTxAttrs = Object.freeze({});

/** Attributes of a bus transaction (QEMU's MemTxAttrs): who issued it. */
export interface MemTxAttrs {
  /** PCI requester id (bus << 8 | devfn) of the device that issued the write, if any. */
  readonly requesterId?: number;
}

/** An MMIO range's handler: accesses are 1, 2, 4 or 8 bytes, naturally aligned, little-endian. */
export interface MmioHandler {
  read(offset: bigint, size: 1 | 2 | 4 | 8, attrs: MemTxAttrs): bigint;
  write(offset: bigint, size: 1 | 2 | 4 | 8, value: bigint, attrs: MemTxAttrs): void;
}

export interface MemRegion {
  readonly kind: "ram" | "mmio";
  readonly name: string;
  readonly base: bigint;
  /** Inclusive last address. */
  readonly last: bigint;
  readonly handler?: MmioHandler;
}

/** What an access hit: RAM, an MMIO range, or nothing (an unsupported request on the bus). */
export type AccessTarget = "ram" | "mmio" | "none";

export class PhysicalMemory {
  private readonly frames = new Map<number, Uint8Array>();
  private readonly views = new Map<number, DataView>();
  private readonly regions: MemRegion[] = [];
  /** The last RAM range a read64/write64 hit, as numbers (empty: base > last). */
  private lastRamBase = 1;
  private lastRamLast = 0;
  /** The last frame read64/write64 touched (-1: none). */
  private lastPfn = -1;
  private lastView: DataView | undefined = undefined;
  /** The last MMIO range an aligned access hit (doorbells go to the same one). */
  private lastMmio: MemRegion | null = null;

  /** Add a RAM range `[base, base + size)`. Overlapping an existing range is a RangeError. */
  addRam(base: bigint, size: bigint, name = "ram"): MemRegion {
    return this.add({ kind: "ram", name, base, last: base + size - 1n });
  }

  /** Add an MMIO range `[base, base + size)` served by `handler`. */
  addMmio(base: bigint, size: bigint, handler: MmioHandler, name = "mmio"): MemRegion {
    return this.add({ kind: "mmio", name, base, last: base + size - 1n, handler });
  }

  /** Remove a previously added range (RAM contents are dropped). */
  remove(region: MemRegion): void {
    const i = this.regions.indexOf(region);
    if (i < 0) return;
    this.regions.splice(i, 1);
    this.lastRamBase = 1;
    this.lastRamLast = 0;
    this.lastPfn = -1;
    this.lastView = undefined;
    this.lastMmio = null;
    if (region.kind === "ram") {
      for (const pfn of [...this.frames.keys()]) {
        const a = BigInt(pfn) << BigInt(FRAME_SHIFT);
        if (a >= region.base && a <= region.last) {
          this.frames.delete(pfn);
          this.views.delete(pfn);
        }
      }
    }
  }

  /** Every range, in address order. */
  listRegions(): readonly MemRegion[] {
    return this.regions;
  }

  /** The range containing `addr`, or undefined. */
  regionAt(addr: bigint): MemRegion | undefined {
    const rs = this.regions;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = rs[mid] as MemRegion;
      if (addr < r.base) hi = mid - 1;
      else if (addr > r.last) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /** What `[addr, addr + len)` hits as a whole: "none" unless one range covers all of it. */
  classify(addr: bigint, len: number): AccessTarget {
    const r = this.regionAt(addr);
    if (!r || addr + BigInt(Math.max(len, 1)) - 1n > r.last) return "none";
    return r.kind;
  }

  /** Number of 4 KiB RAM frames that have been touched (memory cost of the model). */
  get residentFrames(): number {
    return this.frames.size;
  }

  /**
   * Read `len` bytes. Bytes with nothing behind them read as 0xff (an unsupported request
   * completes with all ones on PCI).
   */
  read(addr: bigint, len: number, attrs: MemTxAttrs = {}): Uint8Array {
    const out = new Uint8Array(len);
    let off = 0;
    while (off < len) {
      const a = addr + BigInt(off);
      const r = this.regionAt(a);
      if (!r) {
        out[off++] = 0xff;
        continue;
      }
      const room = Number(minBig(r.last - a + 1n, BigInt(len - off)));
      if (r.kind === "ram") this.readRam(a, out.subarray(off, off + room));
      else this.mmioRead(r, a, out.subarray(off, off + room), attrs);
      off += room;
    }
    return out;
  }

  /** Write bytes. Bytes with nothing behind them are dropped. */
  write(addr: bigint, data: Uint8Array, attrs: MemTxAttrs = {}): void {
    let off = 0;
    while (off < data.length) {
      const a = addr + BigInt(off);
      const r = this.regionAt(a);
      if (!r) {
        off++;
        continue;
      }
      const room = Number(minBig(r.last - a + 1n, BigInt(data.length - off)));
      if (r.kind === "ram") this.writeRam(a, data.subarray(off, off + room));
      else this.mmioWrite(r, a, data.subarray(off, off + room), attrs);
      off += room;
    }
  }

  /** Aligned little-endian u64 read; RAM fast path (page tables live here). */
  read64(addr: bigint): bigint {
    if (addr < SAFE_ADDR) {
      const n = Number(addr);
      if (n % 8 === 0 && this.isRamAt(n, addr)) {
        const pfn = Math.floor(n / FRAME_SIZE);
        const v = pfn === this.lastPfn ? this.lastView : this.views.get(pfn);
        if (v === undefined) return 0n;
        this.lastPfn = pfn;
        this.lastView = v;
        return v.getBigUint64(n - pfn * FRAME_SIZE, true);
      }
    }
    const m = (addr & 7n) === 0n ? this.mmioAt(addr, 8) : undefined;
    if (m) return (m.handler as MmioHandler).read(addr - m.base, 8, NO_ATTRS);
    return new DataView(this.read(addr, 8).buffer).getBigUint64(0, true);
  }

  /** Aligned little-endian u64 write; RAM fast path. */
  write64(addr: bigint, value: bigint): void {
    if (addr < SAFE_ADDR) {
      const n = Number(addr);
      if (n % 8 === 0 && this.isRamAt(n, addr)) {
        const pfn = Math.floor(n / FRAME_SIZE);
        const v = pfn === this.lastPfn ? (this.lastView as DataView) : this.frameView(pfn);
        this.lastPfn = pfn;
        this.lastView = v;
        // setBigUint64 stores the value modulo 2^64 (ToBigUint64), as BigInt.asUintN(64, ·) would.
        v.setBigUint64(n - pfn * FRAME_SIZE, value, true);
        return;
      }
    }
    const m = (addr & 7n) === 0n ? this.mmioAt(addr, 8) : undefined;
    if (m) {
      (m.handler as MmioHandler).write(addr - m.base, 8, BigInt.asUintN(64, value), NO_ATTRS);
      return;
    }
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    this.write(addr, b);
  }

  /**
   * Whether `addr` (= `n`, below 2^53) is RAM; remembers the last RAM range hit, as numbers (page-table
   * walks stay in one). A bound at or above 2^53 rounds to a number at or above 2^53, which keeps the
   * comparison with n exact.
   */
  private isRamAt(n: number, addr: bigint): boolean {
    if (n >= this.lastRamBase && n <= this.lastRamLast) return true;
    const r = this.regionAt(addr);
    if (r?.kind !== "ram") return false;
    this.lastRamBase = Number(r.base);
    this.lastRamLast = Number(r.last);
    return true;
  }

  read32(addr: bigint, attrs: MemTxAttrs = NO_ATTRS): number {
    if (addr < SAFE_ADDR) {
      const n = Number(addr);
      if (n % 4 === 0 && this.isRamAt(n, addr)) {
        // RAM fast path (a status dword, say): same bytes as the generic read.
        const pfn = Math.floor(n / FRAME_SIZE);
        const v = pfn === this.lastPfn ? this.lastView : this.views.get(pfn);
        return v === undefined ? 0 : v.getUint32(n - pfn * FRAME_SIZE, true);
      }
    }
    const r = (addr & 3n) === 0n ? this.mmioAt(addr, 4) : undefined;
    if (r) return Number((r.handler as MmioHandler).read(addr - r.base, 4, attrs) & 0xffff_ffffn);
    return new DataView(this.read(addr, 4, attrs).buffer).getUint32(0, true);
  }

  write32(addr: bigint, value: number, attrs: MemTxAttrs = NO_ATTRS): void {
    if (addr < SAFE_ADDR) {
      const n = Number(addr);
      if (n % 4 === 0 && this.isRamAt(n, addr)) {
        const pfn = Math.floor(n / FRAME_SIZE);
        const v = pfn === this.lastPfn ? (this.lastView as DataView) : this.frameView(pfn);
        this.lastPfn = pfn;
        this.lastView = v;
        v.setUint32(n - pfn * FRAME_SIZE, value >>> 0, true);
        return;
      }
    }
    const r = (addr & 3n) === 0n ? this.mmioAt(addr, 4) : undefined;
    if (r) {
      (r.handler as MmioHandler).write(addr - r.base, 4, BigInt(value >>> 0), attrs);
      return;
    }
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    this.write(addr, b, attrs);
  }

  /** The MMIO range wholly containing an aligned `size`-byte access (register fast path), if any. */
  private mmioAt(addr: bigint, size: number): MemRegion | undefined {
    const last = this.lastMmio;
    if (last !== null && addr >= last.base && addr + BigInt(size) - 1n <= last.last) return last;
    const r = this.regionAt(addr);
    if (r?.kind === "mmio" && addr + BigInt(size) - 1n <= r.last) {
      this.lastMmio = r;
      return r;
    }
    return undefined;
  }

  /** Zero `[addr, addr + len)` of RAM (a fresh page-table page, say). */
  zero(addr: bigint, len: number): void {
    this.write(addr, new Uint8Array(len));
  }

  private add(r: MemRegion): MemRegion {
    if (r.last < r.base || r.base < 0n || r.last > U64_MAX) {
      throw new RangeError(`physical range ${hex(r.base)}..${hex(r.last)} is empty or beyond 64 bits`);
    }
    for (const o of this.regions) {
      if (r.base <= o.last && o.base <= r.last) {
        throw new RangeError(`physical range ${r.name} overlaps ${o.name} at ${hex(maxBig(r.base, o.base))}`);
      }
    }
    this.regions.push(r);
    this.regions.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
    return r;
  }

  private frameView(pfn: number): DataView {
    let v = this.views.get(pfn);
    if (!v) {
      const f = new Uint8Array(FRAME_SIZE);
      this.frames.set(pfn, f);
      v = new DataView(f.buffer);
      this.views.set(pfn, v);
    }
    return v;
  }

  private readRam(addr: bigint, out: Uint8Array): void {
    let done = 0;
    while (done < out.length) {
      const a = addr + BigInt(done);
      const pfn = Number(a >> 12n);
      const o = Number(a & FRAME_MASK);
      const n = Math.min(FRAME_SIZE - o, out.length - done);
      const f = this.frames.get(pfn);
      if (f) out.set(f.subarray(o, o + n), done);
      else out.fill(0, done, done + n);
      done += n;
    }
  }

  private writeRam(addr: bigint, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const a = addr + BigInt(done);
      const pfn = Number(a >> 12n);
      const o = Number(a & FRAME_MASK);
      const n = Math.min(FRAME_SIZE - o, data.length - done);
      this.frameView(pfn);
      (this.frames.get(pfn) as Uint8Array).set(data.subarray(done, done + n), o);
      done += n;
    }
  }

  private mmioRead(r: MemRegion, addr: bigint, out: Uint8Array, attrs: MemTxAttrs): void {
    forEachChunk(addr, out.length, (a, size, at) => {
      const v = (r.handler as MmioHandler).read(a - r.base, size, attrs);
      for (let i = 0; i < size; i++) out[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
    });
  }

  private mmioWrite(r: MemRegion, addr: bigint, data: Uint8Array, attrs: MemTxAttrs): void {
    forEachChunk(addr, data.length, (a, size, at) => {
      let v = 0n;
      for (let i = 0; i < size; i++) v |= BigInt(data[at + i] as number) << BigInt(8 * i);
      (r.handler as MmioHandler).write(a - r.base, size, v, attrs);
    });
  }
}

/** Split `[addr, addr+len)` into naturally aligned accesses of 8, 4, 2 or 1 bytes. */
function forEachChunk(addr: bigint, len: number, fn: (a: bigint, size: 1 | 2 | 4 | 8, at: number) => void): void {
  let at = 0;
  while (at < len) {
    const a = addr + BigInt(at);
    const left = len - at;
    let size: 1 | 2 | 4 | 8 = 1;
    for (const s of [8, 4, 2] as const) {
      if (left >= s && (a & BigInt(s - 1)) === 0n) {
        size = s;
        break;
      }
    }
    fn(a, size, at);
    at += size;
  }
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/**
 * Hands out zeroed 4 KiB frames from a RAM range reserved for the kernel (page tables, stream
 * tables, queues). Freed frames are reused lowest-first so layouts are deterministic.
 */
export class PageAllocator {
  private next: bigint;
  private readonly free: bigint[] = [];
  private inUse = 0;

  constructor(
    private readonly memory: PhysicalMemory,
    readonly base: bigint,
    readonly size: bigint,
  ) {
    if ((base & FRAME_MASK) !== 0n || (size & FRAME_MASK) !== 0n) {
      throw new RangeError("PageAllocator range must be 4 KiB aligned");
    }
    this.next = base;
  }

  /**
   * Allocate `count` physically contiguous zeroed frames (aligned to their total size when a power of
   * two). Throws ENOMEM (`alloc_pages` returned NULL) when the pool has no room, changing nothing.
   */
  alloc(count = 1): bigint {
    if (count === 1 && this.free.length > 0) {
      const a = this.free.pop() as bigint;
      this.memory.zero(a, FRAME_SIZE);
      this.inUse++;
      return a;
    }
    const bytes = BigInt(count * FRAME_SIZE);
    const align = (count & (count - 1)) === 0 ? bytes : BigInt(FRAME_SIZE);
    const a = (this.next + align - 1n) & ~(align - 1n);
    if (a + bytes > this.base + this.size) {
      throw new ErrnoError("ENOMEM", "alloc_pages", "the kernel's page pool is exhausted", {
        frames: count,
        inUse: this.inUse,
      });
    }
    this.next = a + bytes;
    this.memory.zero(a, Number(bytes));
    this.inUse += count;
    return a;
  }

  /** Return one frame. */
  freeFrame(addr: bigint): void {
    this.free.push(addr);
    this.free.sort((x, y) => (x > y ? -1 : x < y ? 1 : 0));
    this.inUse--;
  }

  /** Frames currently handed out. */
  get framesInUse(): number {
    return this.inUse;
  }
}
