/** `report_iommu_fault` (iommu.c 6.1): how a driver passes a translation fault up to the domain's owner. */
import type { Device } from "./device.js";
import type { IommuDomain } from "./domain.js";
import { ERRNO } from "./errno.js";

/**
 * Call the domain's fault handler and return its result, or -ENOSYS when none is installed
 * (drivers then log the fault themselves). Reference §2.3 "Faults".
 */
export function reportIommuFault(domain: IommuDomain, dev: Device, iova: bigint, flags: number): number {
  const handler = domain.faultHandler;
  if (!handler) return -ERRNO.ENOSYS;
  return handler(domain, dev, iova, flags);
}
