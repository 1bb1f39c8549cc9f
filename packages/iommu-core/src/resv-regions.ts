/**
 * A group's reserved-region list and its sysfs text (iommu.c 6.1: `iommu_insert_resv_region`,
 * `iommu_get_group_resv_regions`, `iommu_group_show_resv_regions`). Reference §2.2.
 */

import { type ResvRegion, type ResvType, resvEnd, resvRegion, resvTypeOrder } from "./resv-region.js";
import { U64_MAX } from "./u64.js";

/**
 * `iommu_insert_resv_region`: insert a copy of `region` into the sorted list `list` (not modified)
 * and return the new list. Sorted by start, then by type; regions of the new region's type that
 * overlap or touch are merged; other types are never merged (they may overlap).
 */
export function insertResvRegion(list: readonly ResvRegion[], region: ResvRegion): ResvRegion[] {
  const order = resvTypeOrder(region.type);
  // Insert before the first entry with a greater start, or an equal start and a type >= ours.
  let at = list.findIndex(
    (it) => region.start < it.start || (region.start === it.start && order <= resvTypeOrder(it.type)),
  );
  if (at < 0) at = list.length;
  const walk: ResvRegion[] = [...list.slice(0, at), region, ...list.slice(at)];

  // Re-walk: same-type entries fold into the last output entry of that type when they start at or
  // before its end + 1. The "+ 1" is u64 arithmetic in the kernel, so an end of 2^64-1 wraps to 0
  // and nothing merges into it (kept faithfully; see resv-regions.test.ts).
  const out: ResvRegion[] = [];
  for (const it of walk) {
    if (it.type !== region.type) {
      out.push(it);
      continue;
    }
    let topIdx = -1;
    for (let i = out.length - 1; i >= 0; i--) {
      if (out[i]?.type === it.type) {
        topIdx = i;
        break;
      }
    }
    const top = topIdx >= 0 ? out[topIdx] : undefined;
    if (!top) {
      out.push(it);
      continue;
    }
    const topEnd = resvEnd(top);
    if (it.start > ((topEnd + 1n) & U64_MAX)) {
      out.push(it);
    } else {
      const itEnd = resvEnd(it);
      // biome-ignore lint/complexity/useMathMinMax: Math.max does not take bigint
      const end = topEnd > itEnd ? topEnd : itEnd;
      out[topIdx] = resvRegion(top.start, end - top.start + 1n, top.prot, top.type);
    }
  }
  return out;
}

/** Insert each region of `regions` in order (`iommu_insert_device_resv_regions`). */
export function insertResvRegions(list: readonly ResvRegion[], regions: readonly ResvRegion[]): ResvRegion[] {
  let out = [...list];
  for (const r of regions) out = insertResvRegion(out, r);
  return out;
}

/** sysfs type string: sw-msi prints as `msi` (iommu_group_resv_type_string). */
export function resvTypeString(type: ResvType): string {
  return type === "sw-msi" ? "msi" : type;
}

/** One sysfs `reserved_regions` line: `0x%016llx 0x%016llx %s\n` (start, inclusive end, type). */
export function resvRegionLine(r: ResvRegion): string {
  const hex = (v: bigint) => `0x${v.toString(16).padStart(16, "0")}`;
  return `${hex(r.start)} ${hex(resvEnd(r))} ${resvTypeString(r.type)}\n`;
}

/** The whole sysfs `reserved_regions` file for a group list. */
export function resvRegionsText(list: readonly ResvRegion[]): string {
  return list.map(resvRegionLine).join("");
}
