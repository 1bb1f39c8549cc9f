/**
 * The iommufd uAPI of Linux 6.12 (`include/uapi/linux/iommufd.h`): ioctl numbers, flags, and every
 * struct's size, minimum size (`offsetofend` of its last mandatory field, as main.c's IOCTL_OP table)
 * and field offsets. x86-64 and arm64 share these layouts (`__aligned_u64`). Entry point `@vfio/uapi/iommufd`.
 */
import { view } from "./vfio.js";

/** `IOMMUFD_TYPE` = ';' */
export const IOMMUFD_TYPE = 0x3b;
export const IOMMUFD_CMD_BASE = 0x80;

/** `_IO(IOMMUFD_TYPE, nr)`: no size/direction bits. */
const iommufdIo = (nr: number): number => (IOMMUFD_TYPE << 8) | nr;

export const IOMMU_DESTROY = iommufdIo(0x80);
export const IOMMU_IOAS_ALLOC = iommufdIo(0x81);
export const IOMMU_IOAS_ALLOW_IOVAS = iommufdIo(0x82);
export const IOMMU_IOAS_COPY = iommufdIo(0x83);
export const IOMMU_IOAS_IOVA_RANGES = iommufdIo(0x84);
export const IOMMU_IOAS_MAP = iommufdIo(0x85);
export const IOMMU_IOAS_UNMAP = iommufdIo(0x86);
export const IOMMU_OPTION = iommufdIo(0x87);
export const IOMMU_VFIO_IOAS = iommufdIo(0x88);
export const IOMMU_HWPT_ALLOC = iommufdIo(0x89);
export const IOMMU_GET_HW_INFO = iommufdIo(0x8a);
export const IOMMU_HWPT_SET_DIRTY_TRACKING = iommufdIo(0x8b);
export const IOMMU_HWPT_GET_DIRTY_BITMAP = iommufdIo(0x8c);
export const IOMMU_HWPT_INVALIDATE = iommufdIo(0x8d);
export const IOMMU_FAULT_QUEUE_ALLOC = iommufdIo(0x8e);
/** Last command number 6.12 knows; numbers past it (and below the base) go to the VFIO compat handler. */
export const IOMMUFD_CMD_LAST = 0x8e;

/** `size` and `min_size` of one command's struct (main.c `IOCTL_OP`). */
export interface StructSize {
  readonly size: number;
  readonly minSize: number;
}

/** `struct iommu_destroy { u32 size @0; u32 id @4 }` */
export const DESTROY = { size: 8, minSize: 8, id: 4 } as const;

/** `struct iommu_ioas_alloc { u32 size @0; u32 flags @4; u32 out_ioas_id @8 }` */
export const IOAS_ALLOC = { size: 12, minSize: 12, flags: 4, outIoasId: 8 } as const;

/** `struct iommu_iova_range { u64 start @0; u64 last @8 }` */
export const IOVA_RANGE = { size: 16, start: 0, last: 8 } as const;

/** `struct iommu_ioas_iova_ranges { u32 size; u32 ioas_id @4; u32 num_iovas @8; u32 __reserved @12; u64 allowed_iovas @16; u64 out_iova_alignment @24 }` */
export const IOAS_IOVA_RANGES = {
  size: 32,
  minSize: 32,
  ioasId: 4,
  numIovas: 8,
  reserved: 12,
  allowedIovas: 16,
  outIovaAlignment: 24,
} as const;

/** `struct iommu_ioas_allow_iovas { u32 size; u32 ioas_id @4; u32 num_iovas @8; u32 __reserved @12; u64 allowed_iovas @16 }` */
export const IOAS_ALLOW_IOVAS = {
  size: 24,
  minSize: 24,
  ioasId: 4,
  numIovas: 8,
  reserved: 12,
  allowedIovas: 16,
} as const;

export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;
export const IOMMU_IOAS_MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

/** `struct iommu_ioas_map { u32 size; u32 flags @4; u32 ioas_id @8; u32 __reserved @12; u64 user_va @16; u64 length @24; u64 iova @32 }` */
export const IOAS_MAP = {
  size: 40,
  minSize: 40,
  flags: 4,
  ioasId: 8,
  reserved: 12,
  userVa: 16,
  length: 24,
  iova: 32,
} as const;

/** `struct iommu_ioas_copy { u32 size; u32 flags @4; u32 dst_ioas_id @8; u32 src_ioas_id @12; u64 length @16; u64 dst_iova @24; u64 src_iova @32 }` */
export const IOAS_COPY = {
  size: 40,
  minSize: 40,
  flags: 4,
  dstIoasId: 8,
  srcIoasId: 12,
  length: 16,
  dstIova: 24,
  srcIova: 32,
} as const;

/** `struct iommu_ioas_unmap { u32 size; u32 ioas_id @4; u64 iova @8; u64 length @16 }` */
export const IOAS_UNMAP = { size: 24, minSize: 24, ioasId: 4, iova: 8, length: 16 } as const;

export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;

/** `struct iommu_option { u32 size; u32 option_id @4; u16 op @8; u16 __reserved @10; u32 object_id @12; u64 val64 @16 }` */
export const OPTION = { size: 24, minSize: 24, optionId: 4, op: 8, reserved: 10, objectId: 12, val64: 16 } as const;

export const IOMMU_VFIO_IOAS_GET = 0;
export const IOMMU_VFIO_IOAS_SET = 1;
export const IOMMU_VFIO_IOAS_CLEAR = 2;

/** `struct iommu_vfio_ioas { u32 size; u32 ioas_id @4; u16 op @8; u16 __reserved @10 }` */
export const VFIO_IOAS = { size: 12, minSize: 12, ioasId: 4, op: 8, reserved: 10 } as const;

export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
export const IOMMU_HWPT_DATA_NONE = 0;

/**
 * `struct iommu_hwpt_alloc { u32 size; u32 flags @4; u32 dev_id @8; u32 pt_id @12; u32 out_hwpt_id @16;
 * u32 __reserved @20; u32 data_type @24; u32 data_len @28; u64 data_uptr @32; u32 fault_id @40; u32 __reserved2 @44 }`
 */
export const HWPT_ALLOC = {
  size: 48,
  minSize: 24,
  flags: 4,
  devId: 8,
  ptId: 12,
  outHwptId: 16,
  reserved: 20,
  dataType: 24,
  dataLen: 28,
  dataUptr: 32,
  faultId: 40,
  reserved2: 44,
} as const;

export const IOMMU_HW_INFO_TYPE_NONE = 0;
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1n << 0n;

/** `struct iommu_hw_info_vtd { u32 flags @0; u32 __reserved @4; u64 cap_reg @8; u64 ecap_reg @16 }` */
export const HW_INFO_VTD = { size: 24, flags: 0, capReg: 8, ecapReg: 16 } as const;

/**
 * `struct iommu_hw_info { u32 size; u32 flags @4; u32 dev_id @8; u32 data_len @12; u64 data_uptr @16;
 * u32 out_data_type @24; u8 out_max_pasid_log2 @28; u8 __reserved[3] @29; u64 out_capabilities @32 }`
 */
export const HW_INFO = {
  size: 40,
  minSize: 32,
  flags: 4,
  devId: 8,
  dataLen: 12,
  dataUptr: 16,
  outDataType: 24,
  outMaxPasidLog2: 28,
  reserved: 29,
  outCapabilities: 32,
} as const;

export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
/** `struct iommu_hwpt_set_dirty_tracking { u32 size; u32 flags @4; u32 hwpt_id @8; u32 __reserved @12 }` */
export const HWPT_SET_DIRTY_TRACKING = { size: 16, minSize: 16, flags: 4, hwptId: 8, reserved: 12 } as const;

export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;
/** `struct iommu_hwpt_get_dirty_bitmap { u32 size; u32 hwpt_id @4; u32 flags @8; u32 __reserved @12; u64 iova @16; u64 length @24; u64 page_size @32; u64 data @40 }` */
export const HWPT_GET_DIRTY_BITMAP = {
  size: 48,
  minSize: 48,
  hwptId: 4,
  flags: 8,
  reserved: 12,
  iova: 16,
  length: 24,
  pageSize: 32,
  data: 40,
} as const;

/** `struct iommu_hwpt_invalidate { u32 size; u32 hwpt_id @4; u64 data_uptr @8; u32 data_type @16; u32 entry_len @20; u32 entry_num @24; u32 __reserved @28 }` */
export const HWPT_INVALIDATE = {
  size: 32,
  minSize: 32,
  hwptId: 4,
  dataUptr: 8,
  dataType: 16,
  entryLen: 20,
  entryNum: 24,
  reserved: 28,
} as const;

/** `struct iommu_fault_alloc { u32 size; u32 flags @4; u32 out_fault_id @8; u32 out_fault_fd @12 }` */
export const FAULT_ALLOC = { size: 16, minSize: 16, flags: 4, outFaultId: 8, outFaultFd: 12 } as const;

/** The `size`/`min_size` pair of each command number (main.c's `iommufd_ioctl_ops`, 6.12). */
export const IOCTL_SIZES: ReadonlyMap<number, StructSize> = new Map<number, StructSize>([
  [IOMMU_DESTROY, DESTROY],
  [IOMMU_IOAS_ALLOC, IOAS_ALLOC],
  [IOMMU_IOAS_ALLOW_IOVAS, IOAS_ALLOW_IOVAS],
  [IOMMU_IOAS_COPY, IOAS_COPY],
  [IOMMU_IOAS_IOVA_RANGES, IOAS_IOVA_RANGES],
  [IOMMU_IOAS_MAP, IOAS_MAP],
  [IOMMU_IOAS_UNMAP, IOAS_UNMAP],
  [IOMMU_OPTION, OPTION],
  [IOMMU_VFIO_IOAS, VFIO_IOAS],
  [IOMMU_HWPT_ALLOC, HWPT_ALLOC],
  [IOMMU_GET_HW_INFO, HW_INFO],
  [IOMMU_HWPT_SET_DIRTY_TRACKING, HWPT_SET_DIRTY_TRACKING],
  [IOMMU_HWPT_GET_DIRTY_BITMAP, HWPT_GET_DIRTY_BITMAP],
  [IOMMU_HWPT_INVALIDATE, HWPT_INVALIDATE],
  [IOMMU_FAULT_QUEUE_ALLOC, FAULT_ALLOC],
]);

/** Little-endian field access on a struct buffer. */
export function rd16(b: Uint8Array, off: number): number {
  return view(b).getUint16(off, true);
}
export function rd32(b: Uint8Array, off: number): number {
  return view(b).getUint32(off, true);
}
export function rd64(b: Uint8Array, off: number): bigint {
  return view(b).getBigUint64(off, true);
}
export function wr32(b: Uint8Array, off: number, v: number): void {
  view(b).setUint32(off, v >>> 0, true);
}
export function wr64(b: Uint8Array, off: number, v: bigint): void {
  view(b).setBigUint64(off, BigInt.asUintN(64, v), true);
}
