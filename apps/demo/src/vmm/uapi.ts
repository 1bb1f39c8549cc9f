/**
 * The VMM's own copy of the linux/vfio.h structures it uses (a userspace program carries its header),
 * encoded little-endian as on x86-64 and arm64 (reference §6.2, §6.3, §6.5).
 */

export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_MAP_FLAG_READ = 1;
export const VFIO_DMA_MAP_FLAG_WRITE = 2;
export const VFIO_IOMMU_INFO_PGSIZES = 1;
export const VFIO_IOMMU_INFO_CAPS = 2;
export const CAP_IOVA_RANGE = 1;
export const CAP_MIGRATION = 2;
export const CAP_DMA_AVAIL = 3;
/** The seed's per-range reserved capability (@vfio/type1's experimental id, outside upstream's space). */
export const CAP_SEED_RESV_IOVA_RANGE = 0x8001;

export interface DecodedInfo {
  readonly argsz: number;
  readonly flags: number;
  readonly iovaPgsizes: bigint;
  readonly capOffset: number;
  readonly valid: { start: bigint; end: bigint }[];
  readonly dmaAvail: number | null;
  /** Seed variant: reserved ranges, one capability each. */
  readonly seedReserved: { start: bigint; end: bigint }[];
  readonly caps: { id: number; offset: number }[];
}

export function encodeInfo(argsz = 4096): Uint8Array {
  const b = new Uint8Array(argsz);
  new DataView(b.buffer).setUint32(0, argsz, true);
  return b;
}

/** Walk GET_INFO's capability chain (offsets from the start of the info struct). */
export function decodeInfo(b: Uint8Array): DecodedInfo {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const flags = v.getUint32(4, true);
  const capOffset = b.length >= 20 ? v.getUint32(16, true) : 0;
  const valid: { start: bigint; end: bigint }[] = [];
  const seedReserved: { start: bigint; end: bigint }[] = [];
  const caps: { id: number; offset: number }[] = [];
  let dmaAvail: number | null = null;
  let off = flags & VFIO_IOMMU_INFO_CAPS ? capOffset : 0;
  for (let guard = 0; off !== 0 && off + 8 <= b.length && guard < 64; guard++) {
    const id = v.getUint16(off, true);
    caps.push({ id, offset: off });
    if (id === CAP_IOVA_RANGE) {
      const n = v.getUint32(off + 8, true);
      for (let i = 0; i < n; i++) {
        const at = off + 16 + 16 * i;
        valid.push({ start: v.getBigUint64(at, true), end: v.getBigUint64(at + 8, true) });
      }
    } else if (id === CAP_DMA_AVAIL) {
      dmaAvail = v.getUint32(off + 8, true);
    } else if (id === CAP_SEED_RESV_IOVA_RANGE && off + 24 <= b.length) {
      seedReserved.push({ start: v.getBigUint64(off + 8, true), end: v.getBigUint64(off + 16, true) });
    }
    off = v.getUint32(off + 4, true);
  }
  return {
    argsz: v.getUint32(0, true),
    flags,
    iovaPgsizes: v.getBigUint64(8, true),
    capOffset,
    valid,
    dmaAvail,
    seedReserved,
    caps,
  };
}

/** struct vfio_iommu_type1_dma_map (32 bytes). */
export function encodeMapDma(vaddr: bigint, iova: bigint, size: bigint, flags: number): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(0, 32, true);
  v.setUint32(4, flags, true);
  v.setBigUint64(8, vaddr, true);
  v.setBigUint64(16, iova, true);
  v.setBigUint64(24, size, true);
  return b;
}

/** struct vfio_iommu_type1_dma_unmap (24 bytes); returns the buffer (size is written back). */
export function encodeUnmapDma(iova: bigint, size: bigint, flags = 0): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setUint32(0, 24, true);
  v.setUint32(4, flags, true);
  v.setBigUint64(8, iova, true);
  v.setBigUint64(16, size, true);
  return b;
}

export function unmappedSize(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset).getBigUint64(16, true);
}
