// The public surface of @dma-iommu/msi-cookie (its root entry) is a contract: this pins the exported names. A name
// added or removed here is an API change and gets a changeset; internals go to another entry point.
import { expectTypeOf } from "vitest";
import type * as api from "./index.js";
import type * as internal from "./internal.js";

/** The runtime names (values: functions, classes, constants). */
type Values =
  | "DMA_MAPPING_ERROR"
  | "DmaCookie"
  | "IOVA_FQ_TIMEOUT_MS"
  | "MsiCookie"
  | "composeMsiMsg"
  | "cookieOf"
  | "deviceDma"
  | "dmaGetMask"
  | "dmaMap"
  | "dmaMappingError"
  | "dmaSetMask"
  | "dmaUnmap"
  | "flushQueueTimeout"
  | "getDmaCookie"
  | "getMsiCookie"
  | "msiPagesOf"
  | "prepareMsi"
  | "putDmaCookie"
  | "setBusDmaLimit"
  | "setupDmaOps";
expectTypeOf<keyof typeof api>().toEqualTypeOf<Values>();

/** The type-only names: each must stay exported (a missing one fails to compile here). */
export type TypeNames = [
  api.BridgeWindow,
  api.CookieWarning,
  api.DeviceDmaState,
  api.DmaDirection,
  api.DmaDomainInit,
  api.DmaIommuCookie,
  api.DmaMapOptions,
  api.DmaRange,
  api.FlushQueue,
  api.FlushQueueHooks,
  api.FqEntry,
  api.HostBridge,
  api.MsiCookieOptions,
  api.MsiMsg,
  api.MsiPage,
  api.SacPolicy,
];

/** `./internal` is the root entry plus internals: every root name is there too. */
expectTypeOf<Exclude<keyof typeof api, keyof typeof internal>>().toEqualTypeOf<never>();
