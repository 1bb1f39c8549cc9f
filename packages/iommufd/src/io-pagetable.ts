/**
 * `struct io_pagetable` (io_pagetable.c, 6.12): the IOVA space of an IOAS — areas (each a slice of an
 * `IoptPages`), the allowed and reserved interval trees, the domains it is loaded into and the IOVA
 * alignment they impose. Every operation either completes or leaves no trace (except as Linux: UNMAP
 * removes whole areas one by one and stops at the first one that sticks out).
 */
import {
  ErrnoError,
  ffs64,
  fls64,
  IOMMU_WRITE,
  type IommuDomain,
  iommuMap,
  iommuUnmap,
  PAGE_SHIFT,
  PAGE_SIZE,
  type ResvRegion,
  U64_MAX,
} from "@iommu/core";
import { holes, type IntervalNode, IntervalTree, type Span, spans } from "./interval-tree.js";
import { IoptPages } from "./iopt-pages.js";
import type { UserMemory } from "./user-memory.js";

/** HPAGE_SIZE with 4 KiB pages (x86-64 and arm64): the largest alignment iopt_alloc_iova aims for. */
export const HPAGE_SIZE = 2n << 20n;
/** SIZE_MAX - PAGE_SIZE: the longest mapping iopt_alloc_pages accepts. */
const MAX_LENGTH = U64_MAX - PAGE_SIZE;

/** `struct iopt_area`: IOVA [start, last] backed by bytes of `pages` from `startByte`. */
export interface IoptArea extends IntervalNode {
  readonly start: bigint;
  readonly last: bigint;
  readonly pages: IoptPages;
  /** `page_offset`: start byte within its first page. */
  readonly pageOffset: bigint;
  /** `pages_node`: first and last page index of `pages` the area covers. */
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** IOMMU_READ/WRITE/CACHE. */
  readonly prot: number;
}

interface Reserved extends IntervalNode {
  readonly owner: object;
}

/** One slice of pages to map (`struct iopt_pages_list`). */
export interface PagesSlice {
  readonly pages: IoptPages;
  readonly startByte: bigint;
  readonly length: bigint;
}

const u64 = (x: bigint): bigint => BigInt.asUintN(64, x);
const alignUp = (x: bigint, a: bigint): bigint => u64(x + a - 1n) & ~(a - 1n);
const roundupPowOfTwo = (x: bigint): bigint => (x <= 1n ? 1n : 1n << BigInt(fls64(x - 1n) + 1));

export class IoPagetable {
  readonly areas = new IntervalTree<IoptArea>(true);
  readonly allowed = new IntervalTree<IntervalNode>(true);
  readonly reserved = new IntervalTree<Reserved>(false);
  /** Domains every area is mapped into (`iopt->domains`), in attach order. */
  readonly domains: IommuDomain[] = [];
  /** `iova_alignment`: 1 for a bare IOAS, a domain's smallest page once one is loaded. */
  iovaAlignment = 1n;
  /** IOMMU_OPTION_HUGE_PAGES = 0: map PAGE_SIZE at a time, alignment at least PAGE_SIZE. */
  disableLargePages = false;

  // ---- lookups ------------------------------------------------------------------------------

  /** `iopt_area_start_byte`: byte offset into the area's pages of `iova`. */
  static startByte(area: IoptArea, iova: bigint): bigint {
    return (BigInt(area.firstIndex) << PAGE_SHIFT) + area.pageOffset + (iova - area.start);
  }

  /** The IOVA ranges a user may use: the holes of the reserved tree over the whole u64 space. */
  iovaRanges(): Span[] {
    return spans([this.reserved], 0n, U64_MAX).filter((s) => s.isHole);
  }

  // ---- map ----------------------------------------------------------------------------------

  /**
   * `iopt_map_user_pages`: map `length` bytes of user memory at `uptr` to `iova` (null: allocate one).
   * Pages are pinned only if a domain is loaded. Returns the IOVA.
   */
  mapUser(mm: UserMemory, uptr: bigint, length: bigint, iova: bigint | null, prot: number, mmAccount: boolean): bigint {
    // 6.12's iopt_alloc_pages checks the length before the user range's wrap.
    if (length === 0n || length > MAX_LENGTH) {
      throw new ErrnoError("EINVAL", "iopt_alloc_pages", "length is 0 or too large", { length });
    }
    if (uptr + length > U64_MAX) {
      throw new ErrnoError("EOVERFLOW", "iopt_alloc_pages", "user_va + length wraps", { uptr, length });
    }
    const down = uptr & ~(PAGE_SIZE - 1n);
    const startByte = uptr - down;
    const npages = Number((length + startByte + PAGE_SIZE - 1n) >> PAGE_SHIFT);
    const pages = new IoptPages(mm, down, npages, (prot & IOMMU_WRITE) !== 0);
    if (mmAccount && pages.accountMode === "user") pages.accountMode = "mm";
    return this.mapPages([{ pages, startByte, length }], length, iova, prot);
  }

  /**
   * `iopt_map_pages`: insert one area per slice at consecutive IOVAs from `iova` (null: `iopt_alloc_iova`),
   * then fill every domain. EINVAL (length 0 or unaligned), EOVERFLOW, ENOSPC, EEXIST, EPERM, or a pin error.
   */
  mapPages(list: readonly PagesSlice[], length: bigint, iova: bigint | null, prot: number): bigint {
    const op = "iopt_alloc_area_pages";
    if ((length & (this.iovaAlignment - 1n)) !== 0n || length === 0n) {
      throw new ErrnoError("EINVAL", op, "length is 0 or not a multiple of the IOVA alignment", {
        length,
        alignment: this.iovaAlignment,
      });
    }
    let at: bigint;
    if (iova === null) {
      const first = list[0]!;
      at = this.allocIova(first.pages.uptr + first.startByte, length);
    } else {
      this.checkIova(iova, length);
      at = iova;
    }
    const areas: IoptArea[] = [];
    let cur = at;
    for (const s of list) {
      areas.push(this.makeArea(s, cur, prot));
      cur += s.length;
    }
    for (const a of areas) this.areas.insert(a);
    const filled: IoptArea[] = [];
    try {
      for (const a of areas) {
        this.fillArea(a);
        filled.push(a);
      }
    } catch (e) {
      for (const a of filled) this.unfillArea(a);
      for (const a of areas) this.areas.remove(a);
      throw e;
    }
    for (const a of areas) a.pages.refs++;
    return at;
  }

  /** `iopt_insert_area`'s checks, building the area without inserting it. */
  private makeArea(s: PagesSlice, iova: bigint, prot: number): IoptArea {
    const op = "iopt_insert_area";
    if (prot & IOMMU_WRITE && !s.pages.writable) {
      throw new ErrnoError("EPERM", op, "writable area over read-only pages", {});
    }
    const pageOffset = s.startByte % PAGE_SIZE;
    if ((pageOffset & (this.iovaAlignment - 1n)) !== 0n) {
      throw new ErrnoError("EINVAL", op, "user address offset not aligned to the IOVA alignment", {
        pageOffset,
        alignment: this.iovaAlignment,
      });
    }
    const last = iova + s.length - 1n;
    if (last > U64_MAX) throw new ErrnoError("EOVERFLOW", op, "iova + length wraps", { iova });
    const lastByte = s.startByte + s.length - 1n;
    return {
      start: iova,
      last,
      pages: s.pages,
      pageOffset,
      firstIndex: Number(s.startByte >> PAGE_SHIFT),
      lastIndex: Number(lastByte >> PAGE_SHIFT),
      prot,
    };
  }

  /** `iopt_check_iova`: a fixed IOVA must be aligned, not wrap, miss reserved ranges (EINVAL) and areas (EEXIST). */
  checkIova(iova: bigint, length: bigint): void {
    const op = "iopt_check_iova";
    if ((iova & (this.iovaAlignment - 1n)) !== 0n) {
      throw new ErrnoError("EINVAL", op, "iova not aligned to the IOVA alignment", {
        iova,
        alignment: this.iovaAlignment,
      });
    }
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new ErrnoError("EOVERFLOW", op, "iova + length wraps", { iova, length });
    if (this.reserved.iterFirst(iova, last)) {
      throw new ErrnoError("EINVAL", op, "range intersects a reserved IOVA range", { iova, length });
    }
    if (this.areas.iterFirst(iova, last)) {
      throw new ErrnoError("EEXIST", op, "range intersects a mapping", { iova, length });
    }
  }

  /**
   * `iopt_alloc_iova`: the lowest IOVA >= PAGE_SIZE, inside an allowed range (if any), outside reserved
   * ranges and areas, aligned to min(roundup_pow_of_two(length), the alignment of `addr`, HPAGE_SIZE)
   * and keeping `addr`'s offset in its page. EOVERFLOW (length 0 or >= 2^63 - 1), EINVAL (alignment
   * below the IOAS's), ENOSPC.
   */
  allocIova(addr: bigint, length: bigint): bigint {
    const op = "iopt_alloc_iova";
    const pageOffset = addr % PAGE_SIZE;
    if (length === 0n || length >= U64_MAX / 2n) {
      throw new ErrnoError("EOVERFLOW", op, "length 0 or too large to align", { length });
    }
    let align = roundupPowOfTwo(length);
    if (addr !== 0n) {
      const addrAlign = 1n << BigInt(ffs64(addr));
      if (addrAlign < align) align = addrAlign;
    }
    if (align >= HPAGE_SIZE) align = HPAGE_SIZE;
    if (align < this.iovaAlignment) {
      throw new ErrnoError("EINVAL", op, "allocation alignment below the IOVA alignment", {
        align,
        alignment: this.iovaAlignment,
      });
    }
    const lo = PAGE_SIZE;
    const hi = U64_MAX - PAGE_SIZE;
    const allowedSpans: Span[] = this.allowed.isEmpty()
      ? [{ isHole: false, start: lo, last: hi }]
      : spans([this.allowed], lo, hi);
    const fits = (s: Span, wantHole: boolean): bigint | null => {
      if (s.isHole !== wantHole || s.last - s.start < length - 1n) return null;
      const start = alignUp(s.start, align) | pageOffset;
      if (start > s.last || s.last - start < length - 1n) return null;
      return start;
    };
    for (const a of allowedSpans) {
      const from = fits(a, false);
      if (from === null) continue;
      for (const h of holes([this.reserved, this.areas], from, a.last)) {
        const at = fits(h, true);
        if (at !== null) return at;
      }
    }
    throw new ErrnoError("ENOSPC", op, "no free IOVA range fits", { length, align });
  }

  // ---- copy and unmap -----------------------------------------------------------------------

  /** `iopt_get_pages`: the slices under [iova, iova + length), which contiguous areas must cover (ENOENT). */
  getPages(iova: bigint, length: bigint): PagesSlice[] {
    const op = "iopt_get_pages";
    if (length === 0n) throw new ErrnoError("EINVAL", op, "length 0", {});
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new ErrnoError("EOVERFLOW", op, "iova + length wraps", { iova, length });
    const out: PagesSlice[] = [];
    let cur = iova;
    let area = this.areas.iterFirst(iova, iova);
    while (area && area.start <= cur) {
      const end = last < area.last ? last : area.last;
      out.push({ pages: area.pages, startByte: IoPagetable.startByte(area, cur), length: end - cur + 1n });
      if (end === last) return out;
      cur = end + 1n;
      area = this.areas.iterFirst(cur, cur);
    }
    throw new ErrnoError("ENOENT", op, "the range is not fully mapped by contiguous areas", { iova, length, at: cur });
  }

  /**
   * `iopt_unmap_iova_range`: unmap every area inside [start, last], lowest first. An area sticking out of
   * the range stops it with ENOENT (areas before it stay unmapped, as Linux). Returns the bytes unmapped
   * (0 when nothing is there: the IOAS ioctl turns that into ENOENT, VFIO's compat does not).
   */
  unmapRange(start: bigint, last: bigint): bigint {
    let unmapped = 0n;
    const done: IoptArea[] = [];
    try {
      for (const area of this.areas.intersecting(start, last)) {
        if (area.start < start || area.last > last) {
          throw new ErrnoError("ENOENT", "iopt_unmap_iova_range", "a mapping extends past the range", {
            start,
            last,
            area: [area.start, area.last],
            unmapped,
          });
        }
        this.unfillArea(area);
        area.pages.refs--;
        done.push(area);
        unmapped += area.last - area.start + 1n;
      }
    } finally {
      // The areas unmapped so far leave the tree, in one cut (they are neighbours in start order).
      this.areas.removeAll(done);
    }
    return unmapped;
  }

  /** `iopt_unmap_iova`: EINVAL for length 0, EOVERFLOW on wrap, else `unmapRange`. */
  unmapIova(iova: bigint, length: bigint): bigint {
    if (length === 0n) throw new ErrnoError("EINVAL", "iopt_unmap_iova", "length 0", {});
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new ErrnoError("EOVERFLOW", "iopt_unmap_iova", "iova + length wraps", { iova, length });
    return this.unmapRange(iova, last);
  }

  /** `iopt_unmap_all`: everything; an empty IOAS unmaps 0 bytes successfully. */
  unmapAll(): bigint {
    return this.unmapRange(0n, U64_MAX);
  }

  /**
   * `iopt_cut_iova` (VFIO type1 v1 compat): split the areas containing each IOVA so that IOVA becomes an
   * area's last byte. EINVAL when the cut is not aligned or a domain may hold huge pages; stops at the
   * first error (earlier cuts stay, as Linux).
   */
  cutIova(iovas: readonly bigint[]): void {
    for (const iova of iovas) {
      const area = this.areas.iterFirst(iova, iova);
      if (area) this.splitArea(area, iova);
    }
  }

  /** `iopt_area_split`: [start, iova] and [iova + 1, last] over the same pages. */
  private splitArea(area: IoptArea, iova: bigint): void {
    const op = "iopt_area_split";
    if (iova === area.start || iova === area.last) return;
    const newStart = iova + 1n;
    const mask = this.iovaAlignment - 1n;
    if ((newStart & mask) !== 0n || (IoPagetable.startByte(area, newStart) & mask) !== 0n) {
      throw new ErrnoError("EINVAL", op, "cut not aligned to the IOVA alignment", { iova });
    }
    if (this.domains.length > 0 && !this.disableLargePages) {
      throw new ErrnoError("EINVAL", op, "a domain may map this area with huge pages", { iova });
    }
    const lhs = this.makeArea(
      { pages: area.pages, startByte: IoPagetable.startByte(area, area.start), length: newStart - area.start },
      area.start,
      area.prot,
    );
    const rhs = this.makeArea(
      { pages: area.pages, startByte: IoPagetable.startByte(area, newStart), length: area.last - iova },
      newStart,
      area.prot,
    );
    this.areas.remove(area);
    this.areas.insert(lhs);
    this.areas.insert(rhs);
    area.pages.refs++;
    // Holds need no change: with a domain loaded, huge pages are off and the alignment is PAGE_SIZE, so
    // the halves never share a page.
  }

  // ---- allowed and reserved ranges ----------------------------------------------------------

  /** `iopt_set_allow_iova`: replace the allowed set; EADDRINUSE (and no change) if one intersects a reserved range. */
  setAllowIova(ranges: readonly IntervalNode[]): void {
    for (const r of ranges) {
      if (this.reserved.iterFirst(r.start, r.last)) {
        throw new ErrnoError("EADDRINUSE", "iopt_set_allow_iova", "allowed range intersects a reserved range", {
          start: r.start,
          last: r.last,
        });
      }
    }
    this.allowed.clear();
    for (const r of ranges) this.allowed.insert({ start: r.start, last: r.last });
  }

  /** `iopt_reserve_iova`: EADDRINUSE if an area or an allowed range intersects. */
  reserveIova(start: bigint, last: bigint, owner: object): void {
    if (this.areas.iterFirst(start, last) || this.allowed.iterFirst(start, last)) {
      throw new ErrnoError("EADDRINUSE", "iopt_reserve_iova", "range is mapped or allowed", { start, last });
    }
    this.reserved.insert({ start, last, owner });
  }

  /** `iopt_remove_reserved_iova`: drop every reserved range of `owner`. */
  removeReserved(owner: object): void {
    for (const r of [...this.reserved.all()]) if (r.owner === owner) this.reserved.remove(r);
  }

  /**
   * `iopt_table_enforce_dev_resv_regions`: reserve a device's regions (DIRECT_RELAXABLE excepted), owned by
   * `owner`. Returns the SW_MSI window start, or null. EADDRINUSE / EINVAL (SW_MSI mixed with MSI, or two)
   * with nothing reserved.
   */
  enforceDevResvRegions(regions: readonly ResvRegion[], owner: object): bigint | null {
    let hwMsi = 0;
    let swMsi = 0;
    let swMsiStart: bigint | null = null;
    try {
      for (const r of regions) {
        if (r.type === "direct-relaxable") continue;
        if (r.type === "msi") hwMsi++;
        if (r.type === "sw-msi") {
          swMsiStart = r.start;
          swMsi++;
        }
        this.reserveIova(r.start, r.start + r.length - 1n, owner);
      }
      if ((swMsi && hwMsi) || swMsi > 1) {
        throw new ErrnoError("EINVAL", "iopt_table_enforce_dev_resv_regions", "insane MSI region combination", {
          swMsi,
          hwMsi,
        });
      }
    } catch (e) {
      this.removeReserved(owner);
      throw e;
    }
    return swMsiStart;
  }

  // ---- domains ------------------------------------------------------------------------------

  /**
   * `iopt_table_add_domain`: load a domain. Its smallest page becomes the alignment (EINVAL above
   * PAGE_SIZE, EADDRINUSE if an area breaks it), IOVAs outside its aperture are reserved (EADDRINUSE
   * over an area), and every area is mapped into it (pinning if it is the first). No trace on failure.
   */
  addDomain(domain: IommuDomain): void {
    const op = "iopt_table_add_domain";
    if (this.domains.includes(domain)) throw new ErrnoError("EEXIST", op, "domain already loaded", {});
    const minPage = 1n << BigInt(ffs64(domain.pgsizeBitmap));
    const newAlign = minPage > this.iovaAlignment ? minPage : this.iovaAlignment;
    if (newAlign > PAGE_SIZE) {
      throw new ErrnoError("EINVAL", op, "domain's smallest page is larger than PAGE_SIZE", { minPage });
    }
    if (newAlign !== this.iovaAlignment) this.checkIovaAlignment(newAlign);
    const geo = domain.geometry;
    try {
      if (geo.apertureStart !== 0n) this.reserveIova(0n, geo.apertureStart - 1n, domain);
      if (geo.apertureEnd !== U64_MAX) this.reserveIova(geo.apertureEnd + 1n, U64_MAX, domain);
      this.fillDomain(domain);
    } catch (e) {
      this.removeReserved(domain);
      throw e;
    }
    this.iovaAlignment = newAlign;
    this.domains.push(domain);
  }

  /** `iopt_table_remove_domain`: unmap every area from it (unpinning with the last domain), drop its reservations. */
  removeDomain(domain: IommuDomain): void {
    const i = this.domains.indexOf(domain);
    if (i < 0) return;
    this.domains.splice(i, 1);
    for (const a of this.areas.all()) {
      this.unmapAreaFrom(a, domain);
      if (this.domains.length === 0) a.pages.release(a.firstIndex, a.lastIndex);
    }
    this.removeReserved(domain);
    this.iovaAlignment = this.calculateIovaAlignment();
  }

  /** `iopt_check_iova_alignment`: every area's iova, length and page offset conform (else EADDRINUSE). */
  private checkIovaAlignment(align: bigint): void {
    const mask = align - 1n;
    for (const a of this.areas.all()) {
      if ((a.start & mask) !== 0n || ((a.last - a.start + 1n) & mask) !== 0n || (a.pageOffset & mask) !== 0n) {
        throw new ErrnoError("EADDRINUSE", "iopt_check_iova_alignment", "a mapping is not aligned for the domain", {
          area: [a.start, a.last],
          align,
        });
      }
    }
  }

  /** `iopt_calculate_iova_alignment`. */
  private calculateIovaAlignment(): bigint {
    let align = this.disableLargePages ? PAGE_SIZE : 1n;
    for (const d of this.domains) {
      const p = 1n << BigInt(ffs64(d.pgsizeBitmap));
      if (p > align) align = p;
    }
    return align;
  }

  /** `iopt_disable_large_pages`: EINVAL once a domain holds mappings; alignment becomes PAGE_SIZE. */
  disableHugePages(): void {
    if (this.disableLargePages) return;
    if (this.domains.length > 0 && !this.areas.isEmpty()) {
      throw new ErrnoError("EINVAL", "iopt_disable_large_pages", "domains already have pages mapped", {});
    }
    if (PAGE_SIZE > this.iovaAlignment) this.checkIovaAlignment(PAGE_SIZE);
    this.disableLargePages = true;
    this.iovaAlignment = this.calculateIovaAlignment();
  }

  /** `iopt_enable_large_pages`. */
  enableHugePages(): void {
    this.disableLargePages = false;
    this.iovaAlignment = this.calculateIovaAlignment();
  }

  // ---- filling domains ----------------------------------------------------------------------

  /** `iopt_fill_domain`: map every area into a new domain; the first domain pins (GUP, map, then charge). */
  private fillDomain(domain: IommuDomain): void {
    const first = this.domains.length === 0;
    const done: IoptArea[] = [];
    try {
      for (const a of this.areas.all()) {
        if (first) a.pages.hold(a.firstIndex, a.lastIndex);
        try {
          this.mapAreaInto(a, domain);
        } catch (e) {
          if (first) a.pages.release(a.firstIndex, a.lastIndex);
          throw e;
        }
        try {
          if (first) a.pages.updatePinned();
        } catch (e) {
          this.unmapAreaFrom(a, domain);
          a.pages.release(a.firstIndex, a.lastIndex);
          throw e;
        }
        done.push(a);
      }
    } catch (e) {
      for (const a of done) {
        this.unmapAreaFrom(a, domain);
        if (first) a.pages.release(a.firstIndex, a.lastIndex);
      }
      throw e;
    }
  }

  /** `iopt_area_fill_domains`: pin a new area (if any domain is loaded), map it into every domain, then charge. */
  private fillArea(area: IoptArea): void {
    if (this.domains.length === 0) return;
    area.pages.hold(area.firstIndex, area.lastIndex);
    const done: IommuDomain[] = [];
    try {
      for (const d of this.domains) {
        this.mapAreaInto(area, d);
        done.push(d);
      }
      area.pages.updatePinned();
    } catch (e) {
      for (const d of done) this.unmapAreaFrom(area, d);
      area.pages.release(area.firstIndex, area.lastIndex);
      throw e;
    }
  }

  /** `iopt_area_unfill_domains`. */
  private unfillArea(area: IoptArea): void {
    if (this.domains.length === 0) return;
    for (const d of this.domains) this.unmapAreaFrom(area, d);
    area.pages.release(area.firstIndex, area.lastIndex);
  }

  /** Map an area's pinned pages into one domain in physically contiguous runs (PAGE_SIZE pieces without huge pages). */
  private mapAreaInto(area: IoptArea, domain: IommuDomain): void {
    const runs: { iova: bigint; phys: bigint; len: bigint }[] = [];
    const areaFirstByte = IoPagetable.startByte(area, area.start);
    const areaEndByte = IoPagetable.startByte(area, area.last) + 1n;
    for (const r of area.pages.pinnedRuns(area.firstIndex, area.lastIndex)) {
      const runByte = BigInt(r.first) << PAGE_SHIFT;
      let from = runByte > areaFirstByte ? runByte : areaFirstByte;
      const runEnd = BigInt(r.first + r.count) << PAGE_SHIFT;
      const to = runEnd < areaEndByte ? runEnd : areaEndByte;
      while (from < to) {
        const pieceEnd = this.disableLargePages ? ((from >> PAGE_SHIFT) + 1n) << PAGE_SHIFT : to;
        const end = pieceEnd < to ? pieceEnd : to;
        const iova = area.start + (from - areaFirstByte);
        const phys = r.phys + (from - runByte);
        const prev = runs[runs.length - 1];
        if (prev && !this.disableLargePages && prev.phys + prev.len === phys) prev.len += end - from;
        else runs.push({ iova, phys, len: end - from });
        from = end;
      }
    }
    let mapped = 0n;
    try {
      for (const r of runs) {
        iommuMap(domain, r.iova, r.phys, r.len, area.prot);
        mapped += r.len;
      }
    } catch (e) {
      if (mapped > 0n) iommuUnmap(domain, area.start, mapped);
      throw e;
    }
  }

  /** `iopt_area_unmap_domain`. */
  private unmapAreaFrom(area: IoptArea, domain: IommuDomain): void {
    iommuUnmap(domain, area.start, area.last - area.start + 1n);
  }
}
