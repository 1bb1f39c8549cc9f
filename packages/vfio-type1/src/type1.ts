/**
 * The VFIO type1 IOMMU backend (drivers/vfio/vfio_iommu_type1.c, Linux 6.1): one per container after
 * VFIO_SET_IOMMU. It owns the container's IOMMU domains (one per group, or shared by compatible groups),
 * the valid IOVA list, the user mappings (pinned runs mapped into every domain), DMA_AVAIL, and dirty
 * tracking. The typed methods throw ErrnoError with `op` = the kernel function whose rule failed; the byte
 * ioctls (type1-ioctl.ts) turn those into negative errnos. Reference §6.
 */
import {
  ErrnoError,
  IOMMU_CACHE,
  IOMMU_READ,
  IOMMU_WRITE,
  type Iommu,
  type IommuDomain,
  type IommuGroup,
  isErrno,
  minPageSize,
  PAGE_MASK,
  PAGE_SIZE,
  type ResvRegion,
  U64_MAX,
  u64,
} from "@iommu/core";
import {
  CAP_DMA_AVAIL_SIZE,
  CAP_IOVA_RANGE_BASE,
  CAP_MIGRATION_SIZE,
  CAP_RESV_IOVA_RANGE_SIZE,
  CapChain,
  DIRTY_BITMAP_SIZE_MAX,
  IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE,
  IOVA_RANGE_SIZE,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  type VfioBitmap,
} from "@vfio/uapi";
import { DmaTree, type VfioDma } from "./dma-tree.js";
import { aperExpand, aperResize, findSwMsi, type IovaRange, iovaDmaValid, resvExclude } from "./iova-list.js";
import { type PinnedRun, pinRun, unpinRun } from "./pin.js";
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

export interface MapDmaRequest {
  readonly vaddr: bigint;
  readonly iova: bigint;
  readonly size: bigint;
  /** VFIO_DMA_MAP_FLAG_* */
  readonly flags: number;
}

export interface UnmapDmaRequest {
  readonly iova: bigint;
  readonly size: bigint;
  /** VFIO_DMA_UNMAP_FLAG_* */
  readonly flags?: number;
  /** With GET_DIRTY_BITMAP: where (in the process) and at which page size to report. */
  readonly bitmap?: VfioBitmap;
}

/** What GET_INFO computes before it is copied out. */
export interface Type1Info {
  readonly flags: number;
  readonly iovaPgsizes: bigint;
  /** The capability chain with buffer-relative `next` offsets (not yet shifted). */
  readonly caps: CapChain;
}

/** A comparable picture of everything a failed call must leave untouched (for tests). */
export interface Type1Snapshot {
  readonly dmas: string[];
  readonly dmaAvail: number;
  readonly iovaList: string[];
  readonly pgsizeBitmap: string;
  readonly dirty: boolean;
  readonly vaddrInvalid: number;
  readonly lockedVm: number;
  readonly domains: string[];
}

const hex = (x: bigint): string => `0x${x.toString(16)}`;
/** Bits 0..n-1 set. */
const lowBits = (n: bigint): bigint => (1n << n) - 1n;

/** Smallest page of a bitmap (`1 << __ffs(bitmap)`): core's helper, re-exported for this package's users. */
export { minPageSize };

/**
 * `vfio_iommu_type1_check_extension` (no backend instance: `iommu` NULL in Linux). UPDATE_VADDR needs a backend
 * with no emulated (mdev) groups — this model has none — so a container without a backend (no SET_IOMMU yet, or
 * its last group left) answers 0. (6.1 stable carries "vfio/type1: exclude mdevs from VFIO_UPDATE_VADDR"; a real
 * 6.1.192 kernel answers 0 there.)
 */
export function type1CheckExtension(backend: VfioIommuType1 | null, ext: number): number {
  switch (ext) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_TYPE1_NESTING_IOMMU:
    case VFIO_UNMAP_ALL:
      return 1;
    case VFIO_UPDATE_VADDR:
      return backend ? 1 : 0;
    case VFIO_DMA_CC_IOMMU:
      return backend ? backend.domainsEnforceCacheCoherency() : 0;
    default:
      return 0;
  }
}

export class VfioIommuType1 {
  readonly v2: boolean;
  readonly nesting: boolean;
  readonly domains: VfioDomain[] = [];
  readonly dmas = new DmaTree();
  iovaList: IovaRange[] = [];
  dmaAvail: number;
  vaddrInvalidCount = 0;
  pgsizeBitmap: bigint = PAGE_MASK;
  numNonPinnedGroups = 0;
  dirtyPageTracking = false;

  /** `vfio_iommu_type1_open(type)`: EINVAL for a type this backend does not implement. */
  constructor(
    private readonly env: Type1Env,
    type: number,
  ) {
    if (type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU && type !== VFIO_TYPE1_NESTING_IOMMU) {
      throw new ErrnoError("EINVAL", "vfio_iommu_type1_open", "not a type1 IOMMU type", { type });
    }
    this.v2 = type !== VFIO_TYPE1_IOMMU;
    this.nesting = type === VFIO_TYPE1_NESTING_IOMMU;
    this.dmaAvail = env.params.dmaEntryLimit;
  }

  get process(): Process {
    return this.env.process;
  }

  /** Groups attached, in attach order per domain. */
  groups(): IommuGroup[] {
    return this.domains.flatMap((d) => d.groups);
  }

  domainsEnforceCacheCoherency(): number {
    return this.domains.every((d) => d.enforceCacheCoherency) ? 1 : 0;
  }

  // ---- attach / detach (§6.8) ------------------------------------------------------------------

  /** `vfio_iommu_type1_attach_group` */
  attachGroup(group: IommuGroup): void {
    const op = "vfio_iommu_type1_attach_group";
    const { iommu } = this.env;
    // 6.1 would sleep in the replay until every vaddr is valid again; a model cannot sleep, so it
    // fails as 6.2 does.
    if (this.vaddrInvalidCount > 0) {
      throw new ErrnoError("EBUSY", op, "mappings with invalidated vaddr exist", { count: this.vaddrInvalidCount });
    }
    if (this.groups().includes(group)) {
      throw new ErrnoError("EINVAL", op, "group already attached to this container", { group: group.id });
    }
    const first = group.devices[0];
    if (!first?.iommu) throw new ErrnoError("EIO", op, "group has no IOMMU-backed device", { group: group.id });
    let domain: IommuDomain;
    try {
      domain = iommu.domainAlloc(first.iommu.ops, "unmanaged");
    } catch (e) {
      throw new ErrnoError("EIO", op, "iommu_domain_alloc failed", { group: group.id }, { cause: e });
    }
    if (this.nesting) {
      // The driver contract has no enable_nesting op: every driver answers as VT-d does (-EINVAL).
      iommu.domainFree(domain);
      throw new ErrnoError("EINVAL", "iommu_enable_nesting", "the driver cannot enable nesting", { group: group.id });
    }
    try {
      iommu.attachGroup(domain, group);
    } catch (e) {
      iommu.domainFree(domain);
      throw e;
    }
    let attachedTo = domain;
    const undo = (): void => {
      iommu.detachGroup(attachedTo, group);
      iommu.domainFree(domain);
    };
    try {
      const geo = domain.geometry;
      if (this.aperConflict(geo.apertureStart, geo.apertureEnd)) {
        throw new ErrnoError("EINVAL", "vfio_iommu_aper_conflict", "aperture conflicts with existing mappings", {
          apertureStart: hex(geo.apertureStart),
          apertureEnd: hex(geo.apertureEnd),
        });
      }
      const resv = iommu.getGroupResvRegions(group);
      const conflict = this.resvConflict(resv);
      if (conflict) {
        throw new ErrnoError("EINVAL", "vfio_iommu_resv_conflict", "reserved region overlaps a mapping", {
          start: hex(conflict.start),
          length: hex(conflict.length),
          type: conflict.type,
        });
      }
      const copy = resvExclude(aperResize(this.iovaList, geo.apertureStart, geo.apertureEnd), resv);
      if (!copy) throw new ErrnoError("EINVAL", "vfio_iommu_resv_exclude", "no usable IOVA left", { group: group.id });
      const swMsiBase = findSwMsi(resv);
      if (!this.env.params.allowUnsafeInterrupts && !iommu.groupHasIsolatedMsi(group)) {
        this.process.klog.push(
          `${op}: No interrupt remapping support.  Use the module param "allow_unsafe_interrupts" to enable VFIO IOMMU support on this platform`,
        );
        throw new ErrnoError("EPERM", op, "no interrupt remapping support", { group: group.id });
      }
      const enforceCacheCoherency = domain.driver.enforceCacheCoherency?.() ?? false;
      // Reuse a compatible domain: same driver, same coherency enforcement.
      for (const d of this.domains) {
        if (d.domain.ops !== domain.ops || d.enforceCacheCoherency !== enforceCacheCoherency) continue;
        iommu.detachGroup(domain, group);
        try {
          iommu.attachGroup(d.domain, group);
        } catch {
          iommu.attachGroup(domain, group);
          continue;
        }
        attachedTo = d.domain;
        d.groups.push(group);
        iommu.domainFree(domain);
        this.iovaList = copy;
        this.numNonPinnedGroups++;
        return;
      }
      const vd: VfioDomain = { domain, groups: [group], enforceCacheCoherency, fgsp: false };
      this.testDomainFgsp(vd);
      this.replay(domain);
      if (swMsiBase !== null) {
        try {
          this.env.getMsiCookie(domain, swMsiBase);
        } catch (e) {
          if (!isErrno(e, "ENODEV")) {
            this.unmapAllFrom(domain);
            throw e;
          }
        }
      }
      this.domains.push(vd);
      this.updatePgsizeBitmap();
      this.iovaList = copy;
      this.numNonPinnedGroups++;
    } catch (e) {
      if (attachedTo === domain) undo();
      throw e;
    }
  }

  /** `vfio_iommu_type1_detach_group` */
  detachGroup(group: IommuGroup): void {
    const { iommu } = this.env;
    let copy = this.iovaList.map((r) => ({ ...r }));
    let updateDirtyScope = false;
    const idx = this.domains.findIndex((d) => d.groups.includes(group));
    if (idx >= 0) {
      const vd = this.domains[idx]!;
      iommu.detachGroup(vd.domain, group);
      vd.groups.splice(vd.groups.indexOf(group), 1);
      updateDirtyScope = true;
      if (vd.groups.length === 0) {
        if (this.domains.length === 1) this.unmapUnpinAll();
        iommu.domainFree(vd.domain);
        this.domains.splice(idx, 1);
        copy = aperExpand(
          copy,
          this.domains.map((d) => d.domain.geometry),
        );
        this.updatePgsizeBitmap();
      }
    }
    const refreshed = this.resvRefresh(copy);
    if (refreshed) this.iovaList = refreshed;
    if (updateDirtyScope) {
      this.numNonPinnedGroups--;
      if (this.dirtyPageTracking) this.populateBitmapFull();
    }
  }

  /** `vfio_iommu_type1_release`: the container let go of the backend. */
  release(): void {
    this.unmapUnpinAll();
    for (const vd of this.domains.splice(0)) {
      for (const g of vd.groups) this.env.iommu.detachGroup(vd.domain, g);
      this.env.iommu.domainFree(vd.domain);
    }
    this.iovaList = [];
  }

  private aperConflict(start: bigint, end: bigint): boolean {
    const list = this.iovaList;
    if (list.length === 0) return false;
    const first = list[0]!;
    const last = list[list.length - 1]!;
    if (start > last.end || end < first.start) return true;
    if (start > first.start && this.dmas.find(first.start, start - first.start)) return true;
    if (end < last.end && this.dmas.find(end + 1n, last.end - end)) return true;
    return false;
  }

  private resvConflict(regions: readonly ResvRegion[]): ResvRegion | null {
    for (const r of regions) {
      if (r.type === "direct-relaxable") continue;
      if (this.dmas.find(r.start, r.length)) return r;
    }
    return null;
  }

  /** `vfio_iommu_resv_refresh`: rebuild the list from the copy's span minus all remaining groups' regions. */
  private resvRefresh(copy: readonly IovaRange[]): IovaRange[] | null {
    if (copy.length === 0) return null;
    const regions = this.groups().flatMap((g) => this.env.iommu.getGroupResvRegions(g));
    return resvExclude(aperResize([], copy[0]!.start, copy[copy.length - 1]!.end), regions);
  }

  /** `vfio_update_pgsize_bitmap`: AND of the domains; sub-page sizes hidden behind PAGE_SIZE. */
  private updatePgsizeBitmap(): void {
    let bm = U64_MAX;
    for (const d of this.domains) bm &= d.domain.pgsizeBitmap;
    if ((bm & ~PAGE_MASK) !== 0n) bm = (bm & PAGE_MASK) | PAGE_SIZE;
    this.pgsizeBitmap = bm;
  }

  /**
   * `vfio_test_domain_fgsp` (≤6.2 shape: probes at IOVA 0): map two pages, unmap one; if the IOMMU took
   * out more than one page the domain has fine-grained superpages (AMD-style). The two kernel pages are
   * freed again, and a failed page allocation skips the probe (Linux: `if (!pages) return;`).
   */
  private testDomainFgsp(vd: VfioDomain): void {
    const pages = this.env.kernelPages;
    if (!pages?.allocPages) return;
    let phys: bigint;
    try {
      phys = pages.allocPages(2);
    } catch (e) {
      if (isErrno(e)) return;
      throw e;
    }
    const { iommu } = this.env;
    try {
      iommu.map(vd.domain, 0n, phys, 2n * PAGE_SIZE, IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE);
      const unmapped = iommu.unmap(vd.domain, 0n, PAGE_SIZE);
      if (unmapped === PAGE_SIZE) iommu.unmap(vd.domain, PAGE_SIZE, PAGE_SIZE);
      else vd.fgsp = true;
    } catch (e) {
      if (!isErrno(e)) throw e;
    } finally {
      pages.freePage?.(phys);
      pages.freePage?.(phys + PAGE_SIZE);
    }
  }

  /** `vfio_iommu_replay`: map every existing mapping's pinned runs into a new domain (unwinds on failure). */
  private replay(domain: IommuDomain): void {
    const done: { iova: bigint; len: bigint }[] = [];
    try {
      for (const dma of this.dmas.all()) {
        for (const run of dma.runs) {
          const iova = dma.iova + run.offset;
          const len = BigInt(run.pages) * PAGE_SIZE;
          this.env.iommu.map(domain, iova, run.phys, len, dma.prot | IOMMU_CACHE);
          done.push({ iova, len });
        }
      }
    } catch (e) {
      for (const m of done) this.env.iommu.unmap(domain, m.iova, m.len);
      throw e;
    }
  }

  private unmapAllFrom(domain: IommuDomain): void {
    for (const dma of this.dmas.all()) {
      for (const run of dma.runs) this.env.iommu.unmap(domain, dma.iova + run.offset, BigInt(run.pages) * PAGE_SIZE);
    }
  }

  // ---- MAP_DMA (§6.3, §6.4) -------------------------------------------------------------------

  /** `vfio_iommu_type1_map_dma` + `vfio_dma_do_map`. */
  mapDma(req: MapDmaRequest): void {
    const op = "vfio_dma_do_map";
    const { vaddr, iova, size, flags } = req;
    const mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
    if ((flags & ~mask) !== 0) {
      throw new ErrnoError("EINVAL", "vfio_iommu_type1_map_dma", "unknown flags", { flags });
    }
    let prot = 0;
    if (flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
    if (flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
    const setVaddr = (flags & VFIO_DMA_MAP_FLAG_VADDR) !== 0;
    if ((prot !== 0) === setVaddr) {
      throw new ErrnoError("EINVAL", op, "READ/WRITE required, and VADDR excludes them", { flags });
    }
    const pgsize = minPageSize(this.pgsizeBitmap);
    if (size === 0n || ((size | iova | vaddr) & (pgsize - 1n)) !== 0n) {
      throw new ErrnoError("EINVAL", op, "size zero or not aligned to the minimum page", {
        iova: hex(iova),
        size: hex(size),
        vaddr: hex(vaddr),
        pgsize: hex(pgsize),
      });
    }
    if (iova + size - 1n > U64_MAX || vaddr + size - 1n > U64_MAX) {
      throw new ErrnoError("EINVAL", op, "iova or vaddr range wraps", { iova: hex(iova), size: hex(size) });
    }
    const found = this.dmas.find(iova, size);
    if (setVaddr) {
      if (!found) throw new ErrnoError("ENOENT", op, "no mapping to update", { iova: hex(iova) });
      if (!found.vaddrInvalid || found.iova !== iova || found.size !== size) {
        throw new ErrnoError("EINVAL", op, "mapping is not invalidated or differs", {
          iova: hex(iova),
          size: hex(size),
        });
      }
      found.vaddr = vaddr;
      found.vaddrInvalid = false;
      this.vaddrInvalidCount--;
      return;
    }
    if (found) {
      throw new ErrnoError("EEXIST", op, "overlaps an existing mapping", {
        iova: hex(iova),
        existing: hex(found.iova),
      });
    }
    if (this.dmaAvail === 0) throw new ErrnoError("ENOSPC", op, "dma_entry_limit reached", { iova: hex(iova) });
    if (!iovaDmaValid(this.iovaList, iova, iova + size - 1n)) {
      throw new ErrnoError("EINVAL", "vfio_iommu_iova_dma_valid", "range is not inside one valid IOVA range", {
        iova: hex(iova),
        size: hex(size),
      });
    }
    const dma: VfioDma = {
      iova,
      size: 0n,
      vaddr,
      prot,
      lockCap: this.process.capIpcLock,
      iommuMapped: false,
      vaddrInvalid: false,
      runs: [],
      bitmap: false,
      bits: 0n,
    };
    if (this.domains.length === 0) dma.size = size;
    else this.pinMapDma(dma, size);
    if (this.dirtyPageTracking) dma.bitmap = true;
    this.dmas.insert(dma);
    this.dmaAvail--;
  }

  /** `vfio_pin_map_dma`: pin contiguous runs and map each into every domain; undo everything on failure. */
  private pinMapDma(dma: VfioDma, size: bigint): void {
    const proc = this.process;
    const opts = {
      write: (dma.prot & IOMMU_WRITE) !== 0,
      lockCap: dma.lockCap,
      disableHugepages: this.env.params.disableHugepages,
    };
    let done = 0n;
    try {
      while (done < size) {
        const npage = Number((size - done) / PAGE_SIZE);
        const run = pinRun(proc, dma.vaddr + done, npage, done, opts);
        const len = BigInt(run.pages) * PAGE_SIZE;
        try {
          this.iommuMap(dma.iova + done, run.phys, len, dma.prot);
        } catch (e) {
          unpinRun(proc, run);
          throw e;
        }
        dma.runs.push(run);
        done += len;
        dma.size = done;
      }
    } catch (e) {
      this.unmapUnpin(dma);
      throw e;
    }
    dma.iommuMapped = true;
  }

  /** `vfio_iommu_map`: one run into every domain, unmapping the ones done when a later one fails. */
  private iommuMap(iova: bigint, phys: bigint, len: bigint, prot: number): void {
    let i = 0;
    try {
      for (; i < this.domains.length; i++)
        this.env.iommu.map(this.domains[i]!.domain, iova, phys, len, prot | IOMMU_CACHE);
    } catch (e) {
      while (i-- > 0) this.env.iommu.unmap(this.domains[i]!.domain, iova, len);
      throw e;
    }
  }

  /** `vfio_unmap_unpin`: take the runs out of every domain, unpin and uncharge them. */
  private unmapUnpin(dma: VfioDma): void {
    for (const run of dma.runs) this.unmapRun(dma, run);
    dma.runs.length = 0;
    dma.iommuMapped = false;
  }

  private unmapRun(dma: VfioDma, run: PinnedRun): void {
    const len = BigInt(run.pages) * PAGE_SIZE;
    for (const d of this.domains) this.env.iommu.unmap(d.domain, dma.iova + run.offset, len);
    unpinRun(this.process, run);
  }

  /** `vfio_remove_dma` minus the tree unlink (callers remove ranges of the tree at once). */
  private releaseDma(dma: VfioDma): void {
    this.unmapUnpin(dma);
    if (dma.vaddrInvalid) this.vaddrInvalidCount--;
    this.dmaAvail++;
  }

  /** `vfio_iommu_unmap_unpin_all` */
  private unmapUnpinAll(): void {
    for (const dma of this.dmas.all()) this.releaseDma(dma);
    this.dmas.clear();
  }

  // ---- UNMAP_DMA (§6.5) -------------------------------------------------------------------------

  /**
   * `vfio_dma_do_unmap`: returns the bytes unmapped. Errors carry `detail.unmapped` (what the kernel wrote
   * into its copy of `unmap.size`; the ioctl does not copy it back on error).
   */
  unmapDma(req: UnmapDmaRequest): bigint {
    const op = "vfio_dma_do_unmap";
    const flags = req.flags ?? 0;
    const { iova } = req;
    let size = req.size;
    const all = (flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
    const invalidateVaddr = (flags & VFIO_DMA_UNMAP_FLAG_VADDR) !== 0;
    const getDirty = (flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
    const einval = (why: string, unmapped = 0n): ErrnoError =>
      new ErrnoError("EINVAL", op, why, { iova: hex(iova), size: hex(req.size), unmapped });
    const pgsize = minPageSize(this.pgsizeBitmap);
    if ((iova & (pgsize - 1n)) !== 0n) throw einval("iova not aligned to the minimum page");
    if (all) {
      if (iova !== 0n || size !== 0n) throw einval("UNMAP_ALL needs iova = size = 0");
      size = U64_MAX;
    } else if (size === 0n || (size & (pgsize - 1n)) !== 0n || iova + size - 1n > U64_MAX) {
      throw einval("size zero, unaligned, or the range wraps");
    }
    if (getDirty && (!this.dirtyPageTracking || req.bitmap?.pgsize !== pgsize)) {
      throw einval("dirty tracking off or bitmap page size is not the minimum page");
    }
    if (this.v2 && !all) {
      const a = this.dmas.find(iova, 1n);
      if (a && a.iova !== iova) throw einval("range bisects a mapping at its start");
      const b = this.dmas.find(u64(iova + size - 1n), 0n);
      if (b && u64(b.iova + b.size) !== u64(iova + size)) throw einval("range bisects a mapping at its end");
    }
    const end = u64(iova + size);
    const first = this.dmas.firstIndex(iova, size);
    let last = first;
    if (first >= 0) {
      while (last < this.dmas.count) {
        const dma = this.dmas.at(last)!;
        if (dma.iova >= end) break;
        if (!this.v2 && iova > dma.iova) break;
        last++;
      }
    }
    const hit = first >= 0 ? this.dmas.all().slice(first, last) : [];
    if (invalidateVaddr) {
      let unmapped = 0n;
      for (const dma of hit) {
        if (dma.vaddrInvalid) {
          throw einval("a mapping's vaddr is already invalid");
        }
      }
      for (const dma of hit) {
        dma.vaddrInvalid = true;
        this.vaddrInvalidCount++;
        unmapped += dma.size;
      }
      return unmapped;
    }
    if (getDirty && req.bitmap) {
      // Linux copies each mapping's bits before removing it; a fault then stops the loop half way. Checking the
      // user bitmap first keeps a failed call free of side effects.
      for (const dma of hit) this.checkUserBitmap(dma, iova, pgsize, req.bitmap.data);
      for (const dma of hit) this.updateUserBitmap(dma, iova, pgsize, req.bitmap.data);
    }
    let unmapped = 0n;
    for (const dma of hit) {
      unmapped += dma.size;
      this.releaseDma(dma);
    }
    if (hit.length > 0) this.dmas.removeRange(first, hit.length);
    return unmapped;
  }

  // ---- dirty tracking (§6.6) --------------------------------------------------------------------

  /** VFIO_IOMMU_DIRTY_PAGES_FLAG_START: allocate a bitmap per mapping (a no-op when already tracking). */
  dirtyStart(): void {
    if (this.dirtyPageTracking) return;
    for (const d of this.dmas.all()) {
      d.bitmap = true;
      d.bits = 0n; // zeroed allocation; no mdev-pinned pages to pre-mark
    }
    this.dirtyPageTracking = true;
  }

  /** VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP */
  dirtyStop(): void {
    if (!this.dirtyPageTracking) return;
    this.dirtyPageTracking = false;
    for (const d of this.dmas.all()) {
      d.bitmap = false;
      d.bits = 0n;
    }
  }

  /** VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP after the ioctl-level checks (`vfio_iova_dirty_bitmap` and before). */
  dirtyGetBitmap(iova: bigint, size: bigint, bitmap: VfioBitmap): void {
    const op = "vfio_iommu_type1_dirty_pages";
    const pgsize = minPageSize(this.pgsizeBitmap);
    const detail = { iova: hex(iova), size: hex(size), pgsize: hex(bitmap.pgsize) };
    if (bitmap.pgsize !== pgsize)
      throw new ErrnoError("EINVAL", op, "bitmap page size is not the minimum page", detail);
    if ((iova & (pgsize - 1n)) !== 0n) throw new ErrnoError("EINVAL", op, "iova not aligned", detail);
    if (size === 0n || (size & (pgsize - 1n)) !== 0n)
      throw new ErrnoError("EINVAL", op, "size zero or unaligned", detail);
    if (!this.dirtyPageTracking) throw new ErrnoError("EINVAL", op, "dirty tracking is not started", detail);
    const a = this.dmas.find(iova, 1n);
    if (a && a.iova !== iova)
      throw new ErrnoError("EINVAL", "vfio_iova_dirty_bitmap", "range bisects a mapping", detail);
    const b = this.dmas.find(u64(iova + size - 1n), 0n);
    if (b && u64(b.iova + b.size) !== u64(iova + size)) {
      throw new ErrnoError("EINVAL", "vfio_iova_dirty_bitmap", "range bisects a mapping", detail);
    }
    const hit = this.dmas.all().filter((d) => d.iova >= iova && d.iova <= iova + size - 1n);
    for (const dma of hit) this.checkUserBitmap(dma, iova, pgsize, bitmap.data);
    for (const dma of hit) {
      this.updateUserBitmap(dma, iova, pgsize, bitmap.data);
      // bitmap_clear of the mapping's own pages, then re-populated with just the mdev-pinned pages (none here).
      // Bits an in-place shift pushed past the pages are not cleared.
      dma.bits &= ~lowBits(this.bitmapWindow(dma, iova, pgsize).nbits);
    }
  }

  private bitmapWindow(
    dma: VfioDma,
    base: bigint,
    pgsize: bigint,
  ): { at: bigint; words: number; shift: number; nbits: bigint } {
    const pgshift = BigInt(pgsize.toString(2).length - 1);
    const nbits = dma.size >> pgshift;
    const bitOffset = (dma.iova - base) >> pgshift;
    const copyOffset = bitOffset / 64n;
    const shift = Number(bitOffset % 64n);
    const words = Number((nbits + BigInt(shift) + 63n) / 64n);
    return { at: copyOffset * 8n, words, shift, nbits };
  }

  private checkUserBitmap(dma: VfioDma, base: bigint, pgsize: bigint, data: bigint): void {
    const w = this.bitmapWindow(dma, base, pgsize);
    this.process.checkUser(data + w.at, w.words * 8, true);
  }

  /**
   * `update_user_bitmap`: copy one mapping's bits into the user bitmap at its offset from `base`. When the offset
   * is not a multiple of 64 pages the mapping's own bitmap is shifted left *in place* over the words the copy
   * covers (`bitmap_shift_left` on `nbits + shift` bits, which does not mask its last word), the user's whole
   * leading word is OR-ed into its first word, and those words are copied out: the shifted bits stay in the
   * mapping's bitmap afterwards.
   */
  private updateUserBitmap(dma: VfioDma, base: bigint, pgsize: bigint, data: bigint): void {
    const w = this.bitmapWindow(dma, base, pgsize);
    if (this.numNonPinnedGroups > 0 && dma.iommuMapped) dma.bits |= lowBits(w.nbits);
    if (w.shift !== 0) {
      const span = lowBits(BigInt(w.words) * 64n);
      dma.bits = (dma.bits & ~span) | ((dma.bits << BigInt(w.shift)) & span);
      const leftover = new DataView(this.process.readUser(data + w.at, 8).buffer).getBigUint64(0, true);
      dma.bits |= leftover;
    }
    const out = new Uint8Array(w.words * 8);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < w.words; i++) dv.setBigUint64(i * 8, (dma.bits >> BigInt(i * 64)) & U64_MAX, true);
    this.process.writeUser(data + w.at, out);
  }

  /** `vfio_iommu_populate_bitmap_full`: every page of every mapping dirty. */
  private populateBitmapFull(): void {
    const pgsize = minPageSize(this.pgsizeBitmap);
    const pgshift = BigInt(pgsize.toString(2).length - 1);
    for (const d of this.dmas.all()) d.bits |= lowBits(d.size >> pgshift);
  }

  // ---- GET_INFO (§6.2) --------------------------------------------------------------------------

  /** `vfio_iommu_type1_get_info` minus the copies: flags, page sizes and the (unshifted) cap chain. */
  getInfo(): Type1Info {
    const caps = new CapChain();
    const mig = caps.add(CAP_MIGRATION_SIZE, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1);
    mig.setUint32(8, 0, true);
    mig.setBigUint64(16, minPageSize(this.pgsizeBitmap), true);
    mig.setBigUint64(24, DIRTY_BITMAP_SIZE_MAX, true);
    const avail = caps.add(CAP_DMA_AVAIL_SIZE, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1);
    avail.setUint32(8, this.dmaAvail >>> 0, true);
    if (this.iovaList.length > 0) {
      const n = this.iovaList.length;
      const c = caps.add(CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * n, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1);
      c.setUint32(8, n, true);
      this.iovaList.forEach((r, i) => {
        c.setBigUint64(CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * i, r.start, true);
        c.setBigUint64(CAP_IOVA_RANGE_BASE + IOVA_RANGE_SIZE * i + 8, r.end, true);
      });
    }
    if (this.env.seedResvCaps) {
      for (const r of this.reservedRanges()) {
        const c = caps.add(CAP_RESV_IOVA_RANGE_SIZE, IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE, 1);
        c.setBigUint64(8, r.start, true);
        c.setBigUint64(16, r.end, true);
      }
    }
    return {
      flags: VFIO_IOMMU_INFO_PGSIZES | (caps.size > 0 ? VFIO_IOMMU_INFO_CAPS : 0),
      iovaPgsizes: this.pgsizeBitmap,
      caps,
    };
  }

  /**
   * The seed's view (not upstream): every reserved range of the attached groups that type1 keeps out of the
   * IOVA list (DIRECT_RELAXABLE is usable, so not listed), by start, duplicates folded.
   */
  reservedRanges(): IovaRange[] {
    const all = this.groups()
      .flatMap((g) => this.env.iommu.getGroupResvRegions(g))
      .filter((r) => r.type !== "direct-relaxable")
      .map((r) => ({ start: r.start, end: r.start + r.length - 1n }))
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0));
    return all.filter((r, i) => i === 0 || r.start !== all[i - 1]!.start || r.end !== all[i - 1]!.end);
  }

  /** A picture of the state a failed call must not change. */
  snapshot(): Type1Snapshot {
    return {
      dmas: this.dmas
        .all()
        .map(
          (d) =>
            `${hex(d.iova)}+${hex(d.size)}@${hex(d.vaddr)} p${d.prot} ${d.iommuMapped ? "m" : "-"}${d.vaddrInvalid ? "i" : "-"}${d.bitmap ? `b${d.bits.toString(16)}` : "-"} ${d.runs.map((r) => `${hex(r.phys)}x${r.pages}`).join(",")}`,
        ),
      dmaAvail: this.dmaAvail,
      iovaList: this.iovaList.map((r) => `${hex(r.start)}-${hex(r.end)}`),
      pgsizeBitmap: hex(this.pgsizeBitmap),
      dirty: this.dirtyPageTracking,
      vaddrInvalid: this.vaddrInvalidCount,
      lockedVm: this.process.lockedVm,
      domains: this.domains.map((d) => `${d.domain.id}:${d.groups.map((g) => g.id).join(",")}`),
    };
  }
}
