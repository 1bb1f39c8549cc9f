/**
 * `iommu_dma_init_domain` and `iommu_setup_dma_ops` (Linux 6.1, reference §3.2): size the DMA
 * cookie's IOVA allocator from the domain (granule = smallest page, start pfn from the aperture,
 * never pfn 0), reserve the host bridge's windows and the device's reserved regions (except
 * sw-msi: we are the software that manages it), pre-populate hardware MSI doorbells 1:1, and
 * turn on the flush queue for DMA-FQ domains.
 */
import type { Device, Iommu, IommuDomain } from "@iommu/core";
import { ErrnoError, ffs64, isDmaApiDomain, U64_MAX } from "@iommu/core";
import { IovaDomain, type RcacheDepot } from "@iova/allocator";
import { cookieOf, DmaCookie, getDmaCookie, type MsiPage, type SacPolicy } from "./cookie.js";
import { deviceDma } from "./device-dma.js";
import { FlushQueue } from "./flush-queue.js";
import { type HostBridge, reservePciWindows } from "./host-bridge.js";
import { hex, pfnOf } from "./u64.js";

export interface DmaDomainInit {
  /** First usable DMA address (arch_setup_dma_ops' base; 0 on both QEMU boards). */
  readonly base?: bigint;
  /** Last usable DMA address (inclusive). */
  readonly limit?: bigint;
  /** The PCI host bridge above a PCI device; absent = no windows, no dma-ranges. */
  readonly hostBridge?: HostBridge;
  /** CPUs for the range caches and flush queues. */
  readonly cpus?: number;
  readonly sac?: SacPolicy;
  /** The range caches' depot: "array" (Linux up to 6.6, the default) or "list" (6.7+, trimmed by `IovaDomain.tick`). */
  readonly rcacheDepot?: RcacheDepot;
}

/**
 * Initialise `domain`'s DMA cookie for `dev`. EINVAL: no DMA cookie, empty page-size bitmap, or
 * unsorted host-bridge dma-ranges; EFAULT: the range misses the aperture, or the domain was already
 * initialised with another granule/start (a second device of the group otherwise changes nothing,
 * as in Linux: its reserved regions are not added). Fails without changing the cookie.
 */
export function iommuDmaInitDomain(iommu: Iommu, domain: IommuDomain, dev: Device, init: DmaDomainInit = {}): void {
  const op = "iommu_dma_init_domain";
  const cookie = cookieOf(domain);
  if (!(cookie instanceof DmaCookie)) {
    throw new ErrnoError("EINVAL", op, "domain has no DMA cookie", { kind: domain.iovaCookie?.kind ?? null });
  }
  if (domain.pgsizeBitmap <= 0n) throw new ErrnoError("EINVAL", op, "domain has no page sizes", {});
  const base = init.base ?? 0n;
  const limit = init.limit ?? U64_MAX;
  const order = ffs64(domain.pgsizeBitmap);
  const granule = 1n << BigInt(order);
  let basePfn = Math.max(1, pfnOf(base, order));
  const geo = domain.geometry;
  if (geo.forceAperture) {
    if (base > geo.apertureEnd || limit < geo.apertureStart) {
      throw new ErrnoError("EFAULT", op, "specified DMA range outside IOMMU capability", {
        base: hex(base),
        limit: hex(limit),
        apertureStart: hex(geo.apertureStart),
        apertureEnd: hex(geo.apertureEnd),
      });
    }
    basePfn = Math.max(basePfn, pfnOf(geo.apertureStart, order));
  }
  if (cookie.iovad) {
    if (BigInt(cookie.iovad.granule) !== granule || cookie.iovad.startPfn !== basePfn) {
      throw new ErrnoError("EFAULT", op, "Incompatible range for DMA domain", {
        granule: hex(granule),
        startPfn: basePfn,
        haveGranule: hex(cookie.iovad.granule),
        haveStartPfn: cookie.iovad.startPfn,
      });
    }
    return;
  }

  const bridge = dev.bus === "pci" ? (init.hostBridge ?? { windows: [], dmaRanges: [] }) : null;
  // Validate first so a refusal leaves the cookie untouched.
  if (bridge) reservePciWindows(bridge, null, granule);

  const cpus = init.cpus ?? 1;
  const iovad = new IovaDomain({
    granule: Number(granule),
    startPfn: basePfn,
    cpus,
    ...(init.rcacheDepot ? { rcacheDepot: init.rcacheDepot } : {}),
  });
  if (bridge) reservePciWindows(bridge, iovad, granule);
  const hwMsi: MsiPage[] = [];
  for (const r of iommu.getResvRegions(dev)) {
    if (r.type === "sw-msi") continue;
    iovad.reserve(pfnOf(r.start, order), pfnOf(r.start + r.length - 1n, order));
    if (r.type === "msi") hwMsi.push(...hwMsiPages(r.start, r.start + r.length, granule));
  }

  cookie.iovad = iovad;
  cookie.msiPages.push(...hwMsi);
  cookie.sac = init.sac ?? "always";
  const flush = domain.driver.flushIotlbAll?.bind(domain.driver);
  // Without flush_iotlb_all a DMA-FQ domain falls back to strict invalidation (Linux: type becomes DMA).
  if (domain.type === "DMA-FQ" && flush) {
    cookie.fq = new FlushQueue(cpus, {
      flushIotlbAll: flush,
      freeIova: (pfn, pages, cpu) => iovad.freeFast(pfn, pages, cpu),
    });
  }
}

/** `cookie_init_hw_msi_region`: identity doorbell pages covering [start, end). */
function hwMsiPages(start: bigint, end: bigint, granule: bigint): MsiPage[] {
  const first = start - (start & (granule - 1n));
  const n = (end - first + granule - 1n) / granule;
  const out: MsiPage[] = [];
  for (let i = 0n; i < n; i++) {
    const a = first + i * granule;
    out.push({ iova: a, phys: a, granule });
  }
  return out;
}

/**
 * `iommu_setup_dma_ops(dev, base, limit)`: when the device's domain is a DMA-API domain, give it a
 * cookie if it has none (6.1's core does that at domain allocation), initialise it and switch the
 * device to dma-iommu. Returns false (device keeps direct DMA) for identity/unmanaged/blocked domains.
 * Errors from `iommuDmaInitDomain` propagate (Linux logs "Failed to set up IOMMU" and keeps direct DMA).
 */
export function setupDmaOps(iommu: Iommu, dev: Device, init: DmaDomainInit = {}): boolean {
  const state = deviceDma(dev);
  const domain = iommu.groupOf(dev)?.domain ?? null;
  if (!domain || !isDmaApiDomain(domain.type)) {
    state.iommuDmaOps = false;
    return false;
  }
  const hadCookie = domain.iovaCookie !== null;
  if (!hadCookie) getDmaCookie(domain);
  try {
    iommuDmaInitDomain(iommu, domain, dev, init);
  } catch (e) {
    if (!hadCookie) domain.iovaCookie = null;
    throw e;
  }
  state.pci32bitWorkaround = dev.bus === "pci" && init.sac !== "forcedac";
  state.iommuDmaOps = true;
  return true;
}
