import { project } from "../../vitest.shared.ts";

export default project("@dma-iommu/msi-cookie");
