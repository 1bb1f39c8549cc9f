export type { CapHeader } from "./cap-chain.js";
export { CapChain, walkCaps } from "./cap-chain.js";
export type { IommuType1Info, MigrationCap, UapiIovaRange } from "./iommu-info.js";
export { decodeIommuInfo } from "./iommu-info.js";
export type { DmaMapArgs, DmaUnmapArgs, VfioBitmap } from "./vfio.js";
export * from "./vfio.js";
