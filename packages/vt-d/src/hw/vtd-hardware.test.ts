import { IOMMU_READ, IOMMU_WRITE, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { CAP, CTX, ECAP, FAULT, FSTS, GCMD, GSTS, PTE, QI, REG } from "../arch/regs.js";
import { q35 } from "../testing/q35.js";
import { createVtdHardware } from "./vtd-hardware.js";

const BASE = 0xfed90000n;

function bare(opts: Parameters<typeof createVtdHardware>[0] extends infer O ? Partial<O> : never = {}) {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 0x40000000n);
  const pool = new PageAllocator(memory, 0x1000000n, 0x1000000n);
  const hw = createVtdHardware({ memory, mmioBase: BASE, ...opts });
  const dev = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0xff00 });
  dev.upstream = hw;
  return { memory, pool, hw, dev };
}

/** Hand-built tables: root → context (did 5, 3-level) → one 4 KiB page at iova 0x1000 (R only). */
function tables(m: ReturnType<typeof bare>, rights: bigint) {
  const { memory, pool } = m;
  const root = pool.alloc();
  const ctx = pool.alloc();
  const l3 = pool.alloc();
  const l2 = pool.alloc();
  const l1 = pool.alloc();
  memory.write64(root, ctx | 1n);
  // 00:01.0 is devfn 8: its context entry is the ninth 16-byte slot.
  memory.write64(ctx + 0x80n, l3 | CTX.P);
  memory.write64(ctx + 0x88n, 1n | (5n << CTX.DID_SHIFT));
  memory.write64(l3, l2 | 3n);
  memory.write64(l2, l1 | 3n);
  memory.write64(l1 + 8n, 0x200000n | rights);
  memory.write64(BASE + BigInt(REG.RTADDR), root);
  memory.write32(BASE + BigInt(REG.GCMD), GCMD.SRTP);
  memory.write32(BASE + BigInt(REG.GCMD), GCMD.TE);
  memory.write32(BASE + BigInt(REG.FECTL), 0);
  return { root, ctx, l1 };
}

describe("register file (QEMU 7.2 intel-iommu defaults)", () => {
  it("CAP/ECAP: SAGAW 39-bit, MGAW 38, 2M+1G superpages, one fault register at 0x220, IOTLB at 0xf0, QI+IR", () => {
    const { memory } = bare();
    const cap = memory.read64(BASE + BigInt(REG.CAP));
    const ecap = memory.read64(BASE + BigInt(REG.ECAP));
    expect((cap >> CAP.SAGAW_SHIFT) & 0x1fn).toBe(0b0010n);
    expect((cap >> CAP.MGAW_SHIFT) & 0x3fn).toBe(38n);
    expect((cap >> CAP.SLLPS_SHIFT) & 0xfn).toBe(3n);
    expect(((cap >> CAP.FRO_SHIFT) & 0x3ffn) * 16n).toBe(0x220n);
    expect((cap >> CAP.NFR_SHIFT) & 0xffn).toBe(0n);
    expect(((ecap >> ECAP.IRO_SHIFT) & 0x3ffn) * 16n).toBe(0xf0n);
    expect(ecap & ECAP.QI).toBe(ECAP.QI);
    expect(ecap & ECAP.IR).toBe(ECAP.IR);
    expect(ecap & ECAP.SC).toBe(0n);
    expect(memory.read32(BASE + BigInt(REG.VER))).toBe(0x10);
  });

  it("48-bit units advertise SAGAW 39|48 and MGAW 47; 32-bit halves of 64-bit registers read back", () => {
    const { memory } = bare({ aw: 48 });
    const cap = memory.read64(BASE + BigInt(REG.CAP));
    expect((cap >> CAP.SAGAW_SHIFT) & 0x1fn).toBe(0b0110n);
    expect(memory.read32(BASE + BigInt(REG.CAP) + 4n)).toBe(Number(cap >> 32n));
  });

  it("GCMD enables are reflected in GSTS; one-shot SRTP latches RTADDR", () => {
    const { memory, hw } = bare();
    memory.write64(BASE + BigInt(REG.RTADDR), 0x5000n);
    memory.write32(BASE + BigInt(REG.GCMD), GCMD.SRTP);
    expect(memory.read32(BASE + BigInt(REG.GSTS)) & GSTS.RTPS).toBe(GSTS.RTPS >>> 0);
    memory.write32(BASE + BigInt(REG.GCMD), GCMD.TE | GCMD.QIE);
    expect(hw.globalStatus & GSTS.TES).toBe(GSTS.TES);
    memory.write32(BASE + BigInt(REG.GCMD), GCMD.QIE);
    expect(hw.globalStatus & GSTS.TES).toBe(0);
  });

  it("translation off: DMA is untranslated", () => {
    const { dev, memory } = bare();
    dev.dmaWrite(0x3000n, new Uint8Array([7]));
    expect(memory.read(0x3000n, 1)[0]).toBe(7);
  });
});

describe("walks and fault recording", () => {
  it("root not present → reason 1; context not present → reason 2", () => {
    const m = bare();
    const root = m.pool.alloc();
    m.memory.write64(BASE + BigInt(REG.RTADDR), root);
    m.memory.write32(BASE + BigInt(REG.GCMD), GCMD.SRTP);
    m.memory.write32(BASE + BigInt(REG.GCMD), GCMD.TE);
    expect(m.dev.dmaRead(0x1000n, 4)).toMatchObject({ ok: false, reason: "Present bit in root entry is clear" });
    expect(m.hw.faults.frcd[0]?.hi).toBe((1n << 63n) | (1n << 62n) | (1n << 32n) | 0x8n);
    m.memory.write32(BASE + 0x22cn, 1 << 31); // clear F
    m.memory.write64(root, m.pool.alloc() | 1n);
    m.hw.contextCache.invalidateAll();
    expect(m.dev.dmaRead(0x1000n, 4)).toMatchObject({ ok: false, reason: "Present bit in context entry is clear" });
    expect(Number((m.hw.faults.frcd[0]?.hi ?? 0n) >> 32n) & 0xff).toBe(FAULT.CONTEXT_NOT_PRESENT);
  });

  it("read-only page: read ok, write faults with reason 5; unmapped read faults with 6; beyond MGAW 4", () => {
    const m = bare();
    tables(m, PTE.R);
    m.memory.write(0x200010n, new Uint8Array([1, 2, 3]));
    expect(m.dev.dmaRead(0x1010n, 3)).toEqual({ ok: true, data: new Uint8Array([1, 2, 3]) });
    m.hw.iotlb.invalidateAll();
    expect(m.dev.dmaWrite(0x1010n, new Uint8Array([9]))).toMatchObject({
      ok: false,
      reason: "PTE Write access is not set",
    });
    const rec = m.hw.faults.frcd[0] as { lo: bigint; hi: bigint };
    expect(rec.lo).toBe(0x1000n);
    expect((rec.hi >> 62n) & 1n).toBe(0n); // T = 0: a write
    m.memory.write32(BASE + 0x22cn, 1 << 31);
    expect(m.dev.dmaRead(0x5000n, 1)).toMatchObject({ ok: false, reason: "PTE Read access is not set" });
    m.memory.write32(BASE + 0x22cn, 1 << 31);
    expect(m.dev.dmaRead(1n << 39n, 1)).toMatchObject({ ok: false, reason: "Access beyond MGAW" });
  });

  it("a full fault register sets PFO and loses another requester's fault; FRI names the pending one; FECTL.IM holds the event", () => {
    const m = bare();
    tables(m, PTE.R);
    let events = 0;
    m.hw.onFaultEvent = () => events++;
    m.memory.write32(BASE + BigInt(REG.FECTL), 1 << 31);
    m.dev.dmaRead(0x5000n, 1);
    expect(events).toBe(0);
    // 00:02.0 has no context entry: its fault (reason 2) finds the only register full.
    const dev2 = new PciDevice(m.memory, { bus: 0, slot: 2, classCode: 0xff00 });
    dev2.upstream = m.hw;
    dev2.dmaRead(0x6000n, 1);
    const fsts = m.memory.read32(BASE + BigInt(REG.FSTS));
    expect(fsts & (FSTS.PPF | FSTS.PFO)).toBe(FSTS.PPF | FSTS.PFO);
    expect(m.hw.faults.lost).toBe(1);
    expect(m.hw.faults.frcd[0]?.lo).toBe(0x5000n);
    m.memory.write32(BASE + BigInt(REG.FECTL), 0);
    expect(events).toBe(1);
    m.memory.write32(BASE + 0x22cn, 1 << 31);
    m.memory.write32(BASE + BigInt(REG.FSTS), FSTS.PFO);
    expect(m.memory.read32(BASE + BigInt(REG.FSTS))).toBe(0);
  });

  it("regression (QEMU vtd_try_collapse_fault; 6.1 x86 random-20 line 7): a requester's faults while its record is unread collapse into it, no PFO", () => {
    const m = bare();
    tables(m, PTE.R);
    m.hw.onFaultEvent = () => {};
    // Two pages of one burst both fault before the driver has read the first record.
    expect(m.dev.dmaWrite(0x1a08be0n, new Uint8Array(0x420)).ok).toBe(false);
    expect(m.dev.dmaWrite(0x1a09000n, new Uint8Array(0x100)).ok).toBe(false);
    expect(m.hw.faults.recorded).toBe(1);
    expect(m.hw.faults.collapsed).toBe(1);
    expect(m.hw.faults.lost).toBe(0);
    expect(m.memory.read32(BASE + BigInt(REG.FSTS)) & (FSTS.PPF | FSTS.PFO)).toBe(FSTS.PPF);
    expect(m.hw.faults.frcd[0]?.lo).toBe(0x1a08000n);
    // Once the driver clears F, the requester's next fault is recorded again.
    m.memory.write32(BASE + 0x22cn, 1 << 31);
    expect(m.dev.dmaWrite(0x1a09000n, new Uint8Array(4)).ok).toBe(false);
    expect(m.hw.faults.recorded).toBe(2);
    expect(m.hw.faults.frcd[0]?.lo).toBe(0x1a09000n);
  });

  it("regression (QEMU vtd_get_iotlb_key; 6.1 x86 random-80 line 35): QEMU's IOTLB is per requester, so a device's cached read does not silence another device's write fault", () => {
    const m = bare({ qemuQuirks: true });
    const t = tables(m, PTE.R);
    // 00:02.0 (devfn 0x10) in the same domain (did 5, same tables).
    m.memory.write64(t.ctx + 0x100n, m.memory.read64(t.ctx + 0x80n));
    m.memory.write64(t.ctx + 0x108n, m.memory.read64(t.ctx + 0x88n));
    const dev2 = new PciDevice(m.memory, { bus: 0, slot: 2, classCode: 0xff00 });
    dev2.upstream = m.hw;
    m.hw.onFaultEvent = () => {};
    expect(m.dev.dmaRead(0x1010n, 4).ok).toBe(true);
    // 00:01.0's own write hits its cached read-only entry: QEMU drops it without a record.
    expect(m.dev.dmaWrite(0x1010n, new Uint8Array(4)).ok).toBe(false);
    expect(m.hw.faults.recorded).toBe(0);
    // 00:02.0 has no entry of its own: its write walks the tables and faults.
    expect(dev2.dmaWrite(0x1010n, new Uint8Array(4))).toMatchObject({
      ok: false,
      reason: "PTE Write access is not set",
    });
    expect(m.hw.faults.recorded).toBe(1);
    expect(Number((m.hw.faults.frcd[0]?.hi ?? 0n) & 0xffffn)).toBe(0x10);
    // A domain-selective flush empties every requester's entries of the domain.
    m.hw.iotlb.invalidateDomain(5);
    expect(m.hw.iotlb.size).toBe(0);
  });

  it("without QEMU's quirks the IOTLB is shared per domain and a hit re-checks the rights", () => {
    const m = bare();
    const t = tables(m, PTE.R);
    m.memory.write64(t.ctx + 0x100n, m.memory.read64(t.ctx + 0x80n));
    m.memory.write64(t.ctx + 0x108n, m.memory.read64(t.ctx + 0x88n));
    const dev2 = new PciDevice(m.memory, { bus: 0, slot: 2, classCode: 0xff00 });
    dev2.upstream = m.hw;
    m.hw.onFaultEvent = () => {};
    expect(m.dev.dmaRead(0x1010n, 4).ok).toBe(true);
    const hits = m.hw.stats.iotlbHits;
    expect(dev2.dmaRead(0x1020n, 4).ok).toBe(true);
    expect(m.hw.stats.iotlbHits).toBe(hits + 1);
    expect(dev2.dmaWrite(0x1010n, new Uint8Array(4)).ok).toBe(false);
    expect(m.hw.faults.recorded).toBe(1);
  });

  it("fault processing disabled (context FPD) records nothing", () => {
    const m = bare();
    const t = tables(m, PTE.R);
    m.memory.write64(t.ctx + 0x80n, m.memory.read64(t.ctx + 0x80n) | CTX.FPD);
    m.hw.contextCache.invalidateAll();
    expect(m.dev.dmaRead(0x5000n, 1).ok).toBe(false);
    expect(m.hw.faults.recorded).toBe(0);
  });
});

describe("IOTLB and context cache need invalidation", () => {
  for (const qi of [false, true]) {
    it(`a stale translation survives until the driver invalidates (${qi ? "queued" : "register"} invalidation)`, () => {
      const m = q35({ driver: { queuedInvalidation: qi } });
      const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
      const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
      m.iommu.claimDmaOwner(g, {});
      m.iommu.attachGroup(d, g);
      m.iommu.map(d, 0x10000n, 0x100000000n, 0x1000n, IOMMU_READ | IOMMU_WRITE);
      expect(m.edu.dmaRead(0x10000n, 1).ok).toBe(true);
      // Clear the leaf behind the driver's back: the IOTLB still has it.
      const vt = d.driver as unknown as { table: { lookup(p: number): { at: bigint } } };
      m.memory.write64(vt.table.lookup(0x10).at, 0n);
      expect(m.edu.dmaRead(0x10000n, 1).ok).toBe(true);
      // A proper unmap invalidates (page-selective), so the next DMA walks and faults.
      m.iommu.map(d, 0x10000n, 0x100000000n, 0x1000n, IOMMU_READ | IOMMU_WRITE);
      m.iommu.unmap(d, 0x10000n, 0x1000n);
      expect(m.edu.dmaRead(0x10000n, 1).ok).toBe(false);
      expect(m.hw.stats.qiDescriptors > 0).toBe(qi);
    });
  }

  it("a detached device's context is invalidated: its DMA faults (context not present)", () => {
    const m = q35();
    const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    m.iommu.claimDmaOwner(g, {});
    m.iommu.attachGroup(d, g);
    m.iommu.map(d, 0x10000n, 0x100000000n, 0x1000n, IOMMU_READ);
    expect(m.edu.dmaRead(0x10000n, 1).ok).toBe(true);
    m.iommu.releaseDevice(m.edu);
    expect(m.edu.dmaRead(0x10000n, 1)).toMatchObject({ ok: false, reason: "Present bit in context entry is clear" });
  });
});

describe("QEMU 7.2 quirks (named option)", () => {
  // 7.3's leaf format, so that a write-only leaf exists and the hardware's own checks show.
  function setup(qemuQuirks: boolean) {
    const m = q35({ hw: { qemuQuirks }, driver: { slPteFormat: "vtdss" } });
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    m.iommu.claimDmaOwner(g, {});
    m.iommu.attachGroup(d, g);
    m.iommu.map(d, 0x200000n, 0x100010000n, 0x1000n, IOMMU_READ);
    m.iommu.map(d, 0x300000n, 0x100020000n, 0x1000n, IOMMU_WRITE);
    m.driver.drainLog();
    return m;
  }

  it("quirks on: an access an IOTLB hit lacks the right for is dropped silently (write after a read, read after a write)", () => {
    const m = setup(true);
    m.memory.write(0x100010000n, new Uint8Array([0xee]));
    expect(m.edu.dmaRead(0x200000n, 1).ok).toBe(true);
    expect(m.edu.dmaWrite(0x200000n, new Uint8Array([1])).ok).toBe(false);
    expect(m.memory.read(0x100010000n, 1)[0]).toBe(0xee);
    expect(m.edu.dmaWrite(0x300000n, new Uint8Array([1])).ok).toBe(true);
    expect(m.edu.dmaRead(0x300000n, 4).ok).toBe(false);
    expect(m.driver.drainLog()).toEqual([]);
    expect(m.hw.stats.droppedAccesses).toBe(2);
  });

  it("quirks on, no earlier write: a read through a write-only leaf faults (reason 6): the check is on the walk", () => {
    const m = setup(true);
    expect(m.edu.dmaRead(0x300000n, 4).ok).toBe(false);
    expect(m.driver.drainLog()[1]).toContain("[fault reason 0x06]");
  });

  it("quirks on, no earlier read: the write faults (reason 5)", () => {
    const m = setup(true);
    expect(m.edu.dmaWrite(0x200000n, new Uint8Array([1])).ok).toBe(false);
    expect(m.driver.drainLog()[1]).toContain("[fault reason 0x05]");
  });

  it("quirks on: QEMU's IOTLB is per requester (vtd_iotlb_key's sid): another device's read does not make this device's write vanish (6.12 x86 random-80)", () => {
    const m = q35({ hw: { qemuQuirks: true }, driver: { slPteFormat: "vtdss" }, edus: 2 });
    const [a, b] = m.edus as [PciDevice, PciDevice];
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    for (const dev of [a, b]) {
      const g = m.iommu.groupOf(dev) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
      m.iommu.claimDmaOwner(g, {});
      m.iommu.attachGroup(d, g);
    }
    m.iommu.map(d, 0x200000n, 0x100010000n, 0x1000n, IOMMU_READ);
    m.driver.drainLog();
    expect(b.dmaRead(0x200000n, 4).ok).toBe(true);
    // a's write misses its own (empty) IOTLB entries, walks, and faults with a record
    expect(a.dmaWrite(0x200000n, new Uint8Array([1])).ok).toBe(false);
    const log = m.driver.drainLog();
    expect(log[1]).toContain("[00:01.0] fault addr 0x200000 [fault reason 0x05]");
    // b's own cached read still swallows b's write
    expect(b.dmaWrite(0x200000n, new Uint8Array([1])).ok).toBe(false);
    expect(m.driver.drainLog()).toEqual([]);
    expect(m.hw.stats.droppedAccesses).toBe(1);
    // a domain-selective flush drops every requester's entries of the domain: b's write now walks and faults
    m.hw.iotlb.invalidateDomain(m.hw.contextCache.get(b.requesterId)?.did ?? -1);
    expect(b.dmaWrite(0x200000n, new Uint8Array([1])).ok).toBe(false);
    expect(m.driver.drainLog()[1]).toContain("[00:02.0] fault addr 0x200000 [fault reason 0x05]");
  });

  it("quirks off (real hardware): the write after a read faults; a read through write-only faults", () => {
    const m = setup(false);
    m.edu.dmaRead(0x200000n, 1);
    expect(m.edu.dmaWrite(0x200000n, new Uint8Array([1])).ok).toBe(false);
    expect(m.driver.drainLog()[1]).toContain("PTE Write access is not set");
    expect(m.edu.dmaRead(0x300000n, 4).ok).toBe(false);
    expect(m.driver.drainLog()[1]).toContain("PTE Read access is not set");
  });
});

describe("queued invalidation: wait descriptor status write", () => {
  it("writes the status dword at hi[63:2] only, leaving the neighbouring dword and bytes alone", () => {
    const { memory, pool } = bare();
    const q = pool.alloc();
    const status = pool.alloc();
    memory.write64(status, 0x1111_1111_2222_2222n);
    memory.write64(status + 8n, 0x3333_3333_4444_4444n);
    memory.write64(BASE + BigInt(REG.IQA), q);
    memory.write32(BASE + BigInt(REG.GCMD), GCMD.QIE);
    // Two waits: status into the high dword of the first qword, then the low dword of the second.
    memory.write64(q, QI.WAIT | QI.WAIT_SW | (0xabcdefn << 32n));
    memory.write64(q + 8n, status + 4n);
    memory.write64(q + 16n, QI.WAIT | QI.WAIT_SW | (0xfedcba98n << 32n));
    memory.write64(q + 24n, status + 8n);
    memory.write64(BASE + BigInt(REG.IQT), 32n);
    expect(memory.read64(status)).toBe((0x0000_0000_00ab_cdefn << 32n) | 0x2222_2222n);
    expect(memory.read64(status + 8n)).toBe(0x3333_3333_fedc_ba98n);
    expect(memory.read32(status + 4n)).toBe(0xabcdef);
    expect(memory.read64(BASE + BigInt(REG.IQH))).toBe(32n);
  });
});
