/**
 * The type1 rules that changed after Linux 6.1, each a named option in the kernel's vocabulary with the commit
 * that introduced it. The defaults are 6.1's answers; a kernel profile (one table, above this package) maps a
 * version to these options, so no layer asks "which version is this?".
 */

export interface Type1KernelOptions {
  /**
   * "vfio: align capability structures" (a881b496941f, Linux 6.6): `vfio_info_cap_add` pads every capability
   * to 8 bytes (DMA_AVAIL's 12 bytes become 16, so IOVA_RANGE moves from 68 to 72 and GET_INFO needs argsz 120,
   * not 116), `struct vfio_iommu_type1_info` gains `pad` (bytes 20..23), and GET_INFO copies out the zeroed
   * struct up to min(argsz, 24) bytes (6.1: 16 bytes, or 20 from argsz 20).
   */
  readonly alignCapabilities: boolean;
  /**
   * "mm/gup: reliable R/O long-term pinning in COW mappings" (84209e87c696, Linux 6.2): a FOLL_LONGTERM pin
   * without FOLL_WRITE of a COW mapping faults with FAULT_FLAG_UNSHARE, so never-touched anonymous memory gets
   * a private page (charged to locked_vm, and the process's later writes reach the device) instead of the
   * shared zero page (6.1: reserved, not charged, the device keeps reading zeros).
   */
  readonly longtermPinUnshare: boolean;
  /**
   * VFIO_TYPE1_NESTING_IOMMU offered; "vfio: Remove VFIO_TYPE1_NESTING_IOMMU" (35890f85573c, Linux 6.13)
   * turned it off: CHECK_EXTENSION answers 0 and VFIO_SET_IOMMU with it finds no driver (ENODEV).
   */
  readonly nestingIommu: boolean;
  /**
   * "vfio/type1: sanitize for overflow using check_*_overflow()" (6012379ede6a, Linux 6.18): MAP_DMA whose
   * iova + size - 1 or vaddr + size - 1 wraps, UNMAP_DMA and DIRTY_PAGES GET_BITMAP whose iova + size - 1
   * wraps fail with EOVERFLOW (6.1: EINVAL); MAP_DMA checks it before the flags and alignment, and GET_BITMAP
   * no longer refuses a range that ends exactly at 2^64.
   */
  readonly sanitizeOverflow: boolean;
  /**
   * "vfio/type1: handle DMA map/unmap up to the addressable limit" (ef270ec44637, the same 6.18 series): range
   * ends are compared inclusively (iova + size - 1), so an UNMAP_DMA reaching exactly 2^64 finds the mappings in
   * it (6.1: the end wraps to 0 and the range finds nothing, answering 0 bytes unmapped).
   */
  readonly unmapToAddressLimit: boolean;
}

/** Linux 6.1's answers: what every option is unless a profile says otherwise. */
export const TYPE1_KERNEL_DEFAULTS: Type1KernelOptions = Object.freeze({
  alignCapabilities: false,
  longtermPinUnshare: false,
  nestingIommu: true,
  sanitizeOverflow: false,
  unmapToAddressLimit: false,
});
