/**
 * `iommu_map` / `iommu_unmap` / `iommu_iova_to_phys` (iommu.c 6.1 `__iommu_map`, `__iommu_unmap`).
 * Reference §2.3. A failed map unwinds what it mapped, so it leaves no trace.
 */
import type { Iova, PhysAddr } from "./addr.js";
import type { IommuDomain } from "./domain.js";
import { ErrnoError, isErrno } from "./errno.js";
import { emptyGather, type IotlbGather, isPagingDomain } from "./iommu-ops.js";
import { iommuPgsize, minPageSize } from "./pgsize.js";
import { U64_MAX } from "./u64.js";

const MAX_PGCOUNT = BigInt(Number.MAX_SAFE_INTEGER);

/** The contract passes pgcount as a number: split absurdly long runs (> 2^53 pages) into several calls. */
function pgcount(count: bigint): number {
  return Number(count > MAX_PGCOUNT ? MAX_PGCOUNT : count);
}

/** `minPageSize` of the last bitmap seen: a domain maps and unmaps with the same bitmap over and over. */
let lastBitmap = -1n;
let lastMinPg = 0n;
function minPage(bitmap: bigint): bigint {
  if (bitmap !== lastBitmap) {
    lastMinPg = minPageSize(bitmap);
    lastBitmap = bitmap;
  }
  return lastMinPg;
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

/**
 * `iommu_map`: map [iova, iova + size) to [paddr, ...) with `prot`. Throws ENODEV (no map op or
 * empty page-size bitmap), EINVAL (not a paging domain, or iova/paddr/size not aligned to the
 * minimum page), or the driver's error (EEXIST, ENOMEM, ERANGE, ...) after unwinding.
 */
export function iommuMap(domain: IommuDomain, iova: Iova, paddr: PhysAddr, size: bigint, prot: number): void {
  const op = "__iommu_map";
  const drv = domain.driver;
  const bitmap = domain.pgsizeBitmap;
  if (!drv.mapPages || bitmap === 0n) {
    throw new ErrnoError("ENODEV", op, "domain has no map_pages or an empty pgsize_bitmap", { domain: domain.id });
  }
  if (!isPagingDomain(domain.type) || domain.freed) {
    throw new ErrnoError("EINVAL", op, `${domain.type} domain is not a paging domain`, { type: domain.type });
  }
  // Values a u64 cannot hold are impossible in the kernel; refuse them rather than wrap.
  if (iova < 0n || paddr < 0n || size < 0n || iova > U64_MAX || paddr > U64_MAX || size > U64_MAX) {
    throw new ErrnoError("EINVAL", op, "address or size outside u64", { iova, paddr, size });
  }
  const minPg = minPage(bitmap);
  if (((iova | paddr | size) & (minPg - 1n)) !== 0n) {
    throw new ErrnoError(
      "EINVAL",
      op,
      `unaligned: iova ${hex(iova)} pa ${hex(paddr)} size ${hex(size)} min_pagesz ${hex(minPg)}`,
      { iova, paddr, size, minPagesz: minPg },
    );
  }

  let cur = iova;
  let pa = paddr;
  let left = size;
  let error: ErrnoError | null = null;
  while (left > 0n) {
    // One minimum page (checked aligned above) is always iommu_pgsize's {min page, 1}: skip the search.
    let pgsize = minPg;
    let n = 1;
    if (left !== minPg) {
      const c = iommuPgsize(bitmap, cur, pa, left);
      pgsize = c.pgsize;
      n = pgcount(c.count);
    }
    let mapped: bigint;
    try {
      const r = drv.mapPages(cur, pa, pgsize, n, prot);
      mapped = r.mapped;
      error = r.error;
    } catch (e) {
      // A driver that throws instead of returning {mapped, error} mapped nothing in that call.
      if (!isErrno(e)) throw e;
      mapped = 0n;
      error = e;
    }
    // Pages mapped before an error still count, so the unwind covers them.
    left -= mapped;
    if (error) break;
    cur += mapped;
    pa += mapped;
  }
  if (error) {
    if (size - left > 0n) iommuUnmap(domain, iova, size - left);
    throw error;
  }
  drv.iotlbSyncMap?.(iova, size);
}

/**
 * `__iommu_unmap` without the final sync (`iommu_unmap_fast`): unmap into `gather`. Returns the bytes
 * unmapped: 0 when the domain cannot unmap or iova/size are misaligned; stops at the first hole;
 * may exceed `size` when a larger page covers the range.
 */
export function iommuUnmapFast(domain: IommuDomain, iova: Iova, size: bigint, gather: IotlbGather): bigint {
  const drv = domain.driver;
  const bitmap = domain.pgsizeBitmap;
  if (!drv.unmapPages || bitmap === 0n) return 0n;
  if (!isPagingDomain(domain.type) || domain.freed) return 0n;
  if (iova < 0n || size < 0n || iova > U64_MAX || size > U64_MAX) return 0n;
  const minPg = minPage(bitmap);
  if (((iova | size) & (minPg - 1n)) !== 0n) return 0n;

  let unmapped = 0n;
  let cur = iova;
  while (unmapped < size) {
    const left = size - unmapped;
    // As in iommuMap: a single minimum page needs no page-size search.
    const n = left === minPg ? drv.unmapPages(cur, minPg, 1, gather) : unmapChunk(drv, bitmap, cur, left, gather);
    if (n === 0n) break;
    cur += n;
    unmapped += n;
  }
  return unmapped;
}

function unmapChunk(
  drv: IommuDomain["driver"],
  bitmap: bigint,
  iova: bigint,
  left: bigint,
  gather: IotlbGather,
): bigint {
  const { pgsize, count } = iommuPgsize(bitmap, iova, iova, left);
  return (drv.unmapPages as NonNullable<typeof drv.unmapPages>)(iova, pgsize, pgcount(count), gather);
}

/** `iommu_unmap`: unmap, then `iotlb_sync` the gathered span. Returns bytes unmapped (never throws for holes). */
export function iommuUnmap(domain: IommuDomain, iova: Iova, size: bigint): bigint {
  const gather = emptyGather();
  const n = iommuUnmapFast(domain, iova, size, gather);
  if (!domain.freed) domain.driver.iotlbSync?.(gather);
  return n;
}

/** `iommu_iova_to_phys`: identity → iova, blocked → 0, else the driver's walk (0n = not mapped). */
export function iommuIovaToPhys(domain: IommuDomain, iova: Iova): PhysAddr {
  // An identity domain translates an IOVA to the same number as a physical address.
  if (domain.type === "identity") return iova as bigint as PhysAddr;
  if (domain.type === "blocked") return 0n;
  return domain.driver.iovaToPhys?.(iova) ?? 0n;
}
