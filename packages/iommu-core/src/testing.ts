// Test helpers for layers above core: the mock driver with the kernel selftest's shape (reference §7).
export type { MockDomain, MockFault, MockIommu, MockIommuOptions } from "./mock/mock-iommu.js";
export {
  createMockIommu,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_MSI_IOVA_BASE,
  MOCK_MSI_IOVA_LENGTH,
} from "./mock/mock-iommu.js";
export type { MockPte } from "./mock/pgtable.js";
export { MOCK_HUGE_PAGE_SIZE, MOCK_IO_PAGE_SIZE, MockPageTable } from "./mock/pgtable.js";
