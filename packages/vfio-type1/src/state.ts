/**
 * `struct vfio_iommu` (drivers/vfio/vfio_iommu_type1.c): the type1 backend's state. Only the files that hold
 * type1's kernel functions (attach, map, unmap, dirty, get-info) touch it; the public `VfioIommuType1` keeps
 * it private and `@vfio/type1/testing` hands tests a read-only view.
 */
import { type Iommu, type IommuDomain, type IommuGroup, PAGE_MASK } from "@iommu/core";
import { DmaTree } from "./dma-tree.js";
import type { IovaRange } from "./iova-list.js";
import type { Type1KernelOptions } from "./kernel-options.js";
import type { PageSource, Process } from "./process.js";

/** vfio_iommu_type1's module parameters (0644: changeable at run time; `dmaEntryLimit` is read at open). */
export interface Type1Params {
  allowUnsafeInterrupts: boolean;
  disableHugepages: boolean;
  dmaEntryLimit: number;
}

/** What the backend needs from its host. */
export interface Type1Env {
  readonly iommu: Iommu;
  /** Live module parameters. */
  readonly params: Type1Params;
  /** The task issuing the ioctls (`current`): whose pages are pinned and whose locked_vm is charged. */
  readonly process: Process;
  /** The rules that changed after Linux 6.1 (kernel-options.ts). */
  readonly kernel: Type1KernelOptions;
  /** The seed's named option: one RESV_IOVA_RANGE capability per reserved range in GET_INFO. */
  readonly seedResvCaps: boolean;
  /** `iommu_get_msi_cookie` (from @dma-iommu/msi-cookie). */
  readonly getMsiCookie: (domain: IommuDomain, base: bigint) => void;
  /** Kernel pages for the fine-grained-superpage probe; without them the probe is skipped (fgsp = false). */
  readonly kernelPages?: PageSource;
}

/** `struct vfio_domain` */
export interface VfioDomain {
  readonly domain: IommuDomain;
  readonly groups: IommuGroup[];
  readonly enforceCacheCoherency: boolean;
  fgsp: boolean;
}

/** `struct vfio_iommu` */
export class VfioIommu {
  readonly domains: VfioDomain[] = [];
  readonly dmas = new DmaTree();
  iovaList: IovaRange[] = [];
  dmaAvail: number;
  vaddrInvalidCount = 0;
  pgsizeBitmap: bigint = PAGE_MASK;
  numNonPinnedGroups = 0;
  dirtyPageTracking = false;

  constructor(
    readonly env: Type1Env,
    readonly v2: boolean,
    readonly nesting: boolean,
  ) {
    this.dmaAvail = env.params.dmaEntryLimit;
  }

  get process(): Process {
    return this.env.process;
  }

  /** Groups attached, in attach order per domain. */
  groups(): IommuGroup[] {
    return this.domains.flatMap((d) => d.groups);
  }
}

/** A u64 for an error's detail. */
export const hex = (x: bigint): string => `0x${x.toString(16)}`;

/** Bits 0..n-1 set. */
export const lowBits = (n: bigint): bigint => (1n << n) - 1n;
