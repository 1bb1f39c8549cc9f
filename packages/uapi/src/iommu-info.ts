/**
 * `VFIO_IOMMU_GET_INFO`'s answer read the way userspace reads it: the fixed `struct vfio_iommu_type1_info`,
 * then its capability chain through `walkCaps`. The one user-side decoder of these bytes (the VMM, type1's
 * `Container.getInfo` and the tests all use it); an absent capability reads as null, not as zeros.
 */
import { type CapHeader, walkCaps } from "./cap-chain.js";
import { readStruct } from "./struct.js";
import {
  CAP_DMA_AVAIL_LAYOUT,
  CAP_DMA_AVAIL_SIZE,
  CAP_IOVA_RANGE_BASE,
  CAP_IOVA_RANGE_LAYOUT,
  CAP_MIGRATION_LAYOUT,
  CAP_MIGRATION_SIZE,
  CAP_RESV_IOVA_RANGE_LAYOUT,
  CAP_RESV_IOVA_RANGE_SIZE,
  INFO_CAPSZ,
  INFO_LAYOUT,
  INFO_MINSZ,
  INFO_SIZE,
  IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE,
  IOVA_RANGE_LAYOUT,
  IOVA_RANGE_SIZE,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
} from "./vfio.js";

/** The part of `struct vfio_iommu_type1_info` up to minsz, and `cap_offset` (present from INFO_CAPSZ on). */
const { capOffset: INFO_CAP_OFFSET, ...INFO_MINSZ_LAYOUT } = INFO_LAYOUT;
const INFO_CAP_OFFSET_LAYOUT = { capOffset: INFO_CAP_OFFSET } as const;

/** `struct vfio_iova_range`: both ends inclusive. */
export interface UapiIovaRange {
  readonly start: bigint;
  readonly end: bigint;
}

/** `struct vfio_iommu_type1_info_cap_migration`'s body. */
export interface MigrationCap {
  readonly flags: number;
  readonly pgsizeBitmap: bigint;
  readonly maxDirtyBitmapSize: bigint;
}

/** A decoded `VFIO_IOMMU_GET_INFO` answer. */
export interface IommuType1Info {
  readonly argsz: number;
  readonly flags: number;
  readonly iovaPgsizes: bigint;
  /** 0 when the kernel set no chain (or the buffer stops before `cap_offset`). */
  readonly capOffset: number;
  /** The chain's headers in order (empty without `VFIO_IOMMU_INFO_CAPS`). */
  readonly caps: readonly CapHeader[];
  readonly migration: MigrationCap | null;
  readonly dmaAvail: number | null;
  /** `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`: the usable IOVA ranges. */
  readonly iovaRanges: readonly UapiIovaRange[];
  /** The seed RFC's per-range reserved caps (`IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE`), in chain order. */
  readonly reservedRanges: readonly UapiIovaRange[];
  /** The bytes up to the end of the last capability body (a copy). */
  readonly raw: Uint8Array;
}

/** The body of `VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION` at `at` (32 bytes from the header). */
export function readMigrationCap(buf: Uint8Array, at: number): MigrationCap {
  return readStruct(CAP_MIGRATION_LAYOUT, buf, at);
}

/** `avail` of `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL` at `at`. */
export function readDmaAvailCap(buf: Uint8Array, at: number): number {
  return readStruct(CAP_DMA_AVAIL_LAYOUT, buf, at).avail;
}

/** Our RESV_IOVA_RANGE cap at `at`: one inclusive range. */
export function readResvIovaRangeCap(buf: Uint8Array, at: number): UapiIovaRange {
  return readStruct(CAP_RESV_IOVA_RANGE_LAYOUT, buf, at);
}

/**
 * `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE` at `at`: `nr_iovas`, `reserved`, and the ranges that lie wholly
 * below `limit` (the caller's buffer end), at most `maxRanges` of them.
 */
export function readIovaRangeCap(
  buf: Uint8Array,
  at: number,
  limit = buf.length,
  maxRanges = Number.POSITIVE_INFINITY,
): { nrIovas: number; reserved: number; ranges: UapiIovaRange[] } {
  const { nrIovas, reserved } = readStruct(CAP_IOVA_RANGE_LAYOUT, buf, at);
  const ranges: UapiIovaRange[] = [];
  for (let i = 0; i < nrIovas && i < maxRanges; i++) {
    const o = at + CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * i;
    if (o + IOVA_RANGE_SIZE > limit) break;
    ranges.push(readStruct(IOVA_RANGE_LAYOUT, buf, o));
  }
  return { nrIovas, reserved, ranges };
}

/**
 * Decode GET_INFO bytes. The chain is followed only when `flags` has `VFIO_IOMMU_INFO_CAPS` and the buffer
 * holds `cap_offset`; a chain that runs past the buffer or loops throws RangeError (from `walkCaps`).
 */
export function decodeIommuInfo(buf: Uint8Array): IommuType1Info {
  if (buf.length < INFO_MINSZ) throw new RangeError(`GET_INFO answer of ${buf.length} bytes is below minsz`);
  const { argsz, flags, iovaPgsizes } = readStruct(INFO_MINSZ_LAYOUT, buf);
  const capOffset = buf.length >= INFO_CAPSZ ? readStruct(INFO_CAP_OFFSET_LAYOUT, buf).capOffset : 0;
  const caps = flags & VFIO_IOMMU_INFO_CAPS ? walkCaps(buf, capOffset) : [];
  let migration: MigrationCap | null = null;
  let dmaAvail: number | null = null;
  const iovaRanges: UapiIovaRange[] = [];
  const reservedRanges: UapiIovaRange[] = [];
  let end = Math.min(buf.length, INFO_SIZE);
  const body = (at: number, size: number): void => {
    if (at + size > buf.length) throw new RangeError(`capability at ${at} needs ${size} bytes, past the buffer`);
    end = Math.max(end, at + size);
  };
  for (const { id, offset: at } of caps) {
    if (id === VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
      body(at, CAP_MIGRATION_SIZE);
      migration = readMigrationCap(buf, at);
    } else if (id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      body(at, CAP_DMA_AVAIL_SIZE);
      dmaAvail = readDmaAvailCap(buf, at);
    } else if (id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      body(at, CAP_IOVA_RANGE_BASE);
      const cap = readIovaRangeCap(buf, at);
      body(at, CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * cap.nrIovas);
      iovaRanges.push(...cap.ranges);
    } else if (id === IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE) {
      body(at, CAP_RESV_IOVA_RANGE_SIZE);
      reservedRanges.push(readResvIovaRangeCap(buf, at));
    }
  }
  return {
    argsz,
    flags,
    iovaPgsizes,
    capOffset,
    caps,
    migration,
    dmaAvail,
    iovaRanges,
    reservedRanges,
    raw: buf.slice(0, end),
  };
}
