/**
 * Linux errno values (asm-generic/errno-base.h, errno.h): the one table of names and numbers, for the kernel
 * model and for what the conformance probe prints.
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EDOM: 33,
  ERANGE: 34,
  EDEADLK: 35,
  ENOSYS: 38,
  EOVERFLOW: 75,
  EBADFD: 77,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EHWPOISON: 133,
  /** Kernel-internal (include/linux/errno.h), but it reaches userspace from some ioctls. */
  ENOTSUPP: 524,
} as const;

export type Errno = keyof typeof ERRNO;

const BY_NUMBER: ReadonlyMap<number, Errno> = new Map(
  (Object.entries(ERRNO) as [Errno, number][]).map(([k, v]) => [v, k]),
);

/** Name of an errno number (`22` → `"EINVAL"`), or undefined. */
export function errnoName(n: number): Errno | undefined {
  return BY_NUMBER.get(Math.abs(n));
}

/**
 * The one error type of the stack: an errno, the kernel function whose rule failed (`op`),
 * and the offending values (`detail`). Tests assert `errno` and `op`, not message text.
 */
export class ErrnoError extends Error {
  override readonly name = "ErrnoError";
  readonly errno: Errno;
  /** Positive errno number (Linux returns its negation). */
  readonly code: number;
  readonly op: string;
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(
    errno: Errno,
    op: string,
    message: string,
    detail: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(`${op}: ${errno}: ${message}`, options);
    this.errno = errno;
    this.code = ERRNO[errno];
    this.op = op;
    this.detail = detail;
  }
}

/** True if `e` is an ErrnoError (optionally with the given errno). */
export function isErrno(e: unknown, errno?: Errno): e is ErrnoError {
  return e instanceof ErrnoError && (errno === undefined || e.errno === errno);
}
