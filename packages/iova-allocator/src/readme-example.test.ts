import { expect, it } from "vitest";
import { IovaDomain } from "./index.js";

// The example of README.md, kept runnable.
it("README example", () => {
  // dma-iommu's numbers for 4 KiB pages and an aperture starting at 0: pfn 0 is never handed out.
  const iovad = new IovaDomain({ granule: 4096, startPfn: 1, cpus: 2 });
  iovad.reserve(0xfee00, 0xfeeff); // the x86 MSI window [0xfee00000, 0xfeefffff]

  const r = iovad.alloc(16, 0xfffff, true); // 16 pages below 4 GiB, start aligned to 16
  expect(r).toEqual({ pfnLo: 0xffff0, pfnHi: 0xfffff });

  const pfn = iovad.allocFast(3, 0xfffff, true, 1); // 3 rounds up to 4 granules, aligned to 4
  expect(pfn).toBe(0xfffec);
  iovad.freeFast(pfn, 3, 1); // into CPU 1's magazine; the range stays allocated
  expect(iovad.find(pfn)).toEqual({ pfnLo: 0xfffec, pfnHi: 0xfffef });
  expect(iovad.allocFast(3, 0xfffff, true, 1)).toBe(pfn); // reused from the cache

  iovad.free(r!.pfnLo + 5); // any pfn inside frees the whole range
  expect([...iovad]).toEqual([
    { pfnLo: 0xfee00, pfnHi: 0xfeeff },
    { pfnLo: 0xfffec, pfnHi: 0xfffef },
  ]);
  expect(iovad.count).toBe(2);
});
