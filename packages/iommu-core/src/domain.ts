/**
 * `struct iommu_domain`: one IOVA address space as the core sees it (type, driver ops, page sizes,
 * geometry, the dma-iommu cookie slot, the fault handler). Reference §2.1.
 */
import type { Device } from "./device.js";
import type { DomainGeometry, DomainType, DriverDomain, IommuOps } from "./iommu-ops.js";

/** The cookie slot dma-iommu fills (`domain->iova_cookie`): an MSI cookie or a full DMA cookie. */
export interface IovaCookie {
  readonly kind: "msi" | "dma";
}

/**
 * `iommu_fault_handler_t`: called by `report_iommu_fault`; flags IOMMU_FAULT_READ/WRITE.
 * Returns 0 when handled, or a negative errno (-ENOSYS asks for the driver's default behaviour).
 */
export type FaultHandler = (domain: IommuDomain, dev: Device, iova: bigint, flags: number) => number;

export class IommuDomain {
  /** The dma-iommu cookie; null until msi-cookie/dma layers install one. */
  iovaCookie: IovaCookie | null = null;
  /** `domain->handler`. */
  faultHandler: FaultHandler | null = null;
  /** Set by `Iommu.domainFree`; a freed domain cannot be attached or mapped. */
  freed = false;

  constructor(
    readonly id: number,
    readonly type: DomainType,
    readonly ops: IommuOps,
    readonly driver: DriverDomain,
  ) {}

  /**
   * Page sizes of this domain. Read through to the driver: drivers such as arm-smmu-v3 finalise
   * their page sizes and geometry at first attach, after the core saw the domain.
   */
  get pgsizeBitmap(): bigint {
    return this.driver.pgsizeBitmap;
  }

  get geometry(): DomainGeometry {
    return this.driver.geometry;
  }

  /** `iommu_set_fault_handler` (null removes it). */
  setFaultHandler(fn: FaultHandler | null): void {
    this.faultHandler = fn;
  }
}
