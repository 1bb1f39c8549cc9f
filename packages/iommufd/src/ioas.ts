/**
 * `struct iommufd_ioas` and its ioctls (ioas.c, 6.12): IOAS_ALLOC, IOVA_RANGES, ALLOW_IOVAS, MAP, COPY,
 * UNMAP and the per-IOAS HUGE_PAGES option, in the kernel's order of checks.
 */
import { ErrnoError, IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, U64_MAX } from "@iommu/core";
import type { HwptPaging } from "./hw-pagetable.js";
import type { IntervalNode, Span } from "./interval-tree.js";
import { IoPagetable } from "./io-pagetable.js";
import type { IommufdCtx } from "./iommufd-ctx.js";
import type { IommufdObject } from "./object-table.js";

export class Ioas implements IommufdObject {
  readonly type = "ioas" as const;
  users = 1;
  readonly iopt = new IoPagetable();
  /** HWPTs whose domain is loaded into this IOAS (`hwpt_list`), oldest first. */
  readonly hwpts: HwptPaging[] = [];

  constructor(readonly id: number) {}
}

/** What IOMMU_IOAS_MAP and COPY take: flags FIXED_IOVA / WRITEABLE / READABLE. */
export interface MapFlags {
  /** Map at `iova`; otherwise the kernel picks one. */
  readonly fixed: boolean;
  readonly read: boolean;
  readonly write: boolean;
}

/** `conv_iommu_prot`: IOMMU_CACHE always (bind insisted on coherency), READ/WRITE from the flags. */
function convIommuProt(f: MapFlags): number {
  return IOMMU_CACHE | (f.write ? IOMMU_WRITE : 0) | (f.read ? IOMMU_READ : 0);
}

function noAccess(op: string): ErrnoError {
  return new ErrnoError("EINVAL", op, "neither READABLE nor WRITEABLE", {});
}

/** `iommufd_ioas_alloc` + finalize: a new, empty IOAS. */
export function ioasAlloc(ctx: IommufdCtx): Ioas {
  const ioas = new Ioas(ctx.objects.allocId());
  ctx.objects.finalize(ioas);
  return ioas;
}

/** `iommufd_ioas_iova_ranges`: the holes of the reserved ranges and the IOVA alignment. */
export function ioasIovaRanges(ctx: IommufdCtx, ioasId: number): { ranges: Span[]; alignment: bigint } {
  const ioas = ctx.objects.get<Ioas>(ioasId, "ioas");
  return { ranges: ioas.iopt.iovaRanges(), alignment: ioas.iopt.iovaAlignment };
}

/** `iommufd_ioas_load_iovas` + `iopt_set_allow_iova`: EINVAL for start >= last or overlapping ranges. */
export function ioasAllowIovas(ctx: IommufdCtx, ioasId: number, ranges: readonly IntervalNode[]): void {
  const ioas = ctx.objects.get<Ioas>(ioasId, "ioas");
  checkAllowedRanges(ranges);
  ioas.iopt.setAllowIova(ranges);
}

/** `iommufd_ioas_load_iovas`'s checks, in order: each range start < last and overlapping none before it. */
export function checkAllowedRanges(ranges: readonly IntervalNode[]): void {
  const seen: IntervalNode[] = [];
  for (const r of ranges) {
    if (r.start >= r.last) {
      throw new ErrnoError("EINVAL", "iommufd_ioas_load_iovas", "range start >= last", {
        start: r.start,
        last: r.last,
      });
    }
    if (seen.some((s) => s.start <= r.last && r.start <= s.last)) {
      throw new ErrnoError("EINVAL", "iommufd_ioas_load_iovas", "ranges overlap", { start: r.start, last: r.last });
    }
    seen.push(r);
  }
}

/**
 * `iommufd_ioas_map`: EOVERFLOW (iova or length = U64_MAX), EINVAL (no access), ENOENT (IOAS), then
 * io_pagetable's rules. Returns the IOVA used.
 */
export function ioasMap(
  ctx: IommufdCtx,
  ioasId: number,
  userVa: bigint,
  length: bigint,
  iova: bigint,
  flags: MapFlags,
): bigint {
  const op = "iommufd_ioas_map";
  if (iova >= U64_MAX || length >= U64_MAX) throw new ErrnoError("EOVERFLOW", op, "iova or length too large", {});
  if (!flags.read && !flags.write) throw noAccess(op);
  const ioas = ctx.objects.get<Ioas>(ioasId, "ioas");
  return ioas.iopt.mapUser(
    ctx.mm,
    userVa,
    length,
    flags.fixed ? iova : null,
    convIommuProt(flags),
    ctx.accountMode === "mm",
  );
}

/**
 * `iommufd_ioas_copy`: map the pages under [srcIova, srcIova + length) of one IOAS into another (or the
 * same) without pinning again. ENOENT unless contiguous mappings cover the source. Returns the IOVA used.
 */
export function ioasCopy(
  ctx: IommufdCtx,
  dstIoasId: number,
  srcIoasId: number,
  srcIova: bigint,
  length: bigint,
  dstIova: bigint,
  flags: MapFlags,
): bigint {
  const op = "iommufd_ioas_copy";
  if (length >= U64_MAX || srcIova >= U64_MAX || dstIova >= U64_MAX) {
    throw new ErrnoError("EOVERFLOW", op, "length or an iova too large", {});
  }
  if (!flags.read && !flags.write) throw noAccess(op);
  const src = ctx.objects.get<Ioas>(srcIoasId, "ioas");
  const list = src.iopt.getPages(srcIova, length);
  const dst = ctx.objects.get<Ioas>(dstIoasId, "ioas");
  return dst.iopt.mapPages(list, length, flags.fixed ? dstIova : null, convIommuProt(flags));
}

/** `iommufd_ioas_unmap`: 0..U64_MAX unmaps everything (0 bytes when empty); else whole mappings only, ENOENT for none. */
export function ioasUnmap(ctx: IommufdCtx, ioasId: number, iova: bigint, length: bigint): bigint {
  const ioas = ctx.objects.get<Ioas>(ioasId, "ioas");
  if (iova === 0n && length === U64_MAX) return ioas.iopt.unmapAll();
  if (iova >= U64_MAX || length >= U64_MAX) {
    throw new ErrnoError("EOVERFLOW", "iommufd_ioas_unmap", "iova or length too large", { iova, length });
  }
  const n = ioas.iopt.unmapIova(iova, length);
  if (n === 0n) throw new ErrnoError("ENOENT", "iommufd_ioas_unmap", "nothing mapped in the range", { iova, length });
  return n;
}

/** `iommufd_ioas_option_huge_pages`: get (1 = huge pages allowed) or set 0/1 (else EINVAL). */
export function ioasOptionHugePages(ctx: IommufdCtx, ioasId: number, set: bigint | null): bigint {
  const ioas = ctx.objects.get<Ioas>(ioasId, "ioas");
  if (set === null) return ioas.iopt.disableLargePages ? 0n : 1n;
  if (set === 0n) ioas.iopt.disableHugePages();
  else if (set === 1n) ioas.iopt.enableHugePages();
  else throw new ErrnoError("EINVAL", "iommufd_ioas_option_huge_pages", "value must be 0 or 1", { value: set });
  return set;
}

/** `iommufd_ioas_destroy`: unmap everything (unpinning), nothing else holds it by now. */
export function ioasDestroy(ioas: Ioas): void {
  ioas.iopt.unmapAll();
}
