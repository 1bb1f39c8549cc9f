/**
 * The container's list of valid IOVA ranges (`iommu->iova_list`, type1 5.4+): ascending, disjoint,
 * inclusive `[start, end]`. Empty means "no constraint known yet". Built from the domains' apertures minus
 * every reserved region except DIRECT_RELAXABLE. These functions work on copies, as type1 does, so a failed
 * attach keeps the old list. Reference §6.8.
 */
import type { ResvRegion } from "@iommu/core";
import { U64_MAX } from "@iommu/core";

export interface IovaRange {
  readonly start: bigint;
  /** Inclusive. */
  readonly end: bigint;
}

/** `vfio_iommu_aper_resize`: clip the list to `[start, end]` (an empty list becomes that one range). */
export function aperResize(list: readonly IovaRange[], start: bigint, end: bigint): IovaRange[] {
  if (list.length === 0) return [{ start, end }];
  const out = list.map((r) => ({ ...r }));
  // Adjust the start: drop ranges wholly below it, clip the one it falls in (note: strict `< end`, as Linux).
  while (out.length > 0) {
    const n = out[0]!;
    if (start < n.start) break;
    if (start >= n.start && start < n.end) {
      out[0] = { start, end: n.end };
      break;
    }
    out.shift();
  }
  // Adjust the end: clip the range it falls in (strict `> start`), drop ranges above it.
  const kept: IovaRange[] = [];
  for (const n of out) {
    if (end > n.end) kept.push(n);
    else if (end > n.start && end <= n.end) kept.push({ start: n.start, end });
  }
  return kept;
}

/**
 * `vfio_iommu_resv_exclude`: carve every reserved region (DIRECT_RELAXABLE excepted) out of the list.
 * Returns null where Linux returns -EINVAL: nothing usable is left.
 */
export function resvExclude(list: readonly IovaRange[], regions: readonly ResvRegion[]): IovaRange[] | null {
  let cur: IovaRange[] = list.map((r) => ({ ...r }));
  for (const r of regions) {
    if (r.type === "direct-relaxable") continue;
    const start = r.start;
    const end = r.start + r.length - 1n;
    const next: IovaRange[] = [];
    for (const n of cur) {
      if (start > n.end || end < n.start) {
        next.push(n);
        continue;
      }
      if (start > n.start) next.push({ start: n.start, end: start - 1n });
      if (end < n.end) next.push({ start: end + 1n, end: n.end });
    }
    cur = next;
  }
  return cur.length === 0 ? null : cur;
}

/** `vfio_iommu_iova_dma_valid`: `[start, end]` lies inside one range (anything goes on an empty list). */
export function iovaDmaValid(list: readonly IovaRange[], start: bigint, end: bigint): boolean {
  if (list.length === 0) return true;
  for (const n of list) if (start >= n.start && end <= n.end) return true;
  return false;
}

/** `vfio_iommu_aper_expand`: widen the copy's ends to the intersection of the remaining apertures. */
export function aperExpand(
  list: readonly IovaRange[],
  apertures: readonly { apertureStart: bigint; apertureEnd: bigint }[],
): IovaRange[] {
  if (list.length === 0) return [];
  let start = 0n;
  let end = U64_MAX;
  for (const g of apertures) {
    if (g.apertureStart > start) start = g.apertureStart;
    if (g.apertureEnd < end) end = g.apertureEnd;
  }
  const out = list.map((r) => ({ ...r }));
  out[0] = { start, end: out[0]!.end };
  const last = out.length - 1;
  out[last] = { start: out[last]!.start, end };
  return out;
}

/** `vfio_iommu_has_sw_msi`: the SW_MSI base, unless a hardware MSI region takes precedence. */
export function findSwMsi(regions: readonly ResvRegion[]): bigint | null {
  let base: bigint | null = null;
  for (const r of regions) {
    if (r.type === "msi") return null;
    if (r.type === "sw-msi") base = r.start;
  }
  return base;
}
