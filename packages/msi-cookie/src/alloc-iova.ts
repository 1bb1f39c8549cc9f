/**
 * `iommu_dma_alloc_iova` / `iommu_dma_free_iova` (Linux 6.1, reference §3.2): the MSI cookie bumps
 * its pointer; the DMA cookie asks the range caches, rounding small sizes to a power of two, with
 * the limit clipped to the device's bus limit and the aperture, PCI devices trying below 4 GiB first.
 */
import type { Device, IommuDomain } from "@iommu/core";
import { ffs64, u64 } from "@iommu/core";
import type { Pfn, PfnCount } from "@iova/allocator";
import { type DmaIommuCookie, MsiCookie, type SacPolicy } from "./cookie.js";
import { deviceDma } from "./device-dma.js";
import { DMA_BIT_MASK_32, pfnOf, roundupPowOfTwo } from "./u64.js";

/** IOVA_RANGE_CACHE_MAX_SIZE: sizes below 2^(6-1) granules are rounded to a power of two. */
const RCACHE_ROUND_BELOW = 1 << (6 - 1);

/**
 * Allocate `size` bytes (a granule multiple) of IOVA for `dev` in `domain`, below `dmaLimit`
 * (inclusive). Returns the IOVA, or 0n on failure (Linux's convention; IOVA 0 is never handed out).
 */
export function allocIova(
  domain: IommuDomain,
  cookie: DmaIommuCookie,
  size: bigint,
  dmaLimit: bigint,
  dev: Device,
  cpu = 0,
): bigint {
  if (cookie instanceof MsiCookie) {
    // No bound check against the window, as Linux (reference §3.3); u64 wrap as dma_addr_t.
    const iova = cookie.msiIova;
    cookie.msiIova = u64(iova + size);
    return iova;
  }
  const iovad = cookie.iovad;
  if (!iovad) return 0n;
  const shift = ffs64(BigInt(iovad.granule));
  let len = Number(size >> BigInt(shift));
  // Non-power-of-two sizes would poison the rcache bins on free (the order still matches then).
  if (len < RCACHE_ROUND_BELOW) len = roundupPowOfTwo(len);

  const state = deviceDma(dev);
  let limit = dmaLimit;
  if (state.busDmaLimit !== 0n && (limit === 0n || state.busDmaLimit < limit)) limit = state.busDmaLimit;
  if (domain.geometry.forceAperture && domain.geometry.apertureEnd < limit) limit = domain.geometry.apertureEnd;

  let pfn: Pfn = 0;
  if (limit > DMA_BIT_MASK_32 && dev.bus === "pci" && sacAllowed(cookie.sac, state.pci32bitWorkaround)) {
    pfn = iovad.allocFast(len, pfnOf(DMA_BIT_MASK_32, shift), false, cpu);
    if (pfn === 0 && cookie.sac === "latch") {
      state.pci32bitWorkaround = false;
      cookie.warnings.push({ what: "Using %d-bit DMA addresses", detail: { bits: limit.toString(2).length } });
    }
  }
  if (pfn === 0) pfn = iovad.allocFast(len, pfnOf(limit, shift), true, cpu);
  return BigInt(pfn) << BigInt(shift);
}

function sacAllowed(policy: SacPolicy, latch: boolean): boolean {
  if (policy === "forcedac") return false;
  if (policy === "latch") return latch;
  return true;
}

/**
 * Give back an IOVA range: the MSI cookie only ever undoes its latest allocation; a DMA cookie in
 * flush-queue mode queues it (`queued`), otherwise it goes straight to the range caches.
 */
export function freeIova(cookie: DmaIommuCookie, iova: bigint, size: bigint, queued: boolean, cpu = 0): void {
  if (cookie instanceof MsiCookie) {
    cookie.msiIova = u64(cookie.msiIova - size);
    return;
  }
  const iovad = cookie.iovad;
  if (!iovad) return;
  const shift = ffs64(BigInt(iovad.granule));
  const pfn = pfnOf(iova, shift);
  const pages: PfnCount = Number(size >> BigInt(shift));
  if (queued && cookie.fq) cookie.fq.queue(pfn, pages, cpu);
  else iovad.freeFast(pfn, pages, cpu);
}
