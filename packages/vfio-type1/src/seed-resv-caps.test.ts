import { resvRegion } from "@iommu/core";
/** The seed RFC's per-range RESV_IOVA_RANGE capabilities, as type1 adds them to GET_INFO's chain. */
import { INFO_SIZE, IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE, view, walkCaps } from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { makeHost, openContainer } from "./test-support/hosts.js";

describe("the seed's RESV_IOVA_RANGE caps (seedResvCaps)", () => {
  it("adds one cap per reserved range after upstream's, ids that cannot collide, a walkable chain (≥3 caps)", () => {
    const h = makeHost({ shape: "arm64", seedResvCaps: true });
    h.fake!.extraResv.push(
      resvRegion(0x4000_0000n, 0x1000_0000n, 0, "reserved"),
      resvRegion(0x8000_0000_0000n, 0x1000n, 0, "reserved"),
      resvRegion(0x1000_0000n, 0x10_0000n, 3, "direct-relaxable"),
    );
    const { container } = openContainer(h);
    const info = container.getInfo();
    expect(walkCaps(info.raw, INFO_SIZE).map((c) => [c.id, c.offset])).toEqual([
      [2, 24],
      [3, 56],
      [1, 68],
      [IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE, 68 + 16 + 16 * 4],
      [IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE, 68 + 16 + 16 * 4 + 24],
      [IOMMU_SIM_INFO_CAP_RESV_IOVA_RANGE, 68 + 16 + 16 * 4 + 48],
    ]);
    expect(info.reservedRanges).toEqual([
      { start: 0x0800_0000n, end: 0x080f_ffffn },
      { start: 0x4000_0000n, end: 0x4fff_ffffn },
      { start: 0x8000_0000_0000n, end: 0x8000_0000_0fffn },
    ]);
    // The usable ranges are exactly the aperture minus those (the relaxable RMRR stays usable).
    expect(info.iovaRanges).toEqual([
      { start: 0n, end: 0x07ff_ffffn },
      { start: 0x0810_0000n, end: 0x3fff_ffffn },
      { start: 0x5000_0000n, end: 0x7fff_ffff_ffffn },
      { start: 0x8000_0000_1000n, end: 0xffff_ffff_ffffn },
    ]);
    expect(view(info.raw).getUint32(16, true)).toBe(INFO_SIZE);
  });

  it("is off by default: the upstream chain ends at IOVA_RANGE", () => {
    const h = makeHost({ shape: "arm64" });
    const { container } = openContainer(h);
    expect(walkCaps(container.getInfo().raw, INFO_SIZE).map((c) => c.id)).toEqual([2, 3, 1]);
  });
});
