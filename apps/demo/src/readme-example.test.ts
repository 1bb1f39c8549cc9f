// The README's API example, run as a test so it stays true.

import { createBoard } from "@iommu-sim/host";
import { expect, it } from "vitest";
import { Vmm } from "./vmm/vmm.js";

it("README example", () => {
  const board = createBoard("arm64-virt-smmuv3", { eduCount: 2, qemuQuirks: false });
  const report = new Vmm(board, { guestRam: 1n << 30n }).run();
  expect(report.msi?.address).toBe(0x8000040n);
  expect(report.dma?.roundTrip).toBe(true);
  expect(board.interrupts()).toEqual([{ source: "its:0000:00:01.0", vector: 8192, count: 1 }]);
});
