/**
 * The parts of <linux/vfio.h> (6.1) the probe is compiled against: ioctl numbers (`_IO(';', 100 + n)`),
 * flags and struct sizes (x86-64 / arm64 layout). User space's copy of the uAPI, kept apart from the
 * kernel model on purpose, as the probe's C sees only the header.
 */

const VFIO_BASE = (0x3b << 8) | 100;

export const VFIO_GET_API_VERSION = VFIO_BASE + 0;
export const VFIO_CHECK_EXTENSION = VFIO_BASE + 1;
export const VFIO_SET_IOMMU = VFIO_BASE + 2;
export const VFIO_GROUP_GET_STATUS = VFIO_BASE + 3;
export const VFIO_GROUP_SET_CONTAINER = VFIO_BASE + 4;
export const VFIO_GROUP_UNSET_CONTAINER = VFIO_BASE + 5;
export const VFIO_GROUP_GET_DEVICE_FD = VFIO_BASE + 6;
export const VFIO_DEVICE_GET_INFO = VFIO_BASE + 7;
export const VFIO_DEVICE_GET_REGION_INFO = VFIO_BASE + 8;
export const VFIO_DEVICE_GET_IRQ_INFO = VFIO_BASE + 9;
export const VFIO_DEVICE_SET_IRQS = VFIO_BASE + 10;
export const VFIO_DEVICE_RESET = VFIO_BASE + 11;
export const VFIO_IOMMU_GET_INFO = VFIO_BASE + 12;
export const VFIO_IOMMU_MAP_DMA = VFIO_BASE + 13;
export const VFIO_IOMMU_UNMAP_DMA = VFIO_BASE + 14;
export const VFIO_IOMMU_DIRTY_PAGES = VFIO_BASE + 17;

export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_TYPE1_NESTING_IOMMU = 6;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

export const VFIO_GROUP_FLAGS_VIABLE = 1;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 2;

export const VFIO_IOMMU_INFO_PGSIZES = 1;
export const VFIO_IOMMU_INFO_CAPS = 2;
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 2;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 4;

export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;

export const VFIO_IRQ_SET_DATA_NONE = 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 32;

/** sizeof(struct vfio_iommu_type1_info): 20 bytes of fields, padded to 24. */
export const SIZEOF_IOMMU_INFO = 24;
/** offsetofend(struct vfio_iommu_type1_info, cap_offset). */
export const INFO_CAP_OFFSET_END = 20;
export const SIZEOF_CAP_HEADER = 8;
export const SIZEOF_CAP_IOVA_RANGE = 16;
export const SIZEOF_IOVA_RANGE = 16;
export const SIZEOF_CAP_MIGRATION = 32;
export const SIZEOF_CAP_DMA_AVAIL = 12;
export const SIZEOF_DMA_MAP = 32;
export const SIZEOF_DMA_UNMAP = 24;
export const SIZEOF_VFIO_BITMAP = 24;
export const SIZEOF_DIRTY_BITMAP = 8;
export const SIZEOF_DIRTY_BITMAP_GET = 40;
export const SIZEOF_GROUP_STATUS = 8;
export const SIZEOF_IRQ_INFO = 16;
export const SIZEOF_IRQ_SET = 20;
export const SIZEOF_REGION_INFO = 32;
