/**
 * Reserved regions (`struct iommu_resv_region`, include/linux/iommu.h 6.1): IOVA ranges a
 * domain's user must not (or must specially) use. Reference §2.2.
 */
import { U64_MAX } from "./u64.js";

/** Region types, in Linux's enum order (DIRECT=0 … SW_MSI=4). Never persist the numbers. */
export const RESV_TYPES = ["direct", "direct-relaxable", "reserved", "msi", "sw-msi"] as const;
export type ResvType = (typeof RESV_TYPES)[number];

/** Linux's enum value of a region type (used for the sort order of equal starts). */
export function resvTypeOrder(t: ResvType): number {
  return RESV_TYPES.indexOf(t);
}

/** Only `resvRegion` makes a region: an object literal lacks this key, so it never type-checks as one. */
declare const validated: unique symbol;

export interface ResvRegion {
  /** Set by `resvRegion` alone (length > 0, no 64-bit wrap checked). */
  readonly [validated]: true;
  /** First IOVA of the region. */
  readonly start: bigint;
  /** Length in bytes (> 0). */
  readonly length: bigint;
  /** IOMMU_* prot bits the region would be mapped with. */
  readonly prot: number;
  readonly type: ResvType;
}

/** `iommu_alloc_resv_region`: a validated region value (length > 0, no 64-bit wrap). */
export function resvRegion(start: bigint, length: bigint, prot: number, type: ResvType): ResvRegion {
  if (start < 0n || length <= 0n || start + length - 1n > U64_MAX) {
    throw new RangeError(`reserved region 0x${start.toString(16)}+0x${length.toString(16)} is empty or wraps`);
  }
  return Object.freeze({ start, length, prot, type }) as ResvRegion;
}

/** Inclusive last IOVA of a region. */
export function resvEnd(r: ResvRegion): bigint {
  return r.start + r.length - 1n;
}
