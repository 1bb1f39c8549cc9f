import { expectTypeOf } from "vitest";
import { type ResvRegion, resvRegion } from "./resv-region.js";

// Issue 15: a region is made by the validating constructor (iommu_alloc_resv_region), never written as a literal.
expectTypeOf(resvRegion(0xfee0_0000n, 0x10_0000n, 0, "msi")).toEqualTypeOf<ResvRegion>();
// @ts-expect-error an object literal is not a ResvRegion: only resvRegion() checks length > 0 and no 64-bit wrap
export const literal: ResvRegion = { start: 0n, length: 0n, prot: 0, type: "msi" };
