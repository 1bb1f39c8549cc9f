/**
 * The whole story per board: reference = 1 GiB of hugepage-backed guest RAM, compared with 16 GiB.
 * Pinning walks 2 MiB runs and the drivers map 1 GiB/2 MiB blocks, so 16x the RAM should cost far
 * less than 16x the time.
 */

import { createBoard } from "@iommu-sim/host";
import { bench, describe } from "vitest";
import { Vmm } from "./vmm.js";

for (const board of ["x86-q35-vtd", "arm64-virt-smmuv3"] as const) {
  describe(`story on ${board}`, () => {
    bench("1 GiB guest (reference)", () => {
      new Vmm(createBoard(board, { qemuQuirks: false }), { guestRam: 1n << 30n }).run();
    });
    bench("16 GiB guest", () => {
      new Vmm(createBoard(board, { qemuQuirks: false }), { guestRam: 16n << 30n }).run();
    });
  });
}
