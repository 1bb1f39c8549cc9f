/**
 * `iommu_dma_prepare_msi` / `iommu_dma_get_msi_page` (Linux 6.1, reference §3.3): map a doorbell
 * page into the device's current domain once, and reuse it for every vector and device of that
 * domain that targets the same doorbell page.
 */
import type { Device, Iommu, IommuDomain } from "@iommu/core";
import { ErrnoError, IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_WRITE } from "@iommu/core";
import { allocIova, freeIova } from "./alloc-iova.js";
import { cookieOf, type DmaIommuCookie, MsiCookie, type MsiPage } from "./cookie.js";
import { dmaGetMask } from "./device-dma.js";
import { hex } from "./u64.js";

/** Doorbells are mapped write-only, never executable, as device memory. */
export const MSI_DOORBELL_PROT = IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO;

/**
 * Prepare `dev`'s MSI targeting `doorbellPhys`. Returns the doorbell page mapping, or null when the
 * device's current domain has no cookie (the message stays untouched). Throws ENOMEM when the
 * IOVA cannot be allocated or mapped, leaving nothing allocated; ENOSPC in strict-window mode.
 */
export function prepareMsi(iommu: Iommu, dev: Device, doorbellPhys: bigint): MsiPage | null {
  const domain = iommu.groupOf(dev)?.domain ?? null;
  if (!domain?.iovaCookie) return null;
  const cookie = cookieOf(domain);
  if (!cookie) {
    throw new ErrnoError("EINVAL", "iommu_dma_prepare_msi", "domain cookie is not a dma-iommu cookie", {
      kind: domain.iovaCookie.kind,
    });
  }
  return getMsiPage(iommu, dev, doorbellPhys, domain, cookie);
}

/** The doorbell pages a domain's cookie holds (hardware MSI identity pages included). */
export function msiPagesOf(domain: IommuDomain): readonly MsiPage[] {
  return cookieOf(domain)?.msiPages ?? [];
}

function getMsiPage(iommu: Iommu, dev: Device, msiAddr: bigint, domain: IommuDomain, cookie: DmaIommuCookie): MsiPage {
  const op = "iommu_dma_prepare_msi";
  const size = cookie.granule;
  if (size === 0n) {
    throw new ErrnoError("ENOMEM", op, "DMA cookie is not initialised", { doorbell: hex(msiAddr) });
  }
  const phys = msiAddr & ~(size - 1n);
  const found = cookie.msiPages.find((p) => p.phys === phys);
  if (found) return found;

  if (cookie instanceof MsiCookie && cookie.windowLength !== null) {
    // Strict mode only: Linux maps past the advertised window without noticing.
    if (cookie.msiIova - cookie.base + size > cookie.windowLength) {
      throw new ErrnoError("ENOSPC", op, "software MSI window exhausted", {
        base: hex(cookie.base),
        windowLength: hex(cookie.windowLength),
        next: hex(cookie.msiIova),
        doorbell: hex(phys),
      });
    }
  }

  const iova = allocIova(domain, cookie, size, dmaGetMask(dev), dev);
  if (iova === 0n) {
    // As Linux: a bump pointer that handed out IOVA 0 has still moved (only reachable with base 0).
    throw new ErrnoError("ENOMEM", op, "no IOVA for the doorbell page", { doorbell: hex(phys), size: hex(size) });
  }
  try {
    iommu.map(domain, iova, phys, size, MSI_DOORBELL_PROT);
  } catch (e) {
    // iommu_map's errno becomes prepare_msi's -ENOMEM, as in Linux; anything else is a model bug.
    if (!(e instanceof ErrnoError)) throw e;
    freeIova(cookie, iova, size, false);
    throw new ErrnoError(
      "ENOMEM",
      op,
      "mapping the doorbell page failed",
      { iova: hex(iova), doorbell: hex(phys), size: hex(size) },
      { cause: e },
    );
  }
  const page: MsiPage = { iova, phys, granule: size };
  cookie.msiPages.push(page);
  return page;
}
