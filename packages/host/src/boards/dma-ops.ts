/**
 * The kernel's DMA API on a board's default domains (Linux 6.1): every DMA / DMA-FQ domain gets its
 * dma-iommu IOVA cookie when the core allocates it (`__iommu_domain_alloc` → `iommu_get_dma_cookie`,
 * wired through `IommuOptions.onDomainAlloc`); each probed device then runs `iommu_setup_dma_ops`
 * (x86: intel_iommu_probe_finalize, base 0 / limit U64_MAX; arm64: of_dma_configure → arch_setup_dma_ops)
 * which sizes the cookie's IOVA allocator and reserves the host bridge's windows, the gaps of its
 * dma-ranges and the device's reserved regions. UNMANAGED (VFIO) and blocking domains get no cookie here:
 * type1 adds the MSI-only cookie itself where a sw-msi window exists.
 *
 * The flush queue's 10 ms timer (`fq_flush_timeout`) and the IOVA depot's trim work (6.7+'s list depot)
 * run on the board's model clock: `tick(ms)`.
 */
import {
  cookieOf,
  DmaCookie,
  flushQueueTimeout,
  getDmaCookie,
  type HostBridge,
  IOVA_FQ_TIMEOUT_MS,
  setupDmaOps,
} from "@dma-iommu/msi-cookie";
import { type Device, type Iommu, type IommuDomain, isDmaApiDomain, isErrno, U64_MAX } from "@iommu/core";
import type { RcacheDepot } from "@iova/allocator";
import type { KernelLog } from "../kernel/kernel-log.js";

/** `IommuOptions.onDomainAlloc`: the DMA cookie of a DMA-API domain, at allocation. */
export function dmaCookieAtAlloc(domain: IommuDomain): void {
  if (isDmaApiDomain(domain.type)) getDmaCookie(domain);
}

/**
 * `iommu_setup_dma_ops` for each device: true when it now does DMA through dma-iommu. A failure leaves
 * the device on direct DMA and logs as Linux does.
 */
export function setupKernelDma(
  iommu: Iommu,
  devices: readonly Device[],
  hostBridge: HostBridge,
  klog: KernelLog,
  rcacheDepot: RcacheDepot = "array",
): void {
  for (const dev of devices) {
    try {
      setupDmaOps(iommu, dev, { base: 0n, limit: U64_MAX, hostBridge, rcacheDepot });
    } catch (e) {
      if (!isErrno(e)) throw e;
      klog.printk(`Failed to set up IOMMU for device ${dev.name}; retaining platform DMA ops`);
    }
  }
}

/**
 * The model clock of a board and the flush-queue timers on it. A DMA-FQ domain's timer is armed by the
 * first unmap queued after the previous timeout (`queue_iova`); the clock notices an armed timer at the
 * next `tick` and fires it `IOVA_FQ_TIMEOUT_MS` (10 ms) of model time later.
 */
export class FqClock {
  /** Model time in ms since boot. */
  nowMs = 0;
  private readonly armedAt = new WeakMap<object, number>();

  constructor(private readonly iommu: Iommu) {}

  /**
   * Advance the clock by `ms`: each default domain's IOVA allocator runs its delayed depot work first
   * (`IovaDomain.tick`), then the flush-queue timeouts that are due run at the new time.
   */
  tick(ms: number = IOVA_FQ_TIMEOUT_MS): void {
    if (!(ms >= 0 && Number.isFinite(ms))) throw new RangeError(`tick needs a finite ms >= 0, got ${ms}`);
    for (const c of this.dmaCookies()) c.iovad?.tick(ms);
    const fqs = this.fqDomains();
    for (const [, fq] of fqs) if (fq.timerPending && !this.armedAt.has(fq)) this.armedAt.set(fq, this.nowMs);
    this.nowMs += ms;
    for (const [domain, fq] of fqs) {
      const at = this.armedAt.get(fq);
      if (at === undefined || !fq.timerPending || this.nowMs - at < IOVA_FQ_TIMEOUT_MS) continue;
      this.armedAt.delete(fq);
      flushQueueTimeout(domain);
    }
  }

  private fqDomains(): [IommuDomain, NonNullable<DmaCookie["fq"]>][] {
    const out: [IommuDomain, NonNullable<DmaCookie["fq"]>][] = [];
    for (const [d, c] of this.dmaDomains()) if (c.fq) out.push([d, c.fq]);
    return out;
  }

  private dmaCookies(): DmaCookie[] {
    return this.dmaDomains().map(([, c]) => c);
  }

  /** Live default domains with a DMA cookie, each once. */
  private dmaDomains(): [IommuDomain, DmaCookie][] {
    const out: [IommuDomain, DmaCookie][] = [];
    const seen = new Set<IommuDomain>();
    for (const g of this.iommu.groups()) {
      const d = g.defaultDomain;
      if (!d || d.freed || seen.has(d)) continue;
      seen.add(d);
      const c = cookieOf(d);
      if (c instanceof DmaCookie) out.push([d, c]);
    }
    return out;
  }
}
