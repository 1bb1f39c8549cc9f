/**
 * `iommu_create_device_direct_mappings` (iommu.c 6.1): identity-map a device's DIRECT and
 * DIRECT_RELAXABLE reserved regions into its group's default domain when it joins. Reference §2.2.
 *
 * Linux 6.1 does not yet refuse a blocking domain for such devices (the `require_direct` check
 * arrived ≈6.5; the 6.1/6.2 iommu.c has no such test in `__iommu_attach_device` or claim), so the
 * flag is recorded here for callers and tests but no attach is refused.
 */
import type { Device } from "./device.js";
import type { IommuDomain } from "./domain.js";
import { type ErrnoError, isErrno } from "./errno.js";
import { isDmaApiDomain } from "./iommu-ops.js";
import { iommuIovaToPhys, iommuMap } from "./map.js";
import { minPageSize } from "./pgsize.js";
import type { ResvRegion } from "./resv-region.js";

function alignUp(v: bigint, a: bigint): bigint {
  return (v + a - 1n) & ~(a - 1n);
}

/**
 * Map every page of each direct region that is not mapped yet, in runs, with the region's prot.
 * Start and end are both rounded *up* to the minimum page (so an unaligned head page is skipped,
 * as in Linux). Stops at the first map error and returns it (the probe path ignores it); flushes
 * the IOTLB after a complete pass.
 */
export function createDeviceDirectMappings(
  domain: IommuDomain | null,
  dev: Device,
  regions: readonly ResvRegion[],
): ErrnoError | null {
  for (const r of regions) {
    if (r.type === "direct" && dev.iommu) dev.iommu.requireDirect = true;
  }
  if (!domain || !isDmaApiDomain(domain.type)) return null;
  const pg = minPageSize(domain.pgsizeBitmap);
  if (pg === 0n) return null;

  for (const r of regions) {
    if (r.type !== "direct" && r.type !== "direct-relaxable") continue;
    const start = alignUp(r.start, pg);
    const end = alignUp(r.start + r.length, pg);
    let run = 0n;
    for (let addr = start; addr <= end; addr += pg) {
      if (addr !== end && iommuIovaToPhys(domain, addr) === 0n) {
        run += pg;
        continue;
      }
      if (run > 0n) {
        try {
          iommuMap(domain, addr - run, addr - run, run, r.prot);
        } catch (e) {
          if (!isErrno(e)) throw e;
          return e;
        }
        run = 0n;
      }
    }
  }
  domain.driver.flushIotlbAll?.();
  return null;
}
