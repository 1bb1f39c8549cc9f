import { cookieOf, DmaCookie } from "@dma-iommu/msi-cookie";
import { TYPE1_KERNEL_DEFAULTS } from "@vfio/type1";
import { describe, expect, it } from "vitest";
import { BOARD_NAMES, createBoard } from "./boards/index.js";
import { DEFAULT_KERNEL, KERNEL_PROFILES, KERNEL_VERSIONS, kernelProfile } from "./kernel-profile.js";

describe("kernel profiles: one table from a Linux version to every layer's options", () => {
  it("6.1 is the default and its options are every layer's defaults (nothing existing changes)", () => {
    expect(DEFAULT_KERNEL).toBe("6.1");
    const p = kernelProfile();
    expect(p).toBe(KERNEL_PROFILES["6.1"]);
    expect(p.type1).toEqual(TYPE1_KERNEL_DEFAULTS);
    expect(p.vtd).toEqual({ slPteFormat: "dma_pte", faultLogSegment: false, blockedDomain: false });
    expect(p.smmu).toEqual({ decodedEventLog: false, blockedDomain: false });
    expect(p.iova.rcacheDepot).toBe("array");
    expect(p.host.smmuProbesHostBridge).toBe(false);
  });

  it("an unknown version is a RangeError naming the kernels there are", () => {
    expect(() => kernelProfile("6.6" as never)).toThrowError(/unknown kernel 6\.6 \(one of 6\.1, 6\.12, 7\.3\)/);
    expect(() => createBoard("x86-q35-vtd", { kernel: "5.15" as never })).toThrowError(RangeError);
  });

  it("every board carries the profile it was built with and hands type1 its options", () => {
    for (const name of BOARD_NAMES)
      for (const v of KERNEL_VERSIONS) {
        const b = createBoard(name, { kernel: v });
        expect(b.kernel.version).toBe(v);
        expect(b.vfio.kernel).toEqual(KERNEL_PROFILES[v].type1);
      }
  });

  it("arm64: the SMMU probes the host bridge on 7.3, so edu devices take groups 1, 2 (6.1, 6.12: 0, 1); x86 keeps 1, 2", () => {
    const groups = (name: (typeof BOARD_NAMES)[number], kernel: (typeof KERNEL_VERSIONS)[number]) => {
      const b = createBoard(name, { kernel, eduCount: 2 });
      return b.edus.map((e) => b.groupIdOf(e));
    };
    expect(groups("arm64-virt-smmuv3", "6.1")).toEqual([0, 1]);
    expect(groups("arm64-virt-smmuv3", "6.12")).toEqual([0, 1]);
    expect(groups("arm64-virt-smmuv3", "7.3")).toEqual([1, 2]);
    for (const k of KERNEL_VERSIONS) expect(groups("x86-q35-vtd", k)).toEqual([1, 2]);
  });

  it("the IOVA depot: 6.12 and 7.3 give default domains the list depot, and board.tick moves its model clock", () => {
    for (const v of KERNEL_VERSIONS) {
      const b = createBoard("x86-q35-vtd", { kernel: v });
      const edu = b.edus[0];
      const dom = edu ? b.iommu.groupOf(edu)?.defaultDomain : null;
      const c = dom ? cookieOf(dom) : null;
      if (!(c instanceof DmaCookie) || !c.iovad) throw new Error("edu's default domain has no IOVA domain");
      expect(c.iovad.rcacheDepot).toBe(KERNEL_PROFILES[v].iova.rcacheDepot);
      b.tick(100);
      b.tick(5);
      expect(c.iovad.now).toBe(105);
      expect(b.nowMs).toBe(105);
    }
  });
});
