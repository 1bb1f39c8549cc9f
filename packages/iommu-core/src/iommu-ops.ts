/**
 * The driver contract, in the spirit of `struct iommu_ops` / `struct iommu_domain_ops` (6.1), and
 * the one thing a device knows about IOMMU hardware (`IommuHardware`). Core never imports a driver;
 * the host wires drivers in. Each op's doc lists the errnos it may throw (as ErrnoError), with the
 * driver that answers each where they differ. Nothing but ErrnoError leaves an op: running out of the
 * kernel's page pool is `PageAllocator`'s ENOMEM at its source; any other exception is a bug.
 */
import type { Iova, PhysAddr } from "./addr.js";
import type { Device } from "./device.js";
import type { ErrnoError } from "./errno.js";
import type { IommuCap } from "./prot.js";
import type { ResvRegion } from "./resv-region.js";
import { U64_MAX } from "./u64.js";

/** Domain types with their sysfs names (iommu.h 6.1: bit sets PAGING=1, DMA_API=2, PT=4, DMA_FQ=8). */
export type DomainType = "blocked" | "identity" | "unmanaged" | "DMA" | "DMA-FQ";

/** Linux's numeric value of each domain type (IOMMU_DOMAIN_*). */
export const DOMAIN_TYPE_BITS: Readonly<Record<DomainType, number>> = {
  blocked: 0,
  identity: 4,
  unmanaged: 1,
  DMA: 3,
  "DMA-FQ": 11,
};

/** True for domains with page tables (`__IOMMU_DOMAIN_PAGING`). */
export function isPagingDomain(t: DomainType): boolean {
  return (DOMAIN_TYPE_BITS[t] & 1) !== 0;
}

/** True for DMA-API domains (DMA and DMA-FQ). */
export function isDmaApiDomain(t: DomainType): boolean {
  return (DOMAIN_TYPE_BITS[t] & 2) !== 0;
}

/** `struct iommu_domain_geometry`: inclusive aperture. */
export interface DomainGeometry {
  readonly apertureStart: bigint;
  readonly apertureEnd: bigint;
  /** DMA outside the aperture is impossible; dma-iommu clips allocations to it. */
  readonly forceAperture: boolean;
}

/** What the core gives a driver domain at allocation: its way to report faults upward. */
export interface DomainAllocContext {
  /**
   * `report_iommu_fault(domain, dev, iova, flags)`: flags IOMMU_FAULT_READ (0) / WRITE (1).
   * Returns the handler's result, or -ENOSYS (-38) when the domain has no handler.
   */
  reportFault(dev: Device, iova: bigint, flags: number): number;
}

/** Result of `map_pages`: bytes mapped before success or failure (the core unwinds them on failure). */
export interface MapPagesResult {
  readonly mapped: bigint;
  readonly error: ErrnoError | null;
}

/** `struct iommu_iotlb_gather`: the IOVA span unmapped since the last sync. */
export interface IotlbGather {
  start: bigint;
  /** Inclusive; start > end means empty. */
  end: bigint;
  pgsize: bigint;
}

/** An empty gather starts at ULONG_MAX (`iommu_iotlb_gather_init`). */
const GATHER_START_EMPTY = U64_MAX;

export function emptyGather(): IotlbGather {
  return { start: GATHER_START_EMPTY, end: 0n, pgsize: 0n };
}

/** A driver's domain (`iommu_domain` + `iommu_domain_ops`). Paging ops are absent on identity/blocked domains. */
export interface DriverDomain {
  /** Page sizes this domain can map (bit n = 2^n bytes). */
  readonly pgsizeBitmap: bigint;
  readonly geometry: DomainGeometry;
  /**
   * attach_dev: point `dev`'s translation at this domain. Throws ENODEV (not probed by this driver),
   * EINVAL (another SMMU's domain), ENOMEM (no frame for a context/stream table, context bank tables),
   * ENOSPC (no domain id / ASID / context bank left), EPERM (vt-d: an RMRR locks the device out of an
   * unmanaged domain), EOPNOTSUPP (vt-d: the domain forces snooping and the unit has no snoop control),
   * EFAULT (vt-d: the unit's width cannot reach what the domain already maps), EIO (an invalidation
   * that did not complete), EBUSY (the mock: device already attached elsewhere).
   */
  attachDev(dev: Device): void;
  /**
   * map_pages: map `pgcount` pages of `pgsize`. Errors in the result: EINVAL (page size, alignment or
   * no access bits), ENOMEM (no frame for a table), EEXIST (arm-smmu, the mock: already mapped; vt-d
   * warns and keeps the old entry), ERANGE (arm-smmu: beyond the input or output address size),
   * EFAULT (vt-d: beyond the domain's address width).
   */
  mapPages?(iova: Iova, paddr: PhysAddr, pgsize: bigint, pgcount: number, prot: number): MapPagesResult;
  /**
   * unmap_pages: returns bytes unmapped (0 = nothing there); may be more than asked if a block covers
   * iova. Throws only EIO (an invalidation that did not complete) or ENOMEM (splitting a block).
   */
  unmapPages?(iova: Iova, pgsize: bigint, pgcount: number, gather: IotlbGather): bigint;
  /** iova_to_phys: 0n means "not mapped". */
  iovaToPhys?(iova: Iova): PhysAddr;
  /** iotlb_sync_map: after a successful map (caching-mode hardware needs it). */
  iotlbSyncMap?(iova: bigint, size: bigint): void;
  /** iotlb_sync: invalidate what `gather` covers and wait. */
  iotlbSync?(gather: IotlbGather): void;
  /** flush_iotlb_all */
  flushIotlbAll?(): void;
  /** enforce_cache_coherency: true if the domain can force snooping for all its mappings. */
  enforceCacheCoherency?(): boolean;
  /** Free the domain's tables. The core detaches every device first. */
  free(): void;
}

/** A driver: `struct iommu_ops`. Implementations are frozen object literals that `satisfies IommuOps`. */
export interface IommuOps {
  readonly name: string;
  /** Page sizes the hardware supports (the default for new domains). */
  readonly pgsizeBitmap: bigint;
  /**
   * probe_device: claim `dev`. Throws ENODEV (not behind this IOMMU), EBUSY (arm-smmu: the stream id is
   * taken), ERANGE (arm-smmu: the stream id is beyond the stream table), ENOSPC (arm-smmu v2: no free
   * stream-match entry), ENOMEM (arm-smmu-v3: no frame for a level-2 stream table).
   */
  probeDevice(dev: Device): void;
  /** release_device */
  releaseDevice?(dev: Device): void;
  /** device_group: devices returning equal keys share one IOMMU group. */
  deviceGroup(dev: Device): string;
  /** def_domain_type: the default domain type this device needs, or undefined for the core's choice. */
  defDomainType?(dev: Device): DomainType | undefined;
  /**
   * domain_alloc: null when the type is unsupported or memory, an ASID or a VMID ran out (the core
   * answers ENOMEM as Linux does); never throws for those.
   */
  domainAlloc(type: DomainType, ctx: DomainAllocContext): DriverDomain | null;
  /** get_resv_regions: this device's reserved regions, in the driver's order. */
  getResvRegions(dev: Device): ResvRegion[];
  /** capable */
  capable(dev: Device, cap: IommuCap): boolean;
  /**
   * hw_info (6.6+): the IOMMU's description for IOMMU_GET_HW_INFO, `type` an `enum iommu_hw_info_type`
   * (1 = Intel VT-d) and `data` its struct's bytes. Absent = the driver has none (type NONE, no data).
   */
  hwInfo?(dev: Device): HwInfo;
}

/** What `hw_info` returns: the uAPI type number and the little-endian bytes of its data struct. */
export interface HwInfo {
  readonly type: number;
  readonly data: Uint8Array;
}

/**
 * What every driver factory returns (`createIntelIommuDriver`, `createArmSmmuV3Driver`,
 * `createArmSmmuV2Driver`): the `iommu_ops` the core calls, the kernel log the driver printed, and,
 * beside them in each driver's own type, the handles the board wires to its hardware (interrupt
 * handlers, interrupt remapping, what probe found). Factories take `memory`, `pageAllocator` and a
 * model clock `now` (ms, for the log ratelimit) under those names.
 */
export interface IommuDriver {
  readonly ops: IommuOps;
  /** Kernel log lines printed since the last call, oldest first (drains them). */
  drainLog(): string[];
}

/** The access kinds a device issues. */
export type DmaAccess = "read" | "write";

/** One translation request from a device, as the IOMMU hardware sees it on the bus. */
export interface TranslateRequest {
  readonly device: Device;
  /** PCI requester id (bus << 8 | devfn) or a platform device's stream id. */
  readonly requesterId: number;
  readonly iova: bigint;
  readonly access: DmaAccess;
  /** For writes: the bytes written (interrupt requests are decoded from them). */
  readonly data?: Uint8Array;
  /** For reads: the bytes the device reads from `iova` on (a write's length is `data.length`). */
  readonly len?: number;
}

/**
 * The hardware's answer: an output address valid for `span` bytes from `iova`, a fault (recorded by
 * the hardware, nothing performed), or an interrupt request the hardware consumed (x86 0xFEEx_xxxx).
 */
export type Translation =
  | { readonly kind: "ok"; readonly phys: bigint; readonly span: bigint }
  | { readonly kind: "fault"; readonly reason: string }
  | { readonly kind: "interrupt" };

/** IOMMU hardware as a device sees it: the only door between a device's DMA and memory. */
export interface IommuHardware {
  readonly name: string;
  translate(req: TranslateRequest): Translation;
}
