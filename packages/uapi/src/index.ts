export type { CapHeader } from "./cap-chain.js";
export { CapChain, readCapHeader, walkCaps } from "./cap-chain.js";
export type { IommuType1Info, MigrationCap, UapiIovaRange } from "./iommu-info.js";
export {
  decodeIommuInfo,
  readDmaAvailCap,
  readIovaRangeCap,
  readMigrationCap,
  readResvIovaRangeCap,
} from "./iommu-info.js";
export type { FieldKind, Fields, Layout } from "./struct.js";
export { readStruct, writeStruct } from "./struct.js";
export type { DmaMapArgs, DmaUnmapArgs, VfioBitmap } from "./vfio.js";
export * from "./vfio.js";
