import { describe, expect, it } from "vitest";
import { q35 } from "../testing/q35.js";

describe("dmar_fault's log ratelimit: one state for every unit (DEFAULT_RATELIMIT_INTERVAL 5 s, BURST 10)", () => {
  it("regression (x86 edu-dma line 17): the fourth fault in a window logs its status line but not its record", () => {
    // Each fault spends three tokens (status line, the record, the clear record ending the loop), so
    // Linux 6.1 under QEMU printed only "handling fault status reg 2" for the fourth fault.
    let clock = 0;
    const m = q35({ driver: { now: () => clock } });
    const unit = m.driver.units[0];
    if (!unit) throw new Error("no DMAR unit");
    const lines: string[][] = [];
    for (let i = 0; i < 4; i++) {
      expect(m.edu.dmaWrite(0x4000_0000n + BigInt(i) * 0x1000n, new Uint8Array(4)).ok).toBe(false);
      lines.push(m.driver.drainLog());
    }
    expect(lines.slice(0, 3).map((l) => l.length)).toEqual([2, 2, 2]);
    expect(lines[3]).toEqual(["DMAR: DRHD: handling fault status reg 2"]);
    expect(unit.faults).toHaveLength(4); // still read and cleared, only not printed
    clock += 5000;
    expect(m.edu.dmaWrite(0x4000_0000n, new Uint8Array(4)).ok).toBe(false);
    expect(m.driver.drainLog()).toHaveLength(2);
  });
});
