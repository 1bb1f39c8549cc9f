/**
 * The memory of the calling process as the kernel reaches it: copy_from_user / copy_to_user on user
 * virtual addresses, EFAULT where nothing is mapped. One implementation is the model's own `Process`
 * (the replay's probe lives there); the native door supplies another backed by a real process.
 */
import { ErrnoError } from "@iommu/core";
import type { Process } from "@vfio/type1";

export interface UserMemory {
  /** copy_from_user: throws ErrnoError EFAULT when any byte is not mapped. */
  read(addr: bigint, len: number): Uint8Array;
  /** copy_to_user: throws ErrnoError EFAULT when any byte is not mapped writable. */
  write(addr: bigint, bytes: Uint8Array): void;
  /**
   * How many bytes from `addr` an ioctl argument may span (at least `min`): the kernel reads the struct's
   * fields where the caller's buffer has them and faults past its end.
   */
  argExtent(addr: bigint, min: number): number;
}

/**
 * The probe's heap (malloc'd ioctl structs and bitmaps): a sparse 1 TiB anonymous vma, handed out once and
 * never reused, so every calloc gets never-touched memory, which reads as zero without being written.
 */
const HEAP_BASE = 0x7f00_0000_0000n;
const HEAP_SIZE = 0x100_0000_0000n;

/** User memory of a model `Process`, with the C library's heap on top (calloc blocks bound ioctl arguments). */
export class ProcessMemory implements UserMemory {
  private heapNext = HEAP_BASE;
  /** Blocks handed out by calloc (start → length): the user memory an ioctl argument may span. */
  private readonly blocks = new Map<bigint, number>();

  constructor(readonly process: Process) {
    process.mmap({ start: HEAP_BASE, size: HEAP_SIZE, kind: "anon", writable: true, name: "[heap]" });
  }

  read(addr: bigint, len: number): Uint8Array {
    return this.process.readUser(addr, len);
  }

  write(addr: bigint, bytes: Uint8Array): void {
    this.process.writeUser(addr, bytes);
  }

  argExtent(addr: bigint, min: number): number {
    for (const [start, len] of this.blocks) {
      if (addr >= start && addr < start + BigInt(len)) return Math.max(min, Number(start + BigInt(len) - addr));
    }
    return min;
  }

  /** calloc: zeroed memory the process owns. */
  calloc(len: number): bigint {
    const a = this.heapNext;
    const n = (BigInt(Math.max(len, 1)) + 0xfffn) & ~0xfffn;
    if (a + n > HEAP_BASE + HEAP_SIZE) throw new ErrnoError("ENOMEM", "malloc", "heap exhausted", { len });
    this.heapNext += n;
    this.blocks.set(a, len);
    return a;
  }

  free(addr: bigint): void {
    // bump allocator: the probe's allocations are few and small; only forget the block
    this.blocks.delete(addr);
  }
}
