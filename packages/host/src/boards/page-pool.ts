/**
 * Host pages for user processes: 4 KiB frames of the board's RAM outside the kernel's pool, handed
 * out lowest-first and reused lowest-first so runs are deterministic (the page allocator of the
 * host kernel, as far as pinned user memory is concerned).
 */
import { ErrnoError } from "@iommu/core";

/** A fault that finds no free page: `handle_mm_fault` answers VM_FAULT_OOM, which a pin reports as ENOMEM. */
function exhausted(): ErrnoError {
  return new ErrnoError("ENOMEM", "alloc_pages", "host RAM exhausted");
}
export class HostPagePool {
  private next: bigint;
  private readonly freed: bigint[] = [];
  private used = 0;

  constructor(
    readonly base: bigint,
    readonly size: bigint,
  ) {
    this.next = base;
  }

  /** One 4 KiB frame; throws ENOMEM when the host is out of memory, changing nothing. */
  allocPage(): bigint {
    this.used++;
    if (this.freed.length > 0) return this.freed.pop() as bigint;
    if (this.next + 0x1000n > this.base + this.size) {
      this.used--;
      throw exhausted();
    }
    const a = this.next;
    this.next += 0x1000n;
    return a;
  }

  /** `count` contiguous frames aligned to their total size (power of two): hugetlb pages. */
  allocPages(count: number): bigint {
    const bytes = BigInt(count) * 0x1000n;
    const align = (count & (count - 1)) === 0 ? bytes : 0x1000n;
    const a = (this.next + align - 1n) & ~(align - 1n);
    if (a + bytes > this.base + this.size) throw exhausted();
    this.next = a + bytes;
    this.used += count;
    return a;
  }

  freePage(addr: bigint): void {
    this.used--;
    this.freed.push(addr);
    this.freed.sort((x, y) => (x > y ? -1 : x < y ? 1 : 0));
  }

  get pagesInUse(): number {
    return this.used;
  }
}
