/** IOMMU mapping protection flags (include/linux/iommu.h, 6.1). */
export const IOMMU_READ = 1 << 0;
export const IOMMU_WRITE = 1 << 1;
export const IOMMU_CACHE = 1 << 2;
export const IOMMU_NOEXEC = 1 << 3;
export const IOMMU_MMIO = 1 << 4;
export const IOMMU_PRIV = 1 << 5;
export const IOMMU_SYS_CACHE = 1 << 6;
export const IOMMU_SYS_CACHE_NWA = 1 << 7;

/** Fault flags passed to report_iommu_fault (iommu.h): READ is 0, WRITE is 1. */
export const IOMMU_FAULT_READ = 0;
export const IOMMU_FAULT_WRITE = 1;

/** Driver capabilities asked through `iommu_capable` (enum iommu_cap, 6.1). */
export type IommuCap = "CACHE_COHERENCY" | "INTR_REMAP" | "NOEXEC" | "PRE_BOOT_PROTECTION";
