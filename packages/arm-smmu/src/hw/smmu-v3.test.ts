import { PhysicalMemory } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { REG } from "../arch/regs.js";
import { CMD, EVT } from "../arch/structures.js";
import { createSmmuV3Hardware, unassignedAccessSize } from "./smmu-v3.js";

const BASE = 0x9050000n;

function fresh(opts: Parameters<typeof createSmmuV3Hardware>[0] extends infer O ? Partial<O> : never = {}) {
  const memory = new PhysicalMemory();
  memory.addRam(0x40000000n, 0x1000000n);
  const hw = createSmmuV3Hardware({ memory, mmioBase: BASE, ...opts });
  const r32 = (off: number) => memory.read32(BASE + BigInt(off));
  const w32 = (off: number, v: number) => memory.write32(BASE + BigInt(off), v);
  return { memory, hw, r32, w32 };
}

describe("SMMUv3 register file", () => {
  it("reports QEMU 7.2's identity: stage 1 only, 16-bit stream ids, 44-bit OAS, all granules, 2-level tables", () => {
    const { r32 } = fresh({ qemuQuirks: true, oas: 44, streamIdBits: 16 });
    const idr0 = r32(REG.IDR0);
    expect(idr0 & 3).toBe(2); // S1P, no S2P
    expect((idr0 >>> 2) & 3).toBe(2); // TTF AArch64
    expect((idr0 >>> 27) & 3).toBe(1); // ST_LEVEL 2-level
    expect(r32(REG.IDR1) & 0x3f).toBe(16);
    const idr5 = r32(REG.IDR5);
    expect(idr5 & 7).toBe(4); // OAS 44 bits
    expect(idr5 & 0x70).toBe(0x70); // 4K, 16K, 64K
  });

  it("acknowledges CR0 in CR0ACK and ignores writes to ID registers", () => {
    const { r32, w32 } = fresh();
    w32(REG.IDR0, 0);
    expect(r32(REG.IDR0)).not.toBe(0);
    w32(REG.CR0, 0xd);
    expect(r32(REG.CR0ACK)).toBe(0xd);
  });

  it("bypasses with SMMUEN clear unless GBPA.ABORT, and then aborts", () => {
    const { hw, w32 } = fresh();
    const req = { device: null as never, requesterId: 8, iova: 0x40001234n, access: "read" as const };
    expect(hw.translate(req)).toEqual({ kind: "ok", phys: 0x40001234n, span: 0xdccn });
    w32(REG.GBPA, (1 << 20) | 0x80000000);
    expect(hw.translate(req).kind).toBe("fault");
  });

  it("stops at an illegal command with GERROR.CMDQ_ERR and CONS.ERR = CERROR_ILL, resumes after GERRORN", () => {
    const { memory, r32, w32 } = fresh();
    const q = 0x40000000n;
    memory.write64(BASE + BigInt(REG.CMDQ_BASE), q | 4n); // 16 entries
    w32(REG.CR0, 1 << 3);
    memory.write64(q, BigInt(CMD.TLBI_NSNH_ALL));
    memory.write64(q + 16n, 0x7fn); // no such opcode
    memory.write64(q + 32n, BigInt(CMD.CMD_SYNC));
    w32(REG.CMDQ_PROD, 3);
    expect(r32(REG.GERROR) & 1).toBe(1);
    expect(r32(REG.CMDQ_CONS)).toBe((1 << 24) | 1);
    // Software replaces the bad command and acknowledges: the queue drains.
    memory.write64(q + 16n, BigInt(CMD.CMD_SYNC));
    w32(REG.GERRORN, 1);
    expect(r32(REG.CMDQ_CONS)).toBe(3);
  });

  it("completes CMD_SYNC with CS=IRQ by writing MSIData to MSIAddress (the MSI-based completion Linux can use)", () => {
    const { memory, w32, r32 } = fresh();
    const q = 0x40000000n;
    memory.write64(BASE + BigInt(REG.CMDQ_BASE), q | 4n);
    w32(REG.CR0, 1 << 3);
    memory.write64(q, BigInt(CMD.CMD_SYNC) | (1n << 12n) | (0xcafen << 32n));
    memory.write64(q + 8n, 0x40000800n);
    w32(REG.CMDQ_PROD, 1);
    expect(r32(REG.CMDQ_CONS)).toBe(1);
    expect(memory.read32(0x40000800n)).toBe(0xcafe);
  });

  it("records C_BAD_STREAMID for a stream id beyond the stream table, and toggles EVTQ overflow when full", () => {
    const { memory, hw, r32, w32 } = fresh();
    const st = 0x40001000n;
    const eq = 0x40002000n;
    memory.write64(BASE + BigInt(REG.STRTAB_BASE), st);
    w32(REG.STRTAB_BASE_CFG, 2); // linear, 4 STEs
    memory.write64(BASE + BigInt(REG.EVTQ_BASE), eq | 1n); // 2 records
    w32(REG.CR0, 0b101); // SMMUEN | EVTQEN
    const req = { device: null as never, requesterId: 9, iova: 0x1000n, access: "write" as const };
    for (let i = 0; i < 3; i++) expect(hw.translate(req)).toMatchObject({ kind: "fault", reason: "C_BAD_STREAMID" });
    expect(memory.read64(eq)).toBe(BigInt(EVT.C_BAD_STREAMID) | (9n << 32n));
    expect(r32(REG.EVTQ_PROD)).toBe(0x80000002);
    expect(hw.stats.eventsDropped).toBe(1);
  });
});

describe("unassignedAccessSize (QEMU memory_access_size on io_mem_unassigned)", () => {
  it("cuts any range into power-of-two accesses of at most 4 bytes, each aligned to its size, covering it exactly", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }), fc.integer({ min: 1, max: 64 }), (start, len) => {
        const end = start + BigInt(len);
        let at = start;
        while (at < end) {
          const n = unassignedAccessSize(at, end - at);
          expect([1n, 2n, 4n]).toContain(n);
          expect(at % n).toBe(0n);
          expect(at + n).toBeLessThanOrEqual(end);
          at += n;
        }
        expect(at).toBe(end);
      }),
      { numRuns: 200 },
    );
  });
});
