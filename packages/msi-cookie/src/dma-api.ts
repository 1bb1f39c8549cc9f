/**
 * The streaming DMA API on a DMA cookie (`iommu_dma_map_page` / `iommu_dma_unmap_page`, i.e.
 * `__iommu_dma_map` / `__iommu_dma_unmap`, Linux 6.1): allocate an IOVA, map the buffer's
 * granules, hand back IOVA + in-granule offset; unmap and give the IOVA back, at once in strict
 * mode or through the flush queue on DMA-FQ domains.
 */
import type { Device, Iommu, IommuDomain } from "@iommu/core";
import {
  ErrnoError,
  emptyGather,
  IOMMU_CACHE,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  iommuUnmapFast,
  U64_MAX,
} from "@iommu/core";
import { allocIova, freeIova } from "./alloc-iova.js";
import { cookieOf, DmaCookie } from "./cookie.js";
import { deviceDma } from "./device-dma.js";
import { hex } from "./u64.js";

/** `DMA_MAPPING_ERROR` (~0): what a failed map returns; test with `dmaMappingError`. */
export const DMA_MAPPING_ERROR = U64_MAX;

/** `enum dma_data_direction`. */
export type DmaDirection = "bidirectional" | "to-device" | "from-device" | "none";

export interface DmaMapOptions {
  /** The master snoops CPU caches (`dev_is_dma_coherent`). */
  readonly coherent?: boolean;
  /** DMA_ATTR_PRIVILEGED. */
  readonly privileged?: boolean;
  /** The CPU the call runs on (range caches and flush queues are per CPU). */
  readonly cpu?: number;
}

/** `dma_mapping_error`. */
export function dmaMappingError(addr: bigint): boolean {
  return addr === DMA_MAPPING_ERROR;
}

/** `dma_info_to_prot`: direction and attributes to IOMMU prot bits. */
export function dmaInfoToProt(dir: DmaDirection, coherent: boolean, privileged: boolean): number {
  let prot = coherent ? IOMMU_CACHE : 0;
  if (privileged) prot |= IOMMU_PRIV;
  switch (dir) {
    case "bidirectional":
      return prot | IOMMU_READ | IOMMU_WRITE;
    case "to-device":
      return prot | IOMMU_READ;
    case "from-device":
      return prot | IOMMU_WRITE;
    default:
      return 0;
  }
}

/** `iommu_get_dma_domain(dev)` with its initialised DMA cookie; ENODEV when the device is not on dma-iommu. */
function dmaDomain(iommu: Iommu, dev: Device, op: string): { domain: IommuDomain; cookie: DmaCookie } {
  const domain = iommu.groupOf(dev)?.defaultDomain ?? null;
  const cookie = domain ? cookieOf(domain) : null;
  if (!domain || !(cookie instanceof DmaCookie) || !cookie.iovad || !deviceDma(dev).iommuDmaOps) {
    throw new ErrnoError("ENODEV", op, "device does not use dma-iommu (run setupDmaOps first)", { dev: dev.name });
  }
  return { domain, cookie };
}

/**
 * `dma_map_single` through dma-iommu: map `size` bytes at `phys` for `dev`. Returns the DMA
 * address (IOVA + offset of `phys` in its granule) or DMA_MAPPING_ERROR, leaving nothing behind.
 */
export function dmaMap(
  iommu: Iommu,
  dev: Device,
  phys: bigint,
  size: bigint,
  dir: DmaDirection,
  opts: DmaMapOptions = {},
): bigint {
  const { domain, cookie } = dmaDomain(iommu, dev, "iommu_dma_map_page");
  const cpu = opts.cpu ?? 0;
  const granule = cookie.granule;
  const off = phys & (granule - 1n);
  const len = alignUp(size + off, granule);
  const iova = allocIova(domain, cookie, len, deviceDma(dev).dmaMask, dev, cpu);
  if (iova === 0n) return DMA_MAPPING_ERROR;
  try {
    iommu.map(domain, iova, phys - off, len, dmaInfoToProt(dir, opts.coherent ?? false, opts.privileged ?? false));
  } catch (e) {
    // iommu_map's errno is DMA_MAPPING_ERROR for the caller; anything else is a model bug.
    if (!(e instanceof ErrnoError)) throw e;
    // The IOVA was never visible to hardware: straight back, never through the flush queue.
    freeIova(cookie, iova, len, false, cpu);
    return DMA_MAPPING_ERROR;
  }
  return iova + off;
}

/**
 * `dma_unmap_single` through dma-iommu. Strict domains unmap and invalidate the IOTLB now and free
 * the IOVA; DMA-FQ domains unmap without invalidating and queue the IOVA until a flush completes.
 * Returns the bytes the IOMMU unmapped (Linux WARNs when that is not the whole buffer; recorded in
 * the cookie's warnings).
 */
export function dmaUnmap(
  iommu: Iommu,
  dev: Device,
  dmaAddr: bigint,
  size: bigint,
  _dir: DmaDirection,
  opts: Pick<DmaMapOptions, "cpu"> = {},
): bigint {
  const { domain, cookie } = dmaDomain(iommu, dev, "iommu_dma_unmap_page");
  const cpu = opts.cpu ?? 0;
  const granule = cookie.granule;
  const off = dmaAddr & (granule - 1n);
  const iova = dmaAddr - off;
  const len = alignUp(size + off, granule);
  // An address dmaMap never handed out would go into the range caches (or the flush queue) and be handed
  // out twice (Linux corrupts its allocator here): refuse it before anything changes, as the allocator does.
  const iovad = cookie.iovad!;
  const pfn = Number(iova / BigInt(iovad.granule));
  if (iovad.find(pfn)?.pfnLo !== pfn) {
    throw new RangeError(`iommu_dma_unmap_page: ${hex(dmaAddr)} is not the start of an IOVA range dmaMap handed out`);
  }
  const queued = cookie.fq !== null;
  const unmapped = queued ? iommuUnmapFast(domain, iova, len, emptyGather()) : iommu.unmap(domain, iova, len);
  freeIova(cookie, iova, len, queued, cpu);
  if (unmapped !== len) {
    cookie.warnings.push({
      what: "WARN_ON(unmapped != size)",
      detail: { iova: hex(iova), size: hex(len), unmapped: hex(unmapped) },
    });
  }
  return unmapped;
}

/**
 * The flush queue's 10 ms timer firing (`fq_flush_timeout`) on `cpu`: one IOTLB flush, then every
 * entry queued before it is recycled. No-op on strict domains.
 */
export function flushQueueTimeout(domain: IommuDomain, cpu = 0): void {
  const cookie = cookieOf(domain);
  if (cookie instanceof DmaCookie && cookie.fq) cookie.fq.timeout(cpu);
}

function alignUp(v: bigint, granule: bigint): bigint {
  return (v + granule - 1n) & ~(granule - 1n);
}
