/**
 * The system calls and C-library calls probe.c makes, as one interface: the probe (probe.ts) is user
 * space and only sees this; probe-libc.ts implements it on `@iommu-sim/host`'s system-call surface
 * (`BoardSys`: VFIO ioctls on bytes in the process's memory, sysfs files, the edu BAR through mmap).
 *
 * Conventions are Linux's: calls return `ret` (>= 0 on success) and, when `ret < 0`, a positive
 * `errno`. Pointers are user virtual addresses (`bigint`); ioctl arguments are either an integer or a
 * pointer into user memory, exactly as in C.
 */

export interface SysResult {
  ret: number;
  /** Positive errno number when ret < 0, else 0. */
  errno: number;
}

export interface ProbeDevice {
  /** PCI name, e.g. "0000:00:01.0". */
  bdf: string;
  /** IOMMU group number (the basename of its iommu_group link). */
  group: number;
}

export interface ProbeSys {
  /** uname(2): describes the host, not behaviour. */
  uname(): { release: string; version: string; machine: string };
  /** The devices the VM's /init passes to the probe, in BDF order (device 0 first). */
  devices(): readonly ProbeDevice[];
  /** sysconf(_SC_PAGESIZE). */
  pageSize(): number;

  /** mmap of the probe's fixed anonymous buffer (MAP_FIXED_NOREPLACE | MAP_NORESERVE). */
  mmapAnonymous(addr: bigint, len: bigint): SysResult;
  /** calloc: zeroed user memory the probe owns (ioctl argument structs, bitmaps). */
  calloc(len: number): bigint;
  free(addr: bigint): void;
  /** Plain user-memory loads and stores (RAM of the process, or an mmap'd device BAR). */
  peek(addr: bigint, len: number): Uint8Array;
  poke(addr: bigint, bytes: Uint8Array): void;
  read32(addr: bigint): number;
  write32(addr: bigint, v: number): void;
  read64(addr: bigint): bigint;
  write64(addr: bigint, v: bigint): void;

  /** open(2) of /dev/vfio/vfio or /dev/vfio/N. */
  open(path: string): SysResult;
  close(fd: number): SysResult;
  /** ioctl(2): `arg` is the integer argument or a user pointer, as the request defines. */
  ioctl(fd: number, request: number, arg: bigint): SysResult;
  /** pread/pwrite on a VFIO device fd (region offsets). */
  pread(fd: number, len: number, offset: bigint): SysResult & { data: Uint8Array };
  pwrite(fd: number, bytes: Uint8Array, offset: bigint): SysResult;
  /** mmap(NULL, len, RW, MAP_SHARED, fd, offset) of a device region; ret is unused, `addr` is the mapping. */
  mmapDevice(fd: number, len: bigint, offset: bigint): SysResult & { addr: bigint };
  munmap(addr: bigint, len: bigint): void;
  /** eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC). */
  eventfd(): SysResult;
  /** read(2) of 8 bytes from an eventfd (non-blocking: EAGAIN when the counter is 0). */
  readEventfd(fd: number): SysResult & { value: bigint };
  /** poll(2) for POLLIN on one fd with a timeout; ret 1 when ready. */
  poll(fd: number, timeoutMs: number): SysResult;
  /** usleep(3): lets the machine run for that long. */
  usleep(us: number): void;

  /** Whole contents of a sysfs/procfs file (first `max` bytes), or an errno. */
  readFile(path: string, max: number): SysResult & { data: Uint8Array };
  /** Entries of a sysfs directory (unsorted, as readdir gives them), or null when it cannot be opened. */
  readDir(path: string): string[] | null;
  /** Drops CAP_IPC_LOCK and sets RLIMIT_MEMLOCK soft = hard = bytes; returns a failure text or null. */
  dropIpcLockAndSetMemlock(bytes: bigint): string | null;
  /** New kernel log messages since the last call (text after the `;` of /dev/kmsg records). */
  kmsg(): string[];
}
