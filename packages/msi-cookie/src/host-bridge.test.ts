import { describe, expect, it } from "vitest";
import { type HostBridge, reservePciWindows } from "./host-bridge.js";

function recorder() {
  const calls: [number, number][] = [];
  return { calls, iovad: { reserve: (lo: number, hi: number) => calls.push([lo, hi]) } };
}

describe("reservePciWindows (iova_reserve_pci_windows, Linux 6.1)", () => {
  it("reserves MEM windows at their bus addresses and skips I/O windows", () => {
    const r = recorder();
    const bridge: HostBridge = {
      windows: [
        { kind: "io", start: 0x3eff_0000n, end: 0x3eff_ffffn },
        { kind: "mem", start: 0x1000_0000n, end: 0x3efe_ffffn },
        { kind: "mem", start: 0x80_0000_0000n, end: 0xff_ffff_ffffn, offset: 0x10_0000_0000n },
      ],
      dmaRanges: [],
    };
    reservePciWindows(bridge, r.iovad, 0x1000n);
    expect(r.calls).toEqual([
      [0x1_0000, 0x3_efef],
      [0x700_0000, 0xeff_ffff],
    ]);
  });

  it("reserves the gaps around dma-ranges up to the top of the space (inclusive of the next range's first pfn)", () => {
    const r = recorder();
    const bridge: HostBridge = {
      windows: [],
      dmaRanges: [
        { start: 0x1000_0000n, end: 0x1fff_ffffn },
        { start: 0x4000_0000n, end: 0x7fff_ffffn },
      ],
    };
    reservePciWindows(bridge, r.iovad, 0x1000n);
    expect(r.calls).toEqual([
      [0x0, 0x1_0000],
      [0x2_0000, 0x4_0000],
      [0x8_0000, 0xf_ffff_ffff_ffff],
    ]);
  });

  it("a range starting at 0 leaves no gap below it", () => {
    const r = recorder();
    reservePciWindows({ windows: [], dmaRanges: [{ start: 0n, end: 0xffff_ffffn }] }, r.iovad, 0x1000n);
    expect(r.calls).toEqual([[0x10_0000, 0xf_ffff_ffff_ffff]]);
  });

  it("EINVAL for unsorted dma-ranges, checked before anything is reserved when validating (iovad null)", () => {
    const bridge: HostBridge = {
      windows: [],
      dmaRanges: [
        { start: 0x4000_0000n, end: 0x7fff_ffffn },
        { start: 0x1000_0000n, end: 0x1fff_ffffn },
      ],
    };
    expect(() => reservePciWindows(bridge, null, 0x1000n)).toThrowError(
      expect.objectContaining({ code: "EINVAL", op: "iova_reserve_pci_windows" }),
    );
  });
});
