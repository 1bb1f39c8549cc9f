/**
 * `iommufd_fops_ioctl` (main.c, 6.12): the byte interface of an open `/dev/iommu`. Reads the struct's
 * `size`, applies the kernel's size rules (below the minimum EINVAL; a non-zero tail past the kernel's
 * struct, or a size above PAGE_SIZE, E2BIG), decodes into the typed API and writes the answer back as
 * `iommufd_ucmd_respond` (min(size, struct) bytes). Returns 0 or -errno; nothing else escapes.
 */
import { ErrnoError, isErrno, PAGE_SIZE, U64_MAX } from "@iommu/core";
import {
  DESTROY,
  FAULT_ALLOC,
  HW_INFO,
  HWPT_ALLOC,
  HWPT_GET_DIRTY_BITMAP,
  HWPT_INVALIDATE,
  HWPT_SET_DIRTY_TRACKING,
  IOAS_ALLOC,
  IOAS_ALLOW_IOVAS,
  IOAS_COPY,
  IOAS_IOVA_RANGES,
  IOAS_MAP,
  IOAS_UNMAP,
  IOCTL_SIZES,
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_FLAGS,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  IOMMUFD_CMD_BASE,
  IOMMUFD_CMD_LAST,
  IOVA_RANGE,
  OPTION,
  rd16,
  rd32,
  rd64,
  VFIO_IOAS,
  wr32,
  wr64,
} from "@vfio/uapi/iommufd";
import type { IntervalNode } from "./interval-tree.js";
import { checkAllowedRanges, type MapFlags } from "./ioas.js";
import type { IommufdCtx } from "./iommufd-ctx.js";
import { type CompatArg, vfioCompatIoctl } from "./vfio-compat.js";

/** What a command handler gets: the kernel's copy of the struct and a way to answer. */
interface Ucmd {
  readonly ctx: IommufdCtx;
  /** The kernel's struct (`op->size` bytes, zero-extended). */
  readonly cmd: Uint8Array;
  /** `iommufd_ucmd_respond`: copy the first min(user size, len) bytes of `cmd` back. */
  respond(len: number): void;
  /** Write bytes into the user's struct at an offset (IOMMU_OPTION writes only `val64`). */
  writeBack(off: number, bytes: Uint8Array): void;
}

const eopnotsupp = (op: string, why: string) => new ErrnoError("EOPNOTSUPP", op, why, {});

function mapFlags(flags: number): MapFlags {
  return {
    fixed: (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0,
    read: (flags & IOMMU_IOAS_MAP_READABLE) !== 0,
    write: (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0,
  };
}

type Handler = (u: Ucmd) => void;

const HANDLERS: ReadonlyMap<number, Handler> = new Map<number, Handler>([
  [IOMMU_DESTROY, (u) => u.ctx.destroy(rd32(u.cmd, DESTROY.id))],
  [
    IOMMU_IOAS_ALLOC,
    (u) => {
      if (rd32(u.cmd, IOAS_ALLOC.flags)) throw eopnotsupp("iommufd_ioas_alloc_ioctl", "flags must be 0");
      wr32(u.cmd, IOAS_ALLOC.outIoasId, u.ctx.ioasAlloc());
      u.respond(IOAS_ALLOC.size);
    },
  ],
  [IOMMU_IOAS_IOVA_RANGES, ioasIovaRanges],
  [IOMMU_IOAS_ALLOW_IOVAS, ioasAllowIovas],
  [
    IOMMU_IOAS_MAP,
    (u) => {
      const c = u.cmd;
      const flags = rd32(c, IOAS_MAP.flags);
      if (flags & ~IOMMU_IOAS_MAP_FLAGS || rd32(c, IOAS_MAP.reserved)) {
        throw eopnotsupp("iommufd_ioas_map", "unknown flags or __reserved set");
      }
      const iova = u.ctx.ioasMap(
        rd32(c, IOAS_MAP.ioasId),
        rd64(c, IOAS_MAP.userVa),
        rd64(c, IOAS_MAP.length),
        rd64(c, IOAS_MAP.iova),
        mapFlags(flags),
      );
      wr64(c, IOAS_MAP.iova, iova);
      u.respond(IOAS_MAP.size);
    },
  ],
  [
    IOMMU_IOAS_COPY,
    (u) => {
      const c = u.cmd;
      const flags = rd32(c, IOAS_COPY.flags);
      if (flags & ~IOMMU_IOAS_MAP_FLAGS) throw eopnotsupp("iommufd_ioas_copy", "unknown flags");
      const iova = u.ctx.ioasCopy(
        rd32(c, IOAS_COPY.dstIoasId),
        rd32(c, IOAS_COPY.srcIoasId),
        rd64(c, IOAS_COPY.srcIova),
        rd64(c, IOAS_COPY.length),
        rd64(c, IOAS_COPY.dstIova),
        mapFlags(flags),
      );
      wr64(c, IOAS_COPY.dstIova, iova);
      u.respond(IOAS_COPY.size);
    },
  ],
  [
    IOMMU_IOAS_UNMAP,
    (u) => {
      const c = u.cmd;
      const n = u.ctx.ioasUnmap(rd32(c, IOAS_UNMAP.ioasId), rd64(c, IOAS_UNMAP.iova), rd64(c, IOAS_UNMAP.length));
      wr64(c, IOAS_UNMAP.length, n);
      u.respond(IOAS_UNMAP.size);
    },
  ],
  [IOMMU_OPTION, option],
  [IOMMU_VFIO_IOAS, vfioIoas],
  [IOMMU_HWPT_ALLOC, hwptAlloc],
  [IOMMU_GET_HW_INFO, getHwInfo],
  [
    IOMMU_HWPT_SET_DIRTY_TRACKING,
    (u) => {
      const c = u.cmd;
      const op = "iommufd_hwpt_set_dirty_tracking";
      if (rd32(c, HWPT_SET_DIRTY_TRACKING.flags) & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) throw eopnotsupp(op, "flags");
      if (rd32(c, HWPT_SET_DIRTY_TRACKING.reserved)) throw eopnotsupp(op, "__reserved");
      u.ctx.objects.get(rd32(c, HWPT_SET_DIRTY_TRACKING.hwptId), "hwpt_paging");
      throw eopnotsupp("iopt_set_dirty_tracking", "the domain has no dirty_ops");
    },
  ],
  [IOMMU_HWPT_GET_DIRTY_BITMAP, getDirtyBitmap],
  [IOMMU_HWPT_INVALIDATE, hwptInvalidate],
  [
    IOMMU_FAULT_QUEUE_ALLOC,
    (u) => {
      if (rd32(u.cmd, FAULT_ALLOC.flags)) throw eopnotsupp("iommufd_fault_alloc", "flags must be 0");
      // Fault queues (and their fds) are not modelled: the IOMMUs here have no IOPF support.
      throw eopnotsupp("iommufd_fault_alloc", "fault queues are not modelled");
    },
  ],
]);

/** `iommufd_ioas_iova_ranges`: fill up to `num_iovas` ranges; EMSGSIZE (after answering) when more exist. */
function ioasIovaRanges(u: Ucmd): void {
  const c = u.cmd;
  if (rd32(c, IOAS_IOVA_RANGES.reserved)) throw eopnotsupp("iommufd_ioas_iova_ranges", "__reserved");
  const { ranges, alignment } = u.ctx.ioasIovaRanges(rd32(c, IOAS_IOVA_RANGES.ioasId));
  const max = rd32(c, IOAS_IOVA_RANGES.numIovas);
  const ptr = rd64(c, IOAS_IOVA_RANGES.allowedIovas);
  wr64(c, IOAS_IOVA_RANGES.outIovaAlignment, alignment);
  let n = 0;
  for (const r of ranges) {
    if (n < max) {
      const elm = new Uint8Array(IOVA_RANGE.size);
      wr64(elm, IOVA_RANGE.start, r.start);
      wr64(elm, IOVA_RANGE.last, r.last);
      u.ctx.mm.writeUser(ptr + BigInt(n * IOVA_RANGE.size), elm);
    }
    n++;
  }
  wr32(c, IOAS_IOVA_RANGES.numIovas, n);
  u.respond(IOAS_IOVA_RANGES.size);
  if (n > max) {
    throw new ErrnoError("EMSGSIZE", "iommufd_ioas_iova_ranges", "more ranges than num_iovas", { needed: n, max });
  }
}

/** `iommufd_ioas_allow_iovas`: the IOAS first, then each range copied in and checked in order. */
function ioasAllowIovas(u: Ucmd): void {
  const c = u.cmd;
  if (rd32(c, IOAS_ALLOW_IOVAS.reserved)) throw eopnotsupp("iommufd_ioas_allow_iovas", "__reserved");
  const ioasId = rd32(c, IOAS_ALLOW_IOVAS.ioasId);
  u.ctx.ioas(ioasId);
  const num = rd32(c, IOAS_ALLOW_IOVAS.numIovas);
  const ptr = rd64(c, IOAS_ALLOW_IOVAS.allowedIovas);
  const ranges: IntervalNode[] = [];
  for (let i = 0; i < num; i++) {
    const b = u.ctx.mm.readUser(ptr + BigInt(i * IOVA_RANGE.size), IOVA_RANGE.size);
    ranges.push({ start: rd64(b, IOVA_RANGE.start), last: rd64(b, IOVA_RANGE.last) });
    // Checking the prefix read so far keeps iommufd_ioas_load_iovas's order (EINVAL before a later EFAULT).
    checkAllowedRanges(ranges);
  }
  u.ctx.ioasAllowIovas(ioasId, ranges);
}

/** `iommufd_option`: RLIMIT_MODE (no object) or HUGE_PAGES (an IOAS); on success only `val64` is written. */
function option(u: Ucmd): void {
  const c = u.cmd;
  const op = "iommufd_option";
  if (rd16(c, OPTION.reserved)) throw eopnotsupp(op, "__reserved");
  const id = rd32(c, OPTION.optionId);
  const objectId = rd32(c, OPTION.objectId);
  const kind = rd16(c, OPTION.op);
  const val = rd64(c, OPTION.val64);
  const set = (fn: (v: bigint | null) => bigint): bigint => {
    if (kind === IOMMU_OPTION_OP_GET) return fn(null);
    if (kind === IOMMU_OPTION_OP_SET) return fn(val);
    throw eopnotsupp(op, "op must be SET or GET");
  };
  let out: bigint;
  if (id === IOMMU_OPTION_RLIMIT_MODE) {
    if (objectId !== 0) throw eopnotsupp("iommufd_option_rlimit_mode", "object_id must be 0");
    out = set((v) => u.ctx.optionRlimitMode(0, v));
  } else if (id === IOMMU_OPTION_HUGE_PAGES) {
    u.ctx.ioas(objectId);
    out = set((v) => u.ctx.optionHugePages(objectId, v));
  } else throw eopnotsupp(op, "unknown option");
  const b = new Uint8Array(8);
  wr64(b, 0, out);
  u.writeBack(OPTION.val64, b);
}

/** `iommufd_vfio_ioas`: GET (ENODEV without a compat IOAS), SET, CLEAR. */
function vfioIoas(u: Ucmd): void {
  const c = u.cmd;
  if (rd16(c, VFIO_IOAS.reserved)) throw eopnotsupp("iommufd_vfio_ioas", "__reserved");
  const kind = rd16(c, VFIO_IOAS.op);
  if (kind === IOMMU_VFIO_IOAS_GET) {
    wr32(c, VFIO_IOAS.ioasId, u.ctx.vfioIoasGet());
    u.respond(VFIO_IOAS.size);
  } else if (kind === IOMMU_VFIO_IOAS_SET) u.ctx.vfioIoasSet(rd32(c, VFIO_IOAS.ioasId));
  else if (kind === IOMMU_VFIO_IOAS_CLEAR) u.ctx.vfioIoasClear();
  else throw eopnotsupp("iommufd_vfio_ioas", "unknown op");
}

function hwptAlloc(u: Ucmd): void {
  const c = u.cmd;
  if (rd32(c, HWPT_ALLOC.reserved)) throw eopnotsupp("iommufd_hwpt_alloc", "__reserved");
  const id = u.ctx.hwptAlloc(
    rd32(c, HWPT_ALLOC.devId),
    rd32(c, HWPT_ALLOC.ptId),
    rd32(c, HWPT_ALLOC.flags),
    rd32(c, HWPT_ALLOC.dataType),
    rd32(c, HWPT_ALLOC.dataLen),
  );
  wr32(c, HWPT_ALLOC.outHwptId, id);
  u.respond(HWPT_ALLOC.size);
}

/** `iommufd_get_hw_info`: copy min(data_len, driver's length), zero the rest of the user's buffer, report the length. */
function getHwInfo(u: Ucmd): void {
  const c = u.cmd;
  const op = "iommufd_get_hw_info";
  if (rd32(c, HW_INFO.flags) || c[HW_INFO.reserved] || c[HW_INFO.reserved + 1] || c[HW_INFO.reserved + 2]) {
    throw eopnotsupp(op, "flags or __reserved set");
  }
  const info = u.ctx.hwInfo(rd32(c, HW_INFO.devId));
  const want = rd32(c, HW_INFO.dataLen);
  const ptr = rd64(c, HW_INFO.dataUptr);
  const copy = Math.min(want, info.data.length);
  if (copy > 0) u.ctx.mm.writeUser(ptr, info.data.subarray(0, copy));
  if (copy < want) u.ctx.mm.writeUser(ptr + BigInt(copy), new Uint8Array(want - copy));
  wr32(c, HW_INFO.dataLen, info.data.length);
  wr32(c, HW_INFO.outDataType, info.type);
  c[HW_INFO.outMaxPasidLog2] = 0;
  wr64(c, HW_INFO.outCapabilities, info.capabilities);
  u.respond(HW_INFO.size);
}

/** `iommufd_hwpt_get_dirty_bitmap`: the range rules, then EOPNOTSUPP (no driver tracks dirty pages). */
function getDirtyBitmap(u: Ucmd): void {
  const c = u.cmd;
  const op = "iommufd_hwpt_get_dirty_bitmap";
  if (rd32(c, HWPT_GET_DIRTY_BITMAP.flags) & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) throw eopnotsupp(op, "flags");
  if (rd32(c, HWPT_GET_DIRTY_BITMAP.reserved)) throw eopnotsupp(op, "__reserved");
  const hwpt = u.ctx.hwpt(rd32(c, HWPT_GET_DIRTY_BITMAP.hwptId));
  const iova = rd64(c, HWPT_GET_DIRTY_BITMAP.iova);
  const length = rd64(c, HWPT_GET_DIRTY_BITMAP.length);
  const pageSize = rd64(c, HWPT_GET_DIRTY_BITMAP.pageSize);
  const align = hwpt.ioas.iopt.iovaAlignment;
  const check = "iommufd_check_iova_range";
  const last = iova + BigInt.asUintN(64, length - 1n);
  if (last > U64_MAX) throw new ErrnoError("EOVERFLOW", check, "iova + length wraps", {});
  const end = BigInt.asUintN(64, last + 1n);
  if ((iova & (align - 1n)) !== 0n || (end & (align - 1n)) !== 0n) {
    throw new ErrnoError("EINVAL", check, "range not aligned to the IOVA alignment", {});
  }
  if (pageSize === 0n) throw new ErrnoError("EINVAL", check, "page_size 0", {});
  if (iova % pageSize !== 0n || end % pageSize !== 0n) {
    throw new ErrnoError("EINVAL", check, "range not aligned to page_size", {});
  }
  throw eopnotsupp("iommu_read_and_clear_dirty", "the domain has no dirty_ops");
}

/** `iommufd_hwpt_invalidate`: only nested HWPTs take invalidations (none here); `entry_num` answers 0. */
function hwptInvalidate(u: Ucmd): void {
  const c = u.cmd;
  if (rd32(c, HWPT_INVALIDATE.reserved)) throw eopnotsupp("iommufd_hwpt_invalidate", "__reserved");
  let err: ErrnoError;
  if (rd32(c, HWPT_INVALIDATE.entryNum) && (!rd64(c, HWPT_INVALIDATE.dataUptr) || !rd32(c, HWPT_INVALIDATE.entryLen))) {
    err = new ErrnoError("EINVAL", "iommufd_hwpt_invalidate", "entries without data or entry_len", {});
  } else {
    err = new ErrnoError("ENOENT", "iommufd_get_hwpt_nested", "no nested HWPT with that id", {});
  }
  wr32(c, HWPT_INVALIDATE.entryNum, 0);
  u.respond(HWPT_INVALIDATE.size);
  throw err;
}

/**
 * One ioctl on an open `/dev/iommu`: `arg` is the user's buffer (the struct, possibly followed by more
 * bytes). Returns 0 or -errno. Numbers outside iommufd's range go to the VFIO container compat (`vfio-compat.ts`).
 */
export function iommufdIoctl(ctx: IommufdCtx, cmd: number, arg: CompatArg): number {
  const nr = cmd & 0xff;
  if (nr < IOMMUFD_CMD_BASE || nr > IOMMUFD_CMD_LAST) return vfioCompatIoctl(ctx, cmd, arg);
  try {
    if (!(arg instanceof Uint8Array) || arg.length < 4)
      throw new ErrnoError("EFAULT", "iommufd_fops_ioctl", "cannot read size", {});
    const size = rd32(arg, 0);
    const op = IOCTL_SIZES.get(cmd);
    if (!op) throw new ErrnoError("ENOTTY", "iommufd_fops_ioctl", "ioctl number mismatch", { cmd });
    if (size < op.minSize) {
      throw new ErrnoError("EINVAL", "iommufd_fops_ioctl", "size below the struct's minimum", {
        size,
        minSize: op.minSize,
      });
    }
    if (BigInt(size) > PAGE_SIZE) throw new ErrnoError("E2BIG", "copy_struct_from_user", "size above PAGE_SIZE", {});
    if (size > arg.length) throw new ErrnoError("EFAULT", "copy_struct_from_user", "struct past the buffer", {});
    for (let i = op.size; i < size; i++) {
      if (arg[i] !== 0)
        throw new ErrnoError("E2BIG", "copy_struct_from_user", "non-zero bytes past the struct", { at: i });
    }
    const kcmd = new Uint8Array(op.size);
    kcmd.set(arg.subarray(0, Math.min(size, op.size)));
    HANDLERS.get(cmd)!({
      ctx,
      cmd: kcmd,
      respond: (len) => arg.set(kcmd.subarray(0, Math.min(size, len))),
      writeBack: (off, bytes) => arg.set(bytes, off),
    });
    return 0;
  } catch (e) {
    if (isErrno(e)) return e.errno;
    throw e;
  }
}
