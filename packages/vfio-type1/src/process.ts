/**
 * The user process VFIO serves: an address space of vmas (anonymous 4 KiB pages, hugetlbfs-backed 2 MiB /
 * 1 GiB pages, MMIO `VM_PFNMAP` ranges), pages faulted in lazily from a host physical page source, the
 * shared zero page that a read fault of untouched anonymous memory maps, `RLIMIT_MEMLOCK`, `CAP_IPC_LOCK`
 * and `mm->locked_vm` (what /proc/PID/status prints as VmLck). Reference §6.4.
 */
import { ErrnoError, isErrno, PAGE_SHIFT, PAGE_SIZE, type PhysicalMemory, SZ_1G, SZ_2M } from "@iommu/core";

/**
 * Where a process's pages come from: the host kernel's page allocator. Frames read as zero when handed
 * out; allocation throws when memory is exhausted (the fault, and so the pin, then fails with ENOMEM).
 */
export interface PageSource {
  /** One 4 KiB frame. */
  allocPage(): bigint;
  /** `count` contiguous frames aligned to `count` × 4 KiB (a power of two): needed for hugetlb vmas. */
  allocPages?(count: number): bigint;
  freePage?(addr: bigint): void;
}

/** Adapt `@iommu/core`'s `PageAllocator` (`alloc(count)` zeroes eagerly: fine for MiBs, not for GiBs). */
export function pageAllocatorSource(pa: { alloc(count?: number): bigint; freeFrame?(addr: bigint): void }): PageSource {
  return {
    allocPage: () => pa.alloc(1),
    allocPages: (count) => pa.alloc(count),
    freePage: (addr) => pa.freeFrame?.(addr),
  };
}

/**
 * A page source over `[base, base + size)` that hands out frames without touching them (sparse RAM reads
 * as zero until written, so fresh frames are zero without being materialised): what you want for GiBs of
 * hugepage-backed guest RAM. Freed frames are not reused.
 */
export function lazyPageSource(base: bigint, size: bigint): PageSource & { readonly used: bigint } {
  let next = base;
  const allocPages = (count: number): bigint => {
    const bytes = BigInt(count) * PAGE_SIZE;
    const align = (count & (count - 1)) === 0 ? bytes : PAGE_SIZE;
    const at = (next + align - 1n) & ~(align - 1n);
    if (at + bytes > base + size) {
      throw new ErrnoError("ENOMEM", "alloc_pages", `out of host memory for ${count} page(s)`, { count });
    }
    next = at + bytes;
    return at;
  };
  return {
    allocPage: () => allocPages(1),
    allocPages,
    get used() {
      return next - base;
    },
  };
}

/** What backs a vma. */
export type VmaKind = "anon" | "hugetlb-2M" | "hugetlb-1G" | "pfnmap";

export interface VmaInit {
  readonly start: bigint;
  readonly size: bigint;
  /** Default "anon". */
  readonly kind?: VmaKind;
  /** false = PROT_READ only (a write fault or FOLL_WRITE pin gets EFAULT). Default true. */
  readonly writable?: boolean;
  /** For "pfnmap": the physical address the range maps (an MMIO BAR, say). */
  readonly phys?: bigint;
  readonly name?: string;
}

/** One contiguous piece of physical memory behind a virtual range, as a page-table walk finds it. */
export interface PhysSegment {
  readonly phys: bigint;
  /** 4 KiB pages, starting at the asked vaddr, that are physically contiguous with `phys`. */
  readonly pages: number;
  /** `is_invalid_reserved_pfn`: MMIO pfns and the zero page; never charged to locked_vm. */
  readonly reserved: boolean;
}

export class Vma {
  readonly start: bigint;
  /** Exclusive end. */
  readonly end: bigint;
  readonly kind: VmaKind;
  readonly writable: boolean;
  readonly name: string;
  /** Size of one backing page: 4 KiB, 2 MiB or 1 GiB (the whole vma for pfnmap). */
  readonly pageSize: bigint;
  readonly physBase: bigint;
  /** Backing page index → physical address of that (huge) page. Absent = not faulted in. */
  readonly pages = new Map<number, bigint>();

  constructor(init: VmaInit) {
    this.start = init.start;
    this.end = init.start + init.size;
    this.kind = init.kind ?? "anon";
    this.writable = init.writable ?? true;
    this.name = init.name ?? this.kind;
    this.physBase = init.phys ?? 0n;
    this.pageSize =
      this.kind === "hugetlb-2M"
        ? SZ_2M
        : this.kind === "hugetlb-1G"
          ? SZ_1G
          : this.kind === "pfnmap"
            ? init.size
            : PAGE_SIZE;
  }

  contains(vaddr: bigint): boolean {
    return vaddr >= this.start && vaddr < this.end;
  }
}

export interface ProcessInit {
  /** Host physical pages for faults. */
  readonly pages: PageSource;
  /** The host's physical memory, for `readUser`/`writeUser` (copy_from_user / copy_to_user) and `touch`. */
  readonly memory?: PhysicalMemory;
  /** RLIMIT_MEMLOCK in bytes (default 8 MiB, Linux's default since 5.16). */
  readonly memlockBytes?: bigint;
  /** CAP_IPC_LOCK: pins are not checked against RLIMIT_MEMLOCK (default true: a root VMM). */
  readonly capIpcLock?: boolean;
  /** Physical address of the shared zero page (default: one frame taken from `pages`). */
  readonly zeroPage?: bigint;
  /** TASK_SIZE, the end of user space (`access_ok`): x86-64 0x7ffffffff000 (default), arm64 48-bit 1 << 48. */
  readonly taskSize?: bigint;
  readonly pid?: number;
  readonly name?: string;
}

/** A user process: its mm (vmas, locked_vm), its limits and its capabilities. */
export class Process {
  readonly pid: number;
  readonly name: string;
  readonly pageSource: PageSource;
  readonly memory: PhysicalMemory | null;
  readonly zeroPage: bigint;
  readonly taskSize: bigint;
  rlimitMemlock: bigint;
  capIpcLock: boolean;
  /** `mm->locked_vm` in pages (VFIO type1 charges pinned pages here). */
  lockedVm = 0;
  /** `mm->pinned_vm` in pages (VmPin): what iommufd pins is charged here (type1 never touches it). */
  pinnedVm = 0;
  /** Kernel log lines produced on this process's behalf (e.g. the RLIMIT_MEMLOCK warning). */
  readonly klog: string[] = [];
  private readonly vmas: Vma[] = [];

  constructor(init: ProcessInit) {
    this.pageSource = init.pages;
    this.memory = init.memory ?? null;
    this.rlimitMemlock = init.memlockBytes ?? 8n << 20n;
    this.capIpcLock = init.capIpcLock ?? true;
    this.zeroPage = init.zeroPage ?? init.pages.allocPage();
    this.taskSize = init.taskSize ?? 0x7fff_ffff_f000n;
    this.pid = init.pid ?? 1000;
    this.name = init.name ?? "vmm";
  }

  /** VmLck of /proc/PID/status, in KiB. */
  get vmLckKb(): number {
    return this.lockedVm * 4;
  }

  /** `mmap(MAP_FIXED_NOREPLACE)`: EINVAL for unaligned/empty ranges, EEXIST when it overlaps a vma. */
  mmap(init: VmaInit): Vma {
    const vma = new Vma(init);
    const align = vma.kind === "pfnmap" ? PAGE_SIZE : vma.pageSize;
    if (init.size <= 0n || init.start < 0n || init.start % align !== 0n || init.size % align !== 0n) {
      throw new ErrnoError("EINVAL", "do_mmap", "range is empty or not aligned to the backing page size", {
        start: init.start,
        size: init.size,
        kind: vma.kind,
      });
    }
    if (vma.kind === "pfnmap" && vma.physBase % PAGE_SIZE !== 0n) {
      throw new ErrnoError("EINVAL", "remap_pfn_range", "physical base not page aligned", { phys: vma.physBase });
    }
    for (const o of this.vmas) {
      if (vma.start < o.end && o.start < vma.end) {
        throw new ErrnoError("EEXIST", "do_mmap", "range overlaps an existing mapping", { start: init.start });
      }
    }
    this.vmas.push(vma);
    this.vmas.sort((a, b) => (a.start < b.start ? -1 : 1));
    return vma;
  }

  /** The vma containing `vaddr` (`find_vma_intersection`). */
  vmaAt(vaddr: bigint): Vma | undefined {
    let lo = 0;
    let hi = this.vmas.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.vmas[mid]!;
      if (vaddr < v.start) hi = mid - 1;
      else if (vaddr >= v.end) lo = mid + 1;
      else return v;
    }
    return undefined;
  }

  listVmas(): readonly Vma[] {
    return this.vmas;
  }

  /**
   * The page walk GUP does (`pin_user_pages_remote`, or `follow_fault_pfn` for VM_PFNMAP): fault in the page
   * at `vaddr` (`write` = FOLL_WRITE) and return the physically contiguous piece starting there, at most
   * `maxPages` long and never past its backing page. A read fault of an untouched anonymous page gives the
   * zero page (reserved, one page) unless `unshare` (FAULT_FLAG_UNSHARE: a long-term read pin from 6.2 on
   * gets a private page of its own); EFAULT for no vma or a write to a read-only vma.
   */
  faultIn(vaddr: bigint, write: boolean, maxPages: number, unshare = false): PhysSegment {
    const vma = this.vmaAt(vaddr);
    if (!vma) throw new ErrnoError("EFAULT", "pin_user_pages_remote", "no mapping at this address", { vaddr });
    if (write && !vma.writable) {
      throw new ErrnoError("EFAULT", "pin_user_pages_remote", "write pin of a read-only mapping", { vaddr });
    }
    const off = vaddr - vma.start;
    if (vma.kind === "pfnmap") {
      const left = Number((vma.end - vaddr) >> PAGE_SHIFT);
      return { phys: vma.physBase + (off & ~(PAGE_SIZE - 1n)), pages: Math.min(left, maxPages), reserved: true };
    }
    const idx = Number(off / vma.pageSize);
    let base = vma.pages.get(idx);
    if (base === undefined) {
      if (vma.kind === "anon" && !write && !unshare) return { phys: this.zeroPage, pages: 1, reserved: true };
      base = this.allocBacking(vma);
      vma.pages.set(idx, base);
    }
    const inPage = (off % vma.pageSize) & ~(PAGE_SIZE - 1n);
    const left = Number((vma.pageSize - inPage) >> PAGE_SHIFT);
    return { phys: base + inPage, pages: Math.min(left, maxPages), reserved: false };
  }

  private allocBacking(vma: Vma): bigint {
    const count = Number(vma.pageSize >> PAGE_SHIFT);
    // VM_FAULT_OOM (no free page, or no free huge page in the pool): GUP fails the pin with -ENOMEM.
    const oom = (cause?: unknown): ErrnoError =>
      new ErrnoError("ENOMEM", "handle_mm_fault", "no memory to back the page", { vma: vma.name }, { cause });
    if (count > 1 && !this.pageSource.allocPages) throw oom(); // a source without huge pages: an empty pool
    try {
      return count === 1 ? this.pageSource.allocPage() : this.pageSource.allocPages!(count);
    } catch (e) {
      // Only the page source's ENOMEM is an out-of-memory fault; anything else is a bug and goes on up.
      if (!isErrno(e)) throw e;
      throw oom(e);
    }
  }

  /** Write `value` (the probe writes 1) to the first byte of every page of `[vaddr, vaddr + size)`: write-faults them in. */
  touch(vaddr: bigint, size: bigint, value = 1): void {
    for (let a = vaddr & ~(PAGE_SIZE - 1n); a < vaddr + size; a += PAGE_SIZE) {
      const seg = this.faultIn(a, true, 1);
      this.memory?.write(seg.phys, new Uint8Array([value]));
    }
  }

  /** copy_from_user: EFAULT when any byte is unmapped. Untouched anonymous memory reads as zero. */
  readUser(vaddr: bigint, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.walkUser(vaddr, len, false, (phys, at, n) => {
      if (this.memory) out.set(this.memory.read(phys, n), at);
    });
    return out;
  }

  /** copy_to_user: EFAULT when any byte is unmapped or read-only; nothing is written then. */
  writeUser(vaddr: bigint, bytes: Uint8Array): void {
    this.checkUser(vaddr, bytes.length, true);
    this.walkUser(vaddr, bytes.length, true, (phys, at, n) => {
      this.memory?.write(phys, bytes.subarray(at, at + n));
    });
  }

  /** `access_ok` + the vma checks copy_to/from_user would fault on, without touching anything. */
  checkUser(vaddr: bigint, len: number, write: boolean): void {
    let a = vaddr;
    const end = vaddr + BigInt(len);
    while (a < end) {
      const vma = this.vmaAt(a);
      if (!vma || (write && !vma.writable) || vma.kind === "pfnmap") {
        throw new ErrnoError("EFAULT", write ? "copy_to_user" : "copy_from_user", "bad user address", { vaddr: a });
      }
      a = vma.end;
    }
  }

  private walkUser(
    vaddr: bigint,
    len: number,
    write: boolean,
    fn: (phys: bigint, at: number, n: number) => void,
  ): void {
    this.checkUser(vaddr, len, write);
    let done = 0;
    while (done < len) {
      const a = vaddr + BigInt(done);
      const vma = this.vmaAt(a)!;
      const inPage = Number(a & (PAGE_SIZE - 1n));
      const n = Math.min(len - done, Number(PAGE_SIZE) - inPage);
      const idx = Number((a - vma.start) / vma.pageSize);
      if (write || vma.pages.has(idx)) {
        const seg = this.faultIn(a & ~(PAGE_SIZE - 1n), write, 1);
        fn(seg.phys + BigInt(inPage), done, n);
      }
      done += n;
    }
  }
}
