/**
 * Attaching and detaching groups (`vfio_iommu_type1_attach_group`, `vfio_iommu_type1_detach_group`,
 * `vfio_iommu_type1_release`, type1 6.1): a domain per group or a compatible one reused, the aperture and
 * reserved-region checks against existing mappings, the valid IOVA list, the MSI cookie, the page-size
 * bitmap, and replaying existing mappings into a new domain. Reference §6.8.
 */
import {
  ErrnoError,
  IOMMU_CACHE,
  IOMMU_READ,
  IOMMU_WRITE,
  type IommuDomain,
  type IommuGroup,
  isErrno,
  PAGE_MASK,
  PAGE_SIZE,
  type ResvRegion,
  U64_MAX,
} from "@iommu/core";
import { populateBitmapFull } from "./dirty.js";
import { aperExpand, aperResize, findSwMsi, type IovaRange, resvExclude } from "./iova-list.js";
import { hex, type VfioDomain, type VfioIommu } from "./state.js";
import { unmapUnpinAll } from "./unmap.js";

/** `vfio_iommu_type1_attach_group` */
export function attachGroup(s: VfioIommu, group: IommuGroup): void {
  const op = "vfio_iommu_type1_attach_group";
  const { iommu } = s.env;
  // 6.1 would sleep in the replay until every vaddr is valid again; a model cannot sleep, so it
  // fails as 6.2 does.
  if (s.vaddrInvalidCount > 0) {
    throw new ErrnoError("EBUSY", op, "mappings with invalidated vaddr exist", { count: s.vaddrInvalidCount });
  }
  if (s.groups().includes(group)) {
    throw new ErrnoError("EINVAL", op, "group already attached to this container", { group: group.id });
  }
  const first = group.devices[0];
  if (!first?.iommu) throw new ErrnoError("EIO", op, "group has no IOMMU-backed device", { group: group.id });
  let domain: IommuDomain;
  try {
    domain = iommu.domainAlloc(first.iommu.ops, "unmanaged");
  } catch (e) {
    // iommu_domain_alloc returned NULL: type1 answers -EIO. Anything but an errno is a bug and goes on up.
    if (!isErrno(e)) throw e;
    throw new ErrnoError("EIO", op, "iommu_domain_alloc failed", { group: group.id }, { cause: e });
  }
  if (s.nesting) {
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
    if (aperConflict(s, geo.apertureStart, geo.apertureEnd)) {
      throw new ErrnoError("EINVAL", "vfio_iommu_aper_conflict", "aperture conflicts with existing mappings", {
        apertureStart: hex(geo.apertureStart),
        apertureEnd: hex(geo.apertureEnd),
      });
    }
    const resv = iommu.getGroupResvRegions(group);
    const conflict = resvConflict(s, resv);
    if (conflict) {
      throw new ErrnoError("EINVAL", "vfio_iommu_resv_conflict", "reserved region overlaps a mapping", {
        start: hex(conflict.start),
        length: hex(conflict.length),
        type: conflict.type,
      });
    }
    const copy = resvExclude(aperResize(s.iovaList, geo.apertureStart, geo.apertureEnd), resv);
    if (!copy) throw new ErrnoError("EINVAL", "vfio_iommu_resv_exclude", "no usable IOVA left", { group: group.id });
    const swMsiBase = findSwMsi(resv);
    if (!s.env.params.allowUnsafeInterrupts && !iommu.groupHasIsolatedMsi(group)) {
      s.process.klog.push(
        `${op}: No interrupt remapping support.  Use the module param "allow_unsafe_interrupts" to enable VFIO IOMMU support on this platform`,
      );
      throw new ErrnoError("EPERM", op, "no interrupt remapping support", { group: group.id });
    }
    const enforceCacheCoherency = domain.driver.enforceCacheCoherency?.() ?? false;
    // Reuse a compatible domain: same driver, same coherency enforcement.
    for (const d of s.domains) {
      if (d.domain.ops !== domain.ops || d.enforceCacheCoherency !== enforceCacheCoherency) continue;
      iommu.detachGroup(domain, group);
      try {
        iommu.attachGroup(d.domain, group);
      } catch (e) {
        // Any errno (EMEDIUMTYPE, EINVAL, ...) means "not this domain": back to the group's own.
        if (!isErrno(e)) throw e;
        iommu.attachGroup(domain, group);
        continue;
      }
      attachedTo = d.domain;
      d.groups.push(group);
      iommu.domainFree(domain);
      s.iovaList = copy;
      s.numNonPinnedGroups++;
      return;
    }
    const vd: VfioDomain = { domain, groups: [group], enforceCacheCoherency, fgsp: false };
    testDomainFgsp(s, vd);
    replay(s, domain);
    if (swMsiBase !== null) {
      try {
        s.env.getMsiCookie(domain, swMsiBase);
      } catch (e) {
        if (!isErrno(e, "ENODEV")) {
          unmapAllFrom(s, domain);
          throw e;
        }
      }
    }
    s.domains.push(vd);
    updatePgsizeBitmap(s);
    s.iovaList = copy;
    s.numNonPinnedGroups++;
  } catch (e) {
    if (attachedTo === domain) undo();
    throw e;
  }
}

/** `vfio_iommu_type1_detach_group` */
export function detachGroup(s: VfioIommu, group: IommuGroup): void {
  const { iommu } = s.env;
  let copy = s.iovaList.map((r) => ({ ...r }));
  let updateDirtyScope = false;
  const idx = s.domains.findIndex((d) => d.groups.includes(group));
  if (idx >= 0) {
    const vd = s.domains[idx]!;
    iommu.detachGroup(vd.domain, group);
    vd.groups.splice(vd.groups.indexOf(group), 1);
    updateDirtyScope = true;
    if (vd.groups.length === 0) {
      if (s.domains.length === 1) unmapUnpinAll(s);
      iommu.domainFree(vd.domain);
      s.domains.splice(idx, 1);
      copy = aperExpand(
        copy,
        s.domains.map((d) => d.domain.geometry),
      );
      updatePgsizeBitmap(s);
    }
  }
  const refreshed = resvRefresh(s, copy);
  if (refreshed) s.iovaList = refreshed;
  if (updateDirtyScope) {
    s.numNonPinnedGroups--;
    if (s.dirtyPageTracking) populateBitmapFull(s);
  }
}

/** `vfio_iommu_type1_release`: the container let go of the backend. */
export function release(s: VfioIommu): void {
  unmapUnpinAll(s);
  for (const vd of s.domains.splice(0)) {
    for (const g of vd.groups) s.env.iommu.detachGroup(vd.domain, g);
    s.env.iommu.domainFree(vd.domain);
  }
  s.iovaList = [];
}

/** `vfio_iommu_aper_conflict` */
function aperConflict(s: VfioIommu, start: bigint, end: bigint): boolean {
  const list = s.iovaList;
  if (list.length === 0) return false;
  const first = list[0]!;
  const last = list[list.length - 1]!;
  if (start > last.end || end < first.start) return true;
  if (start > first.start && s.dmas.find(first.start, start - first.start)) return true;
  if (end < last.end && s.dmas.find(end + 1n, last.end - end)) return true;
  return false;
}

/** `vfio_iommu_resv_conflict` */
function resvConflict(s: VfioIommu, regions: readonly ResvRegion[]): ResvRegion | null {
  for (const r of regions) {
    if (r.type === "direct-relaxable") continue;
    if (s.dmas.find(r.start, r.length)) return r;
  }
  return null;
}

/** `vfio_iommu_resv_refresh`: rebuild the list from the copy's span minus all remaining groups' regions. */
function resvRefresh(s: VfioIommu, copy: readonly IovaRange[]): IovaRange[] | null {
  if (copy.length === 0) return null;
  const regions = s.groups().flatMap((g) => s.env.iommu.getGroupResvRegions(g));
  return resvExclude(aperResize([], copy[0]!.start, copy[copy.length - 1]!.end), regions);
}

/** `vfio_update_pgsize_bitmap`: AND of the domains; sub-page sizes hidden behind PAGE_SIZE. */
function updatePgsizeBitmap(s: VfioIommu): void {
  let bm = U64_MAX;
  for (const d of s.domains) bm &= d.domain.pgsizeBitmap;
  if ((bm & ~PAGE_MASK) !== 0n) bm = (bm & PAGE_MASK) | PAGE_SIZE;
  s.pgsizeBitmap = bm;
}

/**
 * `vfio_test_domain_fgsp` (≤6.2 shape: probes at IOVA 0): map two pages, unmap one; if the IOMMU took
 * out more than one page the domain has fine-grained superpages (AMD-style). The two kernel pages are
 * freed again, and a failed page allocation skips the probe (Linux: `if (!pages) return;`).
 */
function testDomainFgsp(s: VfioIommu, vd: VfioDomain): void {
  const pages = s.env.kernelPages;
  if (!pages?.allocPages) return;
  let phys: bigint;
  try {
    phys = pages.allocPages(2);
  } catch (e) {
    if (isErrno(e)) return;
    throw e;
  }
  const { iommu } = s.env;
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
function replay(s: VfioIommu, domain: IommuDomain): void {
  const done: { iova: bigint; len: bigint }[] = [];
  try {
    for (const dma of s.dmas.all()) {
      for (const run of dma.runs) {
        const iova = dma.iova + run.offset;
        const len = BigInt(run.pages) * PAGE_SIZE;
        s.env.iommu.map(domain, iova, run.phys, len, dma.prot | IOMMU_CACHE);
        done.push({ iova, len });
      }
    }
  } catch (e) {
    for (const m of done) s.env.iommu.unmap(domain, m.iova, m.len);
    throw e;
  }
}

/** Undo `replay` when a later step of the attach fails. */
function unmapAllFrom(s: VfioIommu, domain: IommuDomain): void {
  for (const dma of s.dmas.all()) {
    for (const run of dma.runs) s.env.iommu.unmap(domain, dma.iova + run.offset, BigInt(run.pages) * PAGE_SIZE);
  }
}
