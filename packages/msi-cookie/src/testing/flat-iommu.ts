/**
 * Test helper: a tiny driver with 4 KiB pages and a configurable aperture (the core's mock has a
 * fixed 2 GiB one), so the 32-bit-first ("SAC") policy and 64-bit DMA masks can be exercised.
 * Page table = a Map of 4 KiB entries; counts its IOTLB syncs and full flushes.
 */
import type { DomainGeometry, DomainType, DriverDomain, IommuOps, ResvRegion } from "@iommu/core";
import { ErrnoError, gatherAddPage } from "@iommu/core";

export interface FlatDomain extends DriverDomain {
  readonly ptes: Map<bigint, { phys: bigint; prot: number }>;
  readonly syncs: { iotlbSync: number; flushAll: number };
}

export interface FlatIommu {
  readonly ops: IommuOps;
  readonly domains: FlatDomain[];
}

export function createFlatIommu(opts: {
  apertureEnd: bigint;
  resv?: readonly ResvRegion[];
  flushAll?: boolean;
}): FlatIommu {
  const domains: FlatDomain[] = [];
  const PAGE = 0x1000n;
  const ops: IommuOps = {
    name: "flat-iommu",
    pgsizeBitmap: PAGE,
    probeDevice() {},
    deviceGroup: (dev) => dev.name,
    domainAlloc(type: DomainType): DriverDomain | null {
      const paging = type !== "identity" && type !== "blocked";
      const geometry: DomainGeometry = { apertureStart: 0n, apertureEnd: opts.apertureEnd, forceAperture: true };
      const ptes = new Map<bigint, { phys: bigint; prot: number }>();
      const syncs = { iotlbSync: 0, flushAll: 0 };
      const d: FlatDomain = {
        ptes,
        syncs,
        pgsizeBitmap: paging ? PAGE : 0n,
        geometry,
        attachDev() {},
        free() {},
      };
      if (paging) {
        d.mapPages = (iova, paddr, pgsize, count, prot) => {
          for (let i = 0n; i < BigInt(count); i++) {
            if (ptes.has(iova + i * pgsize)) {
              return { mapped: i * pgsize, error: new ErrnoError("EEXIST", "flat_map", "mapped", { iova }) };
            }
            ptes.set(iova + i * pgsize, { phys: paddr + i * pgsize, prot });
          }
          return { mapped: pgsize * BigInt(count), error: null };
        };
        d.unmapPages = (iova, pgsize, count, gather) => {
          let n = 0n;
          for (let i = 0n; i < BigInt(count); i++) {
            if (!ptes.delete(iova + i * pgsize)) break;
            gatherAddPage(gather, iova + i * pgsize, pgsize);
            n += pgsize;
          }
          return n;
        };
        d.iovaToPhys = (iova) => {
          const pte = ptes.get(iova & ~(PAGE - 1n));
          return pte ? pte.phys + (iova & (PAGE - 1n)) : 0n;
        };
        d.iotlbSync = () => {
          syncs.iotlbSync++;
        };
        if (opts.flushAll ?? true) {
          d.flushIotlbAll = () => {
            syncs.flushAll++;
          };
        }
      }
      domains.push(d);
      return d;
    },
    getResvRegions: () => [...(opts.resv ?? [])],
    capable: () => false,
  };
  return { ops: Object.freeze(ops), domains };
}
