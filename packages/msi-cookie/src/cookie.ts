/**
 * The two cookies dma-iommu hangs on a domain (reference §3.1, Linux 6.1 `iommu_dma_cookie`):
 * an MSI-only cookie (a bump pointer in the software MSI window, for UNMANAGED domains such as
 * VFIO's) and a DMA ("IOVA") cookie (a full IOVA allocator, for DMA/DMA-FQ default domains).
 * Both keep the list of doorbell pages mapped into their domain.
 */

import type { IommuDomain, IovaCookie } from "@iommu/core";
import { ErrnoError, FRAME_SIZE, U64_MAX } from "@iommu/core";
import type { IovaDomain } from "@iova/allocator";
import type { FlushQueue } from "./flush-queue.js";
import { hex } from "./u64.js";

/** `struct iommu_dma_msi_page`: one doorbell page and the IOVA it is mapped at in a domain. */
export interface MsiPage {
  readonly iova: bigint;
  readonly phys: bigint;
  /** The cookie's MSI granule: the in-page offset mask used by compose. */
  readonly granule: bigint;
}

/** Options of the MSI-only cookie; Linux has none (it never checks the window). */
export interface MsiCookieOptions {
  /**
   * Strict mode: the window length (bytes) from `base`. A doorbell that would not fit is refused
   * with ENOSPC instead of being mapped past the window as Linux does (reference §3.3 "No bound check").
   */
  readonly windowLength?: bigint;
}

/** IOMMU_DMA_MSI_COOKIE: a linear page allocator from `base`. */
export class MsiCookie implements IovaCookie {
  readonly kind = "msi" as const;
  /** `msi_iova`: the next IOVA the bump pointer hands out. */
  msiIova: bigint;
  /** `msi_page_list`, oldest first. */
  readonly msiPages: MsiPage[] = [];
  /** For an MSI cookie the granule is the CPU page size (`cookie_msi_granule`). */
  readonly granule = BigInt(FRAME_SIZE);

  constructor(
    readonly base: bigint,
    readonly windowLength: bigint | null,
  ) {
    this.msiIova = base;
  }
}

/** Warnings Linux would print (WARN_ON / dev_notice); collected so tests can see them. */
export type CookieWarning = { readonly what: string; readonly detail: Readonly<Record<string, unknown>> };

/**
 * How PCI devices get "SAC" (32-bit) IOVAs first (reference §3.2): "always" is Linux 6.1 (every
 * allocation tries below 4 GiB first), "latch" is ≥6.4 (`pci_32bit_workaround`, dropped for good
 * after the first 32-bit failure), "forcedac" is the `iommu.forcedac=1` command line.
 */
export type SacPolicy = "always" | "latch" | "forcedac";

/** IOMMU_DMA_IOVA_COOKIE: the IOVA allocator of a DMA-API domain, set up by `iommuDmaInitDomain`. */
export class DmaCookie implements IovaCookie {
  readonly kind = "dma" as const;
  /** `iovad`; null until `iommu_dma_init_domain` ran (Linux: `start_pfn == 0`). */
  iovad: IovaDomain | null = null;
  /** `fq_domain` set: the domain runs in flush-queue (lazy) mode. */
  fq: FlushQueue | null = null;
  readonly msiPages: MsiPage[] = [];
  readonly warnings: CookieWarning[] = [];
  sac: SacPolicy = "always";

  /** `cookie_msi_granule`: the allocator granule (0 before init, as in Linux). */
  get granule(): bigint {
    return this.iovad ? BigInt(this.iovad.granule) : 0n;
  }
}

export type DmaIommuCookie = MsiCookie | DmaCookie;

/** The domain's cookie if it is one of ours. */
export function cookieOf(domain: IommuDomain): DmaIommuCookie | null {
  const c = domain.iovaCookie;
  return c instanceof MsiCookie || c instanceof DmaCookie ? c : null;
}

/**
 * `iommu_get_msi_cookie(domain, base)`: give an UNMANAGED domain an MSI-only cookie whose bump
 * pointer starts at `base`. Throws EINVAL for other domain types, EEXIST if it has a cookie.
 */
export function getMsiCookie(domain: IommuDomain, base: bigint, opts: MsiCookieOptions = {}): void {
  if (domain.type !== "unmanaged") {
    throw new ErrnoError("EINVAL", "iommu_get_msi_cookie", "MSI cookies are for unmanaged domains only", {
      type: domain.type,
    });
  }
  if (domain.iovaCookie) {
    throw new ErrnoError("EEXIST", "iommu_get_msi_cookie", "domain already has a cookie", {
      kind: domain.iovaCookie.kind,
    });
  }
  if (base < 0n || base > U64_MAX) {
    throw new ErrnoError("EINVAL", "iommu_get_msi_cookie", "base is not a u64", { base: hex(base) });
  }
  const len = opts.windowLength;
  if (len !== undefined && len <= 0n) {
    throw new ErrnoError("EINVAL", "iommu_get_msi_cookie", "strict window length must be > 0", {
      windowLength: hex(len),
    });
  }
  domain.iovaCookie = new MsiCookie(base, len ?? null);
}

/** `iommu_get_dma_cookie(domain)`: an empty IOVA cookie (EEXIST if the domain has a cookie). */
export function getDmaCookie(domain: IommuDomain): void {
  if (domain.iovaCookie) {
    throw new ErrnoError("EEXIST", "iommu_get_dma_cookie", "domain already has a cookie", {
      kind: domain.iovaCookie.kind,
    });
  }
  domain.iovaCookie = new DmaCookie();
}

/**
 * `iommu_put_dma_cookie(domain)`: drop the cookie, its doorbell list and flush queue (the owner is
 * freeing the domain, so mappings go with the page tables). No-op without a cookie.
 */
export function putDmaCookie(domain: IommuDomain): void {
  const c = cookieOf(domain);
  if (c instanceof DmaCookie) c.fq?.destroy();
  if (c) c.msiPages.length = 0;
  domain.iovaCookie = null;
}
