/**
 * The layouts against the kernel header: every size and offset below is what gcc's `sizeof`/`offsetof` gave
 * on x86-64 for `include/uapi/linux/vfio.h` of Linux 6.12 (shared/conformance/recorder/probe/uapi, the header
 * the probe is built with; arm64 is also LP64 with u64 8-aligned, so the same). The constants and the codecs
 * must agree with them: a codec is checked by writing distinct values and reading them back at the offsets.
 */
import { describe, expect, it } from "vitest";
import * as U from "./index.js";

/** gcc 6.12 header: the request numbers (`_IO(VFIO_TYPE, VFIO_BASE + n)`). */
const REQUESTS = {
  VFIO_GET_API_VERSION: 0x3b64,
  VFIO_CHECK_EXTENSION: 0x3b65,
  VFIO_SET_IOMMU: 0x3b66,
  VFIO_GROUP_GET_STATUS: 0x3b67,
  VFIO_GROUP_SET_CONTAINER: 0x3b68,
  VFIO_GROUP_UNSET_CONTAINER: 0x3b69,
  VFIO_GROUP_GET_DEVICE_FD: 0x3b6a,
  VFIO_DEVICE_GET_INFO: 0x3b6b,
  VFIO_DEVICE_GET_REGION_INFO: 0x3b6c,
  VFIO_DEVICE_GET_IRQ_INFO: 0x3b6d,
  VFIO_DEVICE_SET_IRQS: 0x3b6e,
  VFIO_DEVICE_RESET: 0x3b6f,
  VFIO_IOMMU_GET_INFO: 0x3b70,
  VFIO_IOMMU_MAP_DMA: 0x3b71,
  VFIO_IOMMU_UNMAP_DMA: 0x3b72,
  VFIO_IOMMU_DIRTY_PAGES: 0x3b75,
} as const;

/** gcc 6.12 header: `[offsetof, sizeof]` of every field a layout in vfio.ts names. */
const FIELDS = {
  vfio_info_cap_header: { id: [0, 2], version: [2, 2], next: [4, 4] },
  vfio_group_status: { argsz: [0, 4], flags: [4, 4] },
  vfio_device_info: { argsz: [0, 4], flags: [4, 4], num_regions: [8, 4], num_irqs: [12, 4], cap_offset: [16, 4] },
  vfio_region_info: {
    argsz: [0, 4],
    flags: [4, 4],
    index: [8, 4],
    cap_offset: [12, 4],
    size: [16, 8],
    offset: [24, 8],
  },
  vfio_irq_info: { argsz: [0, 4], flags: [4, 4], index: [8, 4], count: [12, 4] },
  vfio_irq_set: { argsz: [0, 4], flags: [4, 4], index: [8, 4], start: [12, 4], count: [16, 4] },
  vfio_iommu_type1_info: { argsz: [0, 4], flags: [4, 4], iova_pgsizes: [8, 8], cap_offset: [16, 4] },
  vfio_iova_range: { start: [0, 8], end: [8, 8] },
  vfio_iommu_type1_info_cap_iova_range: { nr_iovas: [8, 4], reserved: [12, 4] },
  vfio_iommu_type1_info_cap_migration: { flags: [8, 4], pgsize_bitmap: [16, 8], max_dirty_bitmap_size: [24, 8] },
  vfio_iommu_type1_info_dma_avail: { avail: [8, 4] },
  vfio_iommu_type1_dma_map: { argsz: [0, 4], flags: [4, 4], vaddr: [8, 8], iova: [16, 8], size: [24, 8] },
  vfio_iommu_type1_dma_unmap: { argsz: [0, 4], flags: [4, 4], iova: [8, 8], size: [16, 8] },
  vfio_bitmap: { pgsize: [0, 8], size: [8, 8], data: [16, 8] },
  vfio_iommu_type1_dirty_bitmap: { argsz: [0, 4], flags: [4, 4] },
  vfio_iommu_type1_dirty_bitmap_get: { iova: [0, 8], size: [8, 8], bitmap: [16, 24] },
} as const;

/** A layout's fields as the header names them (`numRegions` → `num_regions`) with `[offset, bytes]`. */
function asHeader(layout: U.Layout): Record<string, [number, number]> {
  const bytes = { u16: 2, u32: 4, u64: 8 } as const;
  return Object.fromEntries(
    Object.entries(layout).map(([name, [off, kind]]) => [
      name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
      [off, bytes[kind]],
    ]),
  );
}

/** Offsets only, from FIELDS. */
function offsets<T extends Record<string, readonly [number, number]>>(t: T): { [K in keyof T]: number } {
  return Object.fromEntries(Object.entries(t).map(([k, [o]]) => [k, o])) as { [K in keyof T]: number };
}

/** gcc 6.12 header: `sizeof` of each struct, its fields' offsets, and where a flexible `data[]` starts. */
const F = FIELDS;
const HEADER = {
  vfio_info_cap_header: { sizeof: 8, ...offsets(F.vfio_info_cap_header) },
  vfio_group_status: { sizeof: 8, ...offsets(F.vfio_group_status) },
  vfio_device_info: { sizeof: 24, ...offsets(F.vfio_device_info) },
  vfio_region_info: { sizeof: 32, ...offsets(F.vfio_region_info) },
  vfio_irq_info: { sizeof: 16, ...offsets(F.vfio_irq_info) },
  vfio_irq_set: { sizeof: 20, ...offsets(F.vfio_irq_set), data: 20 },
  vfio_iommu_type1_info: { sizeof: 24, ...offsets(F.vfio_iommu_type1_info) },
  vfio_iova_range: { sizeof: 16, ...offsets(F.vfio_iova_range) },
  vfio_iommu_type1_info_cap_iova_range: {
    sizeof: 16,
    ...offsets(F.vfio_iommu_type1_info_cap_iova_range),
    iova_ranges: 16,
  },
  vfio_iommu_type1_info_cap_migration: { sizeof: 32, ...offsets(F.vfio_iommu_type1_info_cap_migration) },
  vfio_iommu_type1_info_dma_avail: { sizeof: 12, ...offsets(F.vfio_iommu_type1_info_dma_avail) },
  vfio_iommu_type1_dma_map: { sizeof: 32, ...offsets(F.vfio_iommu_type1_dma_map) },
  vfio_bitmap: { sizeof: 24, ...offsets(F.vfio_bitmap) },
  vfio_iommu_type1_dma_unmap: { sizeof: 24, ...offsets(F.vfio_iommu_type1_dma_unmap), data: 24 },
  vfio_iommu_type1_dirty_bitmap: { sizeof: 8, ...offsets(F.vfio_iommu_type1_dirty_bitmap), data: 8 },
  vfio_iommu_type1_dirty_bitmap_get: { sizeof: 40, ...offsets(F.vfio_iommu_type1_dirty_bitmap_get) },
};

describe("linux/vfio.h layouts", () => {
  it("request numbers are the header's", () => {
    expect({
      VFIO_GET_API_VERSION: U.VFIO_GET_API_VERSION,
      VFIO_CHECK_EXTENSION: U.VFIO_CHECK_EXTENSION,
      VFIO_SET_IOMMU: U.VFIO_SET_IOMMU,
      VFIO_GROUP_GET_STATUS: U.VFIO_GROUP_GET_STATUS,
      VFIO_GROUP_SET_CONTAINER: U.VFIO_GROUP_SET_CONTAINER,
      VFIO_GROUP_UNSET_CONTAINER: U.VFIO_GROUP_UNSET_CONTAINER,
      VFIO_GROUP_GET_DEVICE_FD: U.VFIO_GROUP_GET_DEVICE_FD,
      VFIO_DEVICE_GET_INFO: U.VFIO_DEVICE_GET_INFO,
      VFIO_DEVICE_GET_REGION_INFO: U.VFIO_DEVICE_GET_REGION_INFO,
      VFIO_DEVICE_GET_IRQ_INFO: U.VFIO_DEVICE_GET_IRQ_INFO,
      VFIO_DEVICE_SET_IRQS: U.VFIO_DEVICE_SET_IRQS,
      VFIO_DEVICE_RESET: U.VFIO_DEVICE_RESET,
      VFIO_IOMMU_GET_INFO: U.VFIO_IOMMU_GET_INFO,
      VFIO_IOMMU_MAP_DMA: U.VFIO_IOMMU_MAP_DMA,
      VFIO_IOMMU_UNMAP_DMA: U.VFIO_IOMMU_UNMAP_DMA,
      VFIO_IOMMU_DIRTY_PAGES: U.VFIO_IOMMU_DIRTY_PAGES,
    }).toEqual(REQUESTS);
  });

  it("every field of every layout sits at the header's offset with the header's width", () => {
    const pick = (h: Record<string, readonly [number, number]>, ...names: string[]) =>
      Object.fromEntries(names.map((n) => [n, [...h[n]!]]));
    expect(asHeader(U.CAP_HEADER_LAYOUT)).toEqual(pick(FIELDS.vfio_info_cap_header, "id", "version", "next"));
    const whole: [U.Layout, Record<string, readonly [number, number]>][] = [
      [U.GROUP_STATUS_LAYOUT, FIELDS.vfio_group_status],
      [U.DEVICE_INFO_LAYOUT, FIELDS.vfio_device_info],
      [U.REGION_INFO_LAYOUT, FIELDS.vfio_region_info],
      [U.IRQ_INFO_LAYOUT, FIELDS.vfio_irq_info],
      [U.IRQ_SET_LAYOUT, FIELDS.vfio_irq_set],
      [U.INFO_LAYOUT, FIELDS.vfio_iommu_type1_info],
      [U.IOVA_RANGE_LAYOUT, FIELDS.vfio_iova_range],
      [U.CAP_IOVA_RANGE_LAYOUT, FIELDS.vfio_iommu_type1_info_cap_iova_range],
      [U.CAP_MIGRATION_LAYOUT, FIELDS.vfio_iommu_type1_info_cap_migration],
      [U.CAP_DMA_AVAIL_LAYOUT, FIELDS.vfio_iommu_type1_info_dma_avail],
      [U.DMA_MAP_LAYOUT, FIELDS.vfio_iommu_type1_dma_map],
      [U.DMA_UNMAP_LAYOUT, FIELDS.vfio_iommu_type1_dma_unmap],
      [U.BITMAP_LAYOUT, FIELDS.vfio_bitmap],
      [U.DIRTY_BITMAP_LAYOUT, FIELDS.vfio_iommu_type1_dirty_bitmap],
    ];
    for (const [layout, header] of whole) expect(asHeader(layout)).toEqual(pick(header, ...Object.keys(header)));
    const get = FIELDS.vfio_iommu_type1_dirty_bitmap_get;
    expect(asHeader(U.DIRTY_BITMAP_GET_LAYOUT)).toEqual(pick(get, "iova", "size"));
    expect([U.DIRTY_BITMAP_GET_BITMAP, U.BITMAP_SIZE]).toEqual([...get.bitmap]);
  });

  it("sizes and offsetofend constants are the header's", () => {
    const H = HEADER;
    const header = {
      CAP_HEADER_SIZE: H.vfio_info_cap_header.sizeof,
      GROUP_STATUS_SIZE: H.vfio_group_status.sizeof,
      DEVICE_INFO_SIZE: H.vfio_device_info.sizeof,
      REGION_INFO_SIZE: H.vfio_region_info.sizeof,
      IRQ_INFO_SIZE: H.vfio_irq_info.sizeof,
      IRQ_SET_SIZE: H.vfio_irq_set.sizeof,
      INFO_SIZE: H.vfio_iommu_type1_info.sizeof,
      INFO_MINSZ: H.vfio_iommu_type1_info.iova_pgsizes + 8, // offsetofend(iova_pgsizes)
      INFO_CAPSZ: H.vfio_iommu_type1_info.cap_offset + 4, // offsetofend(cap_offset)
      IOVA_RANGE_SIZE: H.vfio_iova_range.sizeof,
      CAP_IOVA_RANGE_BASE: H.vfio_iommu_type1_info_cap_iova_range.iova_ranges,
      CAP_MIGRATION_SIZE: H.vfio_iommu_type1_info_cap_migration.sizeof,
      CAP_DMA_AVAIL_SIZE: H.vfio_iommu_type1_info_dma_avail.sizeof,
      DMA_MAP_SIZE: H.vfio_iommu_type1_dma_map.sizeof,
      DMA_UNMAP_SIZE: H.vfio_iommu_type1_dma_unmap.data, // also its sizeof: data[] is a flexible array
      BITMAP_SIZE: H.vfio_bitmap.sizeof,
      DIRTY_BITMAP_MINSZ: H.vfio_iommu_type1_dirty_bitmap.data,
      DIRTY_BITMAP_GET_SIZE: H.vfio_iommu_type1_dirty_bitmap_get.sizeof,
    };
    const exported: Record<string, unknown> = { ...U };
    const ours = Object.fromEntries(Object.keys(header).map((k) => [k, exported[k]]));
    expect(ours).toEqual(header);
    expect(H.vfio_iommu_type1_dma_unmap.sizeof).toBe(H.vfio_iommu_type1_dma_unmap.data);
  });

  it("encodeDmaMap/decodeDmaMap put each field at its offset", () => {
    const f = HEADER.vfio_iommu_type1_dma_map;
    const a = {
      argsz: 0x11223344,
      flags: 0x55667788,
      vaddr: 0x0102030405060708n,
      iova: 0x1112131415161718n,
      size: 0x2122232425262728n,
    };
    const b = U.encodeDmaMap(a);
    const v = U.view(b);
    expect(b.length).toBe(f.sizeof);
    expect([v.getUint32(0, true), v.getUint32(f.flags, true)]).toEqual([a.argsz, a.flags]);
    expect([v.getBigUint64(f.vaddr, true), v.getBigUint64(f.iova, true), v.getBigUint64(f.size, true)]).toEqual([
      a.vaddr,
      a.iova,
      a.size,
    ]);
    expect(U.decodeDmaMap(b)).toEqual(a);
  });

  it("encodeDmaUnmap/decodeDmaUnmap/decodeBitmap put each field at its offset, the bitmap at data[]", () => {
    const f = HEADER.vfio_iommu_type1_dma_unmap;
    const bm = HEADER.vfio_bitmap;
    const bitmap = { pgsize: 0x1000n, size: 0x3132333435363738n, data: 0x4142434445464748n };
    const b = U.encodeDmaUnmap({ flags: 1, iova: 0x5152535455565758n, size: 0x6162636465666768n, bitmap });
    const v = U.view(b);
    expect(b.length).toBe(f.sizeof + bm.sizeof);
    expect([v.getUint32(0, true), v.getUint32(f.flags, true)]).toEqual([f.sizeof + bm.sizeof, 1]);
    expect([v.getBigUint64(f.iova, true), v.getBigUint64(f.size, true)]).toEqual([
      0x5152535455565758n,
      0x6162636465666768n,
    ]);
    expect([bm.pgsize, bm.size, bm.data].map((o) => v.getBigUint64(f.data + o, true))).toEqual([
      bitmap.pgsize,
      bitmap.size,
      bitmap.data,
    ]);
    expect(U.decodeDmaUnmap(b)).toEqual({ argsz: 48, flags: 1, iova: 0x5152535455565758n, size: 0x6162636465666768n });
    expect(U.decodeBitmap(b, f.data)).toEqual(bitmap);
  });

  it("encodeDirtyPages places GET_BITMAP's {iova, size, bitmap} at data[]", () => {
    const d = HEADER.vfio_iommu_type1_dirty_bitmap;
    const g = HEADER.vfio_iommu_type1_dirty_bitmap_get;
    const bitmap = { pgsize: 0x1000n, size: 8n, data: 0x7000n };
    const b = U.encodeDirtyPages(U.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, { iova: 0x9000n, size: 0xa000n, bitmap });
    const v = U.view(b);
    expect(b.length).toBe(d.sizeof + g.sizeof);
    expect([v.getUint32(0, true), v.getUint32(d.flags, true)]).toEqual([d.sizeof + g.sizeof, 4]);
    expect([v.getBigUint64(d.data + g.iova, true), v.getBigUint64(d.data + g.size, true)]).toEqual([0x9000n, 0xa000n]);
    expect(U.decodeBitmap(b, d.data + g.bitmap)).toEqual(bitmap);
  });

  it("infoBuffer writes argsz at 0 and keeps at least sizeof(info) bytes", () => {
    const b = U.infoBuffer(16, 0xaa);
    expect(b.length).toBe(HEADER.vfio_iommu_type1_info.sizeof);
    expect(U.view(b).getUint32(0, true)).toBe(16);
    expect(b[HEADER.vfio_iommu_type1_info.cap_offset]).toBe(0xaa);
  });

  it("DIRTY_BITMAP_SIZE_MAX is INT_MAX bits in u64 words: 256 MiB", () => {
    expect(U.DIRTY_BITMAP_SIZE_MAX).toBe(256n << 20n);
    expect(U.dirtyBitmapBytes(1n)).toBe(8n);
    expect(U.dirtyBitmapBytes(65n)).toBe(16n);
  });
});
