/**
 * `iopt_area_fill_domain` / `iopt_area_fill_domains` (pages.c, 6.12): the pages are pinned, mapped into the
 * domain(s), and only then charged (`pfn_reader_update_pinned`), so a domain's map error wins over
 * RLIMIT_MEMLOCK's ENOMEM, and a failed charge leaves nothing mapped, pinned or charged.
 * Seen on the real kernel: linux-6.12-iommufd-compat x86 random-22 (a no-access compat map under memlock 0;
 * opening the device fails EINVAL from VT-d's `__domain_mapping`, not ENOMEM).
 */
import { ERRNO, ErrnoError, IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import { encodeDmaMap, VFIO_IOMMU_MAP_DMA, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU } from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { IommufdCtx } from "./iommufd-ctx.js";
import { iommufdIoctl } from "./iommufd-ioctl.js";
import { BASE, type FakeDomain, testHost, X86 } from "./test-support/hosts.js";

/** The compat container with memlock 0 and no CAP_IPC_LOCK; the fake domain refuses a mapping with no access. */
function compatUnderMemlock0() {
  const host = testHost(X86);
  const alloc = host.driver.ops.domainAlloc.bind(host.driver.ops);
  host.driver.ops.domainAlloc = (type, c) => {
    const d = alloc(type, c) as FakeDomain;
    const map = (d.mapPages as NonNullable<FakeDomain["mapPages"]>).bind(d);
    // as VT-d's __domain_mapping: neither read nor write is EINVAL
    d.mapPages = (iova, paddr, pgsize, pgcount, prot) =>
      prot & (IOMMU_READ | IOMMU_WRITE)
        ? map(iova, paddr, pgsize, pgcount, prot)
        : { mapped: 0n, error: new ErrnoError("EINVAL", "__domain_mapping", "neither read nor write", { prot }) };
    return d;
  };
  host.proc.capIpcLock = false;
  host.proc.rlimitMemlock = 0n;
  const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc, vfioCompat: true });
  ctx.vfioCompatIoasCreate();
  expect(iommufdIoctl(ctx, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
  const map = (iova: bigint, size: bigint, flags: number) =>
    iommufdIoctl(ctx, VFIO_IOMMU_MAP_DMA, encodeDmaMap({ argsz: 32, flags, vaddr: BASE, iova, size }));
  const openDevice = () => ctx.attachDevice(ctx.bindDevice(host.device(1)), ctx.vfioIoasGet());
  const errnoOf = (f: () => unknown) => {
    try {
      f();
      return null;
    } catch (e) {
      return e instanceof ErrnoError ? e.errno : e;
    }
  };
  const mapped = () => [...host.driver.domains].reduce((n, d) => n + d.ptes.size, 0);
  return { host, ctx, map, openDevice, errnoOf, mapped };
}

describe("iopt_area_fill_domain: pin, map, then charge", () => {
  it("a domain's map error wins over RLIMIT_MEMLOCK: a no-access mapping makes the attach EINVAL, not ENOMEM", () => {
    const { host, map, openDevice, errnoOf, mapped } = compatUnderMemlock0();
    expect(map(0x1bff000n, 0x200000n, 0)).toBe(0); // no domain yet: nothing pinned or charged
    expect(errnoOf(openDevice)).toBe(-ERRNO.EINVAL);
    expect({ pinned: host.proc.pinnedVm, locked: host.proc.lockedVm, mapped: mapped() }).toEqual({
      pinned: 0,
      locked: 0,
      mapped: 0,
    });
  });

  it("a readable mapping is mapped first, then the charge fails ENOMEM and the fill unwinds completely", () => {
    const { host, map, openDevice, errnoOf, mapped } = compatUnderMemlock0();
    expect(map(0x100000n, 0x4000n, 3)).toBe(0);
    expect(errnoOf(openDevice)).toBe(-ERRNO.ENOMEM);
    expect({ pinned: host.proc.pinnedVm, locked: host.proc.lockedVm, mapped: mapped() }).toEqual({
      pinned: 0,
      locked: 0,
      mapped: 0,
    });
  });

  it("iopt_area_fill_domains: a map into a loaded domain past the limit is ENOMEM and leaves no PTE", () => {
    const { host, ctx, map, openDevice, mapped } = compatUnderMemlock0();
    openDevice();
    expect(map(0x100000n, 0x4000n, 3)).toBe(-ERRNO.ENOMEM);
    expect(ctx.ioas(ctx.vfioIoasGet()).iopt.areas.isEmpty()).toBe(true);
    expect({ pinned: host.proc.pinnedVm, locked: host.proc.lockedVm, mapped: mapped() }).toEqual({
      pinned: 0,
      locked: 0,
      mapped: 0,
    });
    // with room for exactly these pages, the same map is charged once
    host.proc.rlimitMemlock = 0x4000n;
    expect(map(0x100000n, 0x4000n, 3)).toBe(0);
    expect({ pinned: host.proc.pinnedVm, mapped: mapped() }).toEqual({ pinned: 4, mapped: 4 });
  });
});
