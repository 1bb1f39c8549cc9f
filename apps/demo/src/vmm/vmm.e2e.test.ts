/** The VMM story through VFIO on both boards: map, DMA, MSI; --naive fails the way Linux fails. */

import { msiMsgAddress } from "@iommu/core";
import { createBoard } from "@iommu-sim/host";
import { describe, expect, it } from "vitest";
import { Vmm } from "./vmm.js";

const GiB = 1n << 30n;

describe.each([
  { board: "x86-q35-vtd" as const, msi: 0xfee00218n, source: "ir:0000:00:01.0" },
  { board: "arm64-virt-smmuv3" as const, msi: 0x8000040n, source: "its:0000:00:01.0" },
])("VMM on $board", ({ board, msi, source }) => {
  it("maps guest RAM, edu DMA round-trips through the IOMMU, the MSI reaches the eventfd", () => {
    const r = new Vmm(createBoard(board, { qemuQuirks: false }), { guestRam: GiB }).run();
    expect(r.failure).toBeNull();
    expect(r.ok).toBe(true);
    expect(r.mappings.every((m) => m.ret === 0)).toBe(true);
    expect(r.dma?.roundTrip).toBe(true);
    expect(r.msi?.address).toBe(msi);
    expect(r.msi?.eventfdCount).toBe(1);
    expect(r.interrupts.map((i) => i.source)).toEqual([source]);
  });

  it("--naive: the flat layout hits a reserved range: MAP_DMA EINVAL, then the guest's DMA faults", () => {
    const r = new Vmm(createBoard(board), { guestRam: 5n * GiB, naive: true }).run();
    expect(r.ok).toBe(false);
    expect(r.mappings[0]).toMatchObject({ ret: -1, errno: "EINVAL" });
    expect(r.dma?.roundTrip).toBe(false);
    expect(r.dma?.faults).toBeGreaterThan(0);
    expect(r.failure).toMatch(/EINVAL/);
  });

  it("a flat layout without --naive is carved around the reserved range and works", () => {
    const r = new Vmm(createBoard(board, { qemuQuirks: false }), { guestRam: 5n * GiB, layout: "flat" }).run();
    expect(r.layout?.conflicts.length).toBeGreaterThan(0);
    expect(r.failure).toBeNull();
    expect(r.dma?.roundTrip).toBe(true);
  });
});

it("arm64: a second device in the same container shares the doorbell page", () => {
  const b = createBoard("arm64-virt-smmuv3", { eduCount: 2, qemuQuirks: false });
  const v = new Vmm(b, { guestRam: GiB });
  expect(v.run().ok).toBe(true);
  // Second group joins the same container, its device gets MSI: same IOVA page.
  const g1 = b.groupIdOf(b.edus[1]!);
  const u = v.user!;
  expect(u.attachGroup(g1)).toBe(0);
  const h = b.vfioPci.openDevice(g1, b.edus[1]!.name);
  expect(h.setIrqs({ flags: 4 | 32, index: 1, start: 0, count: 1, eventfds: [null] })).toBe(0);
  expect(msiMsgAddress(b.edus[1]!.config.msiMessage())).toBe(0x8000040n);
});

it("qemu_quirk_28bit_dma_mask: on QEMU's virt, edu cannot reach guest RAM at 0x40000000 (the story says so)", () => {
  const r = new Vmm(createBoard("arm64-virt-smmuv3"), { guestRam: GiB }).run();
  expect(r.dma?.roundTrip).toBe(false);
  expect(r.steps.at(-1)?.lines.join("\n")).toMatch(/EDU: clamping DMA 0x0000000040100000 to 0x0000000000100000!/);
  // q35's guest RAM starts at 0, so the same story works there even with QEMU's edu.
  expect(new Vmm(createBoard("x86-q35-vtd"), { guestRam: GiB }).run().ok).toBe(true);
});
