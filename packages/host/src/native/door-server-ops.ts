/** The door's wire: the operation numbers of native/preload.c's requests. */
export const OP = {
  HELLO: 1,
  OPEN: 2,
  CLOSE: 3,
  IOCTL: 4,
  READ: 5,
  WRITE: 6,
  PREAD: 7,
  PWRITE: 8,
  MMAP: 9,
  MMIO: 10,
  READLINK: 11,
  STAT: 12,
  READDIR: 13,
  LSEEK: 14,
} as const;
