/** Helpers drivers use to grow a `struct iommu_iotlb_gather` while unmapping (iommu.h 6.1). */
import type { IotlbGather } from "./iommu-ops.js";

/** `iommu_iotlb_gather_add_range`: widen the gathered span to cover [iova, iova + size). */
export function gatherAddRange(gather: IotlbGather, iova: bigint, size: bigint): void {
  const end = iova + size - 1n;
  if (iova < gather.start) gather.start = iova;
  if (end > gather.end) gather.end = end;
}

/** `iommu_iotlb_gather_add_page`: add a range and remember the page size used. */
export function gatherAddPage(gather: IotlbGather, iova: bigint, size: bigint): void {
  gatherAddRange(gather, iova, size);
  gather.pgsize = size;
}

/** True when nothing was gathered. */
export function gatherIsEmpty(gather: IotlbGather): boolean {
  return gather.start > gather.end;
}
