/**
 * The VFIO uAPI (`include/uapi/linux/vfio.h`, 6.1; every layout here is unchanged in 6.12): request numbers,
 * flags, struct sizes and offsets, and little-endian codecs. One copy for both sides: the kernel model
 * (`@vfio/type1`, the host's vfio-pci) decodes these bytes and the user side (the VMM, the probe) encodes them.
 * x86-64 and arm64 share every layout (LP64, u64 8-aligned); `layout.test.ts` pins them against the header.
 */
import { readStruct, view, writeStruct } from "./struct.js";

export { view };

/** `VFIO_API_VERSION` */
export const VFIO_API_VERSION = 0;

/** `_IO(VFIO_TYPE=';', VFIO_BASE=100 + n)`: no size/direction bits, so the number is 0x3b00 | (100 + n). */
const vfioIo = (n: number): number => (0x3b << 8) | (100 + n);

export const VFIO_GET_API_VERSION = vfioIo(0); // 0x3b64
export const VFIO_CHECK_EXTENSION = vfioIo(1); // 0x3b65
export const VFIO_SET_IOMMU = vfioIo(2); // 0x3b66
export const VFIO_GROUP_GET_STATUS = vfioIo(3); // 0x3b67
export const VFIO_GROUP_SET_CONTAINER = vfioIo(4); // 0x3b68
export const VFIO_GROUP_UNSET_CONTAINER = vfioIo(5); // 0x3b69
export const VFIO_GROUP_GET_DEVICE_FD = vfioIo(6); // 0x3b6a
export const VFIO_DEVICE_GET_INFO = vfioIo(7); // 0x3b6b
export const VFIO_DEVICE_GET_REGION_INFO = vfioIo(8); // 0x3b6c
export const VFIO_DEVICE_GET_IRQ_INFO = vfioIo(9); // 0x3b6d
export const VFIO_DEVICE_SET_IRQS = vfioIo(10); // 0x3b6e
export const VFIO_DEVICE_RESET = vfioIo(11); // 0x3b6f
export const VFIO_IOMMU_GET_INFO = vfioIo(12); // 0x3b70
export const VFIO_IOMMU_MAP_DMA = vfioIo(13); // 0x3b71
export const VFIO_IOMMU_UNMAP_DMA = vfioIo(14); // 0x3b72
export const VFIO_IOMMU_DIRTY_PAGES = vfioIo(17); // 0x3b75

/** Extension / IOMMU type ids (`VFIO_CHECK_EXTENSION`, `VFIO_SET_IOMMU`). */
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
export const VFIO_TYPE1_NESTING_IOMMU = 6;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

/** `struct vfio_group_status { argsz u32 @0, flags u32 @4 }` */
export const GROUP_STATUS_SIZE = 8;
export const VFIO_GROUP_FLAGS_VIABLE = 1;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 2;

/** `struct vfio_iommu_type1_info`: argsz @0, flags @4, iova_pgsizes @8, cap_offset @16, sizeof 24 (implicit pad). */
export const INFO_MINSZ = 16; // offsetofend(iova_pgsizes)
export const INFO_CAPSZ = 20; // offsetofend(cap_offset)
export const INFO_SIZE = 24; // sizeof(struct vfio_iommu_type1_info)
export const VFIO_IOMMU_INFO_PGSIZES = 1;
export const VFIO_IOMMU_INFO_CAPS = 2;

/** Capability ids of GET_INFO's chain (a per-ioctl namespace). */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
/**
 * Not upstream: the seed RFC's "one capability per reserved IOVA range" (seed-rfc.md §2, §5), under an id
 * of our own. Upstream ids are small integers counted up from 1; 0x8000+ is a range it will not reach.
 */
export const IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE = 0x8001;

/** `struct vfio_info_cap_header { id u16 @0, version u16 @2, next u32 @4 }` */
export const CAP_HEADER_SIZE = 8;
/** IOVA_RANGE: header, nr_iovas u32 @8, reserved u32 @12, ranges[] @16 of { start u64, end u64 (inclusive) }. */
export const CAP_IOVA_RANGE_BASE = 16;
export const IOVA_RANGE_SIZE = 16;
/** MIGRATION: header, flags u32 @8, pad, pgsize_bitmap u64 @16, max_dirty_bitmap_size u64 @24. */
export const CAP_MIGRATION_SIZE = 32;
/** DMA_AVAIL: header, avail u32 @8; 12 bytes, not padded to 8 before 6.6. */
export const CAP_DMA_AVAIL_SIZE = 12;
/** Our RESV_IOVA_RANGE: header, start u64 @8, end u64 @16 (inclusive). */
export const CAP_RESV_IOVA_RANGE_SIZE = 24;

/** `struct vfio_device_info { argsz, flags, num_regions @8, num_irqs @12, cap_offset @16, pad }`: 24 bytes. */
export const DEVICE_INFO_SIZE = 24;
/** `struct vfio_region_info { argsz, flags, index @8, cap_offset @12, size u64 @16, offset u64 @24 }` */
export const REGION_INFO_SIZE = 32;
/** `struct vfio_irq_info { argsz, flags, index @8, count @12 }` */
export const IRQ_INFO_SIZE = 16;
/** `struct vfio_irq_set { argsz, flags, index @8, start @12, count @16, data[] @20 }` */
export const IRQ_SET_SIZE = 20;
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
/** vfio-pci's fixed region and irq indexes (`VFIO_PCI_*_INDEX`). */
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;

/** `struct vfio_iommu_type1_dma_map`: argsz, flags, vaddr @8, iova @16, size @24; sizeof 32. */
export const DMA_MAP_SIZE = 32;
export const VFIO_DMA_MAP_FLAG_READ = 1;
export const VFIO_DMA_MAP_FLAG_WRITE = 2;
export const VFIO_DMA_MAP_FLAG_VADDR = 4;

/** `struct vfio_iommu_type1_dma_unmap`: argsz, flags, iova @8, size @16, data[] @24; sizeof 24. */
export const DMA_UNMAP_SIZE = 24;
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1;
export const VFIO_DMA_UNMAP_FLAG_ALL = 2;
export const VFIO_DMA_UNMAP_FLAG_VADDR = 4;

/** `struct vfio_bitmap { pgsize u64 @0, size u64 @8, data u64* @16 }` */
export const BITMAP_SIZE = 24;

/** `struct vfio_iommu_type1_dirty_bitmap { argsz, flags, data[] @8 }` */
export const DIRTY_BITMAP_MINSZ = 8;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 2;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 4;
/** `struct vfio_iommu_type1_dirty_bitmap_get { iova u64, size u64, bitmap vfio_bitmap @16 }`: 40 bytes. */
export const DIRTY_BITMAP_GET_SIZE = 40;

/** DIRTY_BITMAP_PAGES_MAX = INT_MAX bits; DIRTY_BITMAP_SIZE_MAX = those bits rounded to u64, in bytes (256 MiB). */
export const DIRTY_BITMAP_PAGES_MAX = 0x7fff_ffffn;
export const DIRTY_BITMAP_SIZE_MAX = dirtyBitmapBytes(DIRTY_BITMAP_PAGES_MAX);

/** DIRTY_BITMAP_BYTES(n): bytes for n bits rounded up to whole u64 words. */
export function dirtyBitmapBytes(nbits: bigint): bigint {
  return ((nbits + 63n) / 64n) * 8n;
}

/** `struct vfio_info_cap_header` */
export const CAP_HEADER_LAYOUT = { id: [0, "u16"], version: [2, "u16"], next: [4, "u32"] } as const;
/** `struct vfio_group_status` */
export const GROUP_STATUS_LAYOUT = { argsz: [0, "u32"], flags: [4, "u32"] } as const;
/** `struct vfio_device_info` */
export const DEVICE_INFO_LAYOUT = {
  argsz: [0, "u32"],
  flags: [4, "u32"],
  numRegions: [8, "u32"],
  numIrqs: [12, "u32"],
  capOffset: [16, "u32"],
} as const;
/** `struct vfio_region_info` */
export const REGION_INFO_LAYOUT = {
  argsz: [0, "u32"],
  flags: [4, "u32"],
  index: [8, "u32"],
  capOffset: [12, "u32"],
  size: [16, "u64"],
  offset: [24, "u64"],
} as const;
/** `struct vfio_irq_info` */
export const IRQ_INFO_LAYOUT = { argsz: [0, "u32"], flags: [4, "u32"], index: [8, "u32"], count: [12, "u32"] } as const;
/** `struct vfio_irq_set` (its `data[]` follows at IRQ_SET_SIZE) */
export const IRQ_SET_LAYOUT = {
  argsz: [0, "u32"],
  flags: [4, "u32"],
  index: [8, "u32"],
  start: [12, "u32"],
  count: [16, "u32"],
} as const;
/** `struct vfio_iommu_type1_info` (cap_offset only when argsz reaches INFO_CAPSZ) */
export const INFO_LAYOUT = {
  argsz: [0, "u32"],
  flags: [4, "u32"],
  iovaPgsizes: [8, "u64"],
  capOffset: [16, "u32"],
} as const;
/** `struct vfio_iova_range`: both ends inclusive. */
export const IOVA_RANGE_LAYOUT = { start: [0, "u64"], end: [8, "u64"] } as const;
/** `struct vfio_iommu_type1_info_cap_iova_range` after its header (ranges follow at CAP_IOVA_RANGE_BASE). */
export const CAP_IOVA_RANGE_LAYOUT = { nrIovas: [8, "u32"], reserved: [12, "u32"] } as const;
/** `struct vfio_iommu_type1_info_cap_migration` after its header. */
export const CAP_MIGRATION_LAYOUT = {
  flags: [8, "u32"],
  pgsizeBitmap: [16, "u64"],
  maxDirtyBitmapSize: [24, "u64"],
} as const;
/** `struct vfio_iommu_type1_info_dma_avail` after its header. */
export const CAP_DMA_AVAIL_LAYOUT = { avail: [8, "u32"] } as const;
/** Our RESV_IOVA_RANGE cap after its header: one inclusive range. */
export const CAP_RESV_IOVA_RANGE_LAYOUT = { start: [8, "u64"], end: [16, "u64"] } as const;
/** `struct vfio_iommu_type1_dma_map` */
export const DMA_MAP_LAYOUT = {
  argsz: [0, "u32"],
  flags: [4, "u32"],
  vaddr: [8, "u64"],
  iova: [16, "u64"],
  size: [24, "u64"],
} as const;
/** `struct vfio_iommu_type1_dma_unmap` (its `data[]`, a `struct vfio_bitmap`, follows at DMA_UNMAP_SIZE) */
export const DMA_UNMAP_LAYOUT = { argsz: [0, "u32"], flags: [4, "u32"], iova: [8, "u64"], size: [16, "u64"] } as const;
/** `struct vfio_bitmap` */
export const BITMAP_LAYOUT = { pgsize: [0, "u64"], size: [8, "u64"], data: [16, "u64"] } as const;
/** `struct vfio_iommu_type1_dirty_bitmap` (its `data[]` follows at DIRTY_BITMAP_MINSZ) */
export const DIRTY_BITMAP_LAYOUT = { argsz: [0, "u32"], flags: [4, "u32"] } as const;
/** `struct vfio_iommu_type1_dirty_bitmap_get` (its `bitmap` is a `struct vfio_bitmap` at 16) */
export const DIRTY_BITMAP_GET_LAYOUT = { iova: [0, "u64"], size: [8, "u64"] } as const;
/** Offset of `bitmap` in `struct vfio_iommu_type1_dirty_bitmap_get`. */
export const DIRTY_BITMAP_GET_BITMAP = 16;

/** `struct vfio_iommu_type1_dma_map` decoded. */
export interface DmaMapArgs {
  readonly argsz: number;
  readonly flags: number;
  readonly vaddr: bigint;
  readonly iova: bigint;
  readonly size: bigint;
}

export function decodeDmaMap(b: Uint8Array): DmaMapArgs {
  return readStruct(DMA_MAP_LAYOUT, b);
}

export function encodeDmaMap(a: DmaMapArgs): Uint8Array {
  const b = new Uint8Array(DMA_MAP_SIZE);
  writeStruct(DMA_MAP_LAYOUT, b, a);
  return b;
}

/** `struct vfio_iommu_type1_dma_unmap` decoded (without the trailing bitmap). */
export interface DmaUnmapArgs {
  readonly argsz: number;
  readonly flags: number;
  readonly iova: bigint;
  readonly size: bigint;
}

export function decodeDmaUnmap(b: Uint8Array): DmaUnmapArgs {
  return readStruct(DMA_UNMAP_LAYOUT, b);
}

/** `struct vfio_bitmap`: `data` is a user virtual address in the calling process. */
export interface VfioBitmap {
  readonly pgsize: bigint;
  readonly size: bigint;
  readonly data: bigint;
}

export function decodeBitmap(b: Uint8Array, at: number): VfioBitmap {
  return readStruct(BITMAP_LAYOUT, b, at);
}

/** Encode an unmap request, with the bitmap appended when given (argsz defaults to the bytes produced). */
export function encodeDmaUnmap(a: Partial<DmaUnmapArgs> & { bitmap?: VfioBitmap }): Uint8Array {
  const len = a.bitmap ? DMA_UNMAP_SIZE + BITMAP_SIZE : DMA_UNMAP_SIZE;
  const b = new Uint8Array(len);
  const { bitmap, ...fields } = a;
  writeStruct(DMA_UNMAP_LAYOUT, b, { argsz: len, flags: 0, iova: 0n, size: 0n, ...fields });
  if (bitmap) writeStruct(BITMAP_LAYOUT, b, bitmap, DMA_UNMAP_SIZE);
  return b;
}

/** Encode a DIRTY_PAGES request; GET_BITMAP carries `{ iova, size, bitmap }`. */
export function encodeDirtyPages(
  flags: number,
  get?: { iova: bigint; size: bigint; bitmap: VfioBitmap },
  argsz?: number,
): Uint8Array {
  const len = get ? DIRTY_BITMAP_MINSZ + DIRTY_BITMAP_GET_SIZE : DIRTY_BITMAP_MINSZ;
  const b = new Uint8Array(len);
  writeStruct(DIRTY_BITMAP_LAYOUT, b, { argsz: argsz ?? len, flags });
  if (get) {
    writeStruct(DIRTY_BITMAP_GET_LAYOUT, b, get, DIRTY_BITMAP_MINSZ);
    writeStruct(BITMAP_LAYOUT, b, get.bitmap, DIRTY_BITMAP_MINSZ + DIRTY_BITMAP_GET_BITMAP);
  }
  return b;
}

/** A GET_INFO buffer of `argsz` bytes (default 4096) whose argsz field says `argsz`, pre-filled with `fill`. */
export function infoBuffer(argsz = 4096, fill = 0, length = Math.max(argsz, INFO_SIZE)): Uint8Array {
  const b = new Uint8Array(length).fill(fill);
  view(b).setUint32(0, argsz >>> 0, true);
  return b;
}

/** Hex of bytes, as the conformance transcripts print `raw`. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

// The VFIO device cdev (/dev/vfio/devices/vfioN, CONFIG_VFIO_DEVICE_CDEV, Linux >= 6.6).
export const VFIO_DEVICE_BIND_IOMMUFD = vfioIo(18); // 0x3b76
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = vfioIo(19); // 0x3b77
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = vfioIo(20); // 0x3b78
/** `struct vfio_device_bind_iommufd { u32 argsz; u32 flags @4; s32 iommufd @8; u32 out_devid @12 }` */
export const DEVICE_BIND_IOMMUFD_SIZE = 16;
/** `struct vfio_device_attach_iommufd_pt { u32 argsz; u32 flags @4; u32 pt_id @8 }` (6.12: no pasid yet) */
export const DEVICE_ATTACH_IOMMUFD_PT_SIZE = 12;
/** `struct vfio_device_detach_iommufd_pt { u32 argsz; u32 flags @4 }` */
export const DEVICE_DETACH_IOMMUFD_PT_SIZE = 8;
