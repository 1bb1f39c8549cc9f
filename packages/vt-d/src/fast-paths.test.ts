/**
 * Regression tests for the number / precomputed fast paths (issue #6 speed work): the invalidation queue
 * decoded as numbers with cached slot addresses, the walk's rights in BigInt, the 4 KiB map/unmap fast
 * paths and their fall-back to the general code. Each checks the architected result, not the speed.
 */
import { emptyGather, IOMMU_READ, IOMMU_WRITE, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { CTX, FAULT, GCMD, QI, REG } from "./arch/regs.js";
import type { VtdDomain } from "./driver/domain.js";
import { Iotlb } from "./hw/tlb.js";
import { createVtdHardware } from "./hw/vtd-hardware.js";
import { q35 } from "./testing/q35.js";

const RW = IOMMU_READ | IOMMU_WRITE;
const BASE = 0xfed90000n;
const reg = (off: number) => BASE + BigInt(off);

function unmanaged(o: Parameters<typeof q35>[0] = {}) {
  const m = q35(o);
  const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
  const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
  m.iommu.claimDmaOwner(g, {});
  m.iommu.attachGroup(d, g);
  return { ...m, d, vt: d.driver as unknown as VtdDomain };
}

/** Bare hardware with hand-built tables: root → context (did 5, 3-level) → the given L3/L2/L1 rights. */
function bare() {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 0x40000000n);
  const pool = new PageAllocator(memory, 0x1000000n, 0x1000000n);
  const hw = createVtdHardware({ memory, mmioBase: BASE });
  const dev = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0xff00 });
  dev.upstream = hw;
  const root = pool.alloc();
  const ctx = pool.alloc();
  memory.write64(root, ctx | 1n);
  memory.write64(BASE + BigInt(REG.RTADDR), root);
  memory.write32(reg(REG.GCMD), GCMD.SRTP);
  memory.write32(reg(REG.GCMD), GCMD.TE);
  memory.write32(reg(REG.FECTL), 0);
  return { memory, pool, hw, dev, ctx };
}

describe("queued invalidation fast path", () => {
  it("keeps working across queue wrap-arounds (cached slot addresses); IQH/IQT read back as the driver left them", () => {
    const m = unmanaged();
    const req = { device: m.edu, requesterId: m.edu.requesterId, iova: 0x20000000n, access: "read" as const };
    // 300 strict pairs = 600 descriptors: more than two trips round the 256-entry queue.
    for (let i = 0; i < 300; i++) {
      const phys = 0x100000000n + BigInt(i % 7) * 0x1000n;
      m.iommu.map(m.d, 0x20000000n, phys, 0x1000n, RW);
      expect(m.hw.translate(req)).toMatchObject({ kind: "ok", phys });
      m.iommu.unmap(m.d, 0x20000000n, 0x1000n);
      expect(m.hw.translate(req).kind).toBe("fault");
    }
    const iqh = m.memory.read64(reg(REG.IQH));
    expect(iqh).toBe(m.memory.read64(reg(REG.IQT)));
    expect(iqh % 16n).toBe(0n);
    expect(iqh).toBeLessThan(0x1000n);
  });

  it("re-programming IQA moves the queue: descriptors come from the new base; a wait status in the upper dword keeps the lower", () => {
    const { memory, pool, hw } = bare();
    const q1 = pool.alloc();
    const q2 = pool.alloc();
    const status = pool.alloc();
    memory.write64(status, 0x1111_2222_3333_4444n);
    const wait = (at: bigint, data: bigint, addr: bigint) => {
      memory.write64(at, QI.WAIT | QI.WAIT_SW | (data << 32n));
      memory.write64(at + 8n, addr);
    };
    memory.write64(reg(REG.IQA), q1);
    memory.write32(reg(REG.GCMD), GCMD.TE | GCMD.QIE);
    wait(q1, 0xaaaa_aaaan, status + 4n);
    memory.write64(reg(REG.IQT), 0x10n);
    expect(memory.read64(status)).toBe(0xaaaa_aaaa_3333_4444n);
    // Disable, move the queue to q2 (a stale descriptor stays in q1's slot 0), re-enable: IQH restarts at 0.
    memory.write32(reg(REG.GCMD), GCMD.TE);
    memory.write64(reg(REG.IQA), q2);
    memory.write64(reg(REG.IQT), 0n);
    memory.write32(reg(REG.GCMD), GCMD.TE | GCMD.QIE);
    wait(q1, 0xdead_beefn, status);
    wait(q2, 0x5555_5555n, status);
    memory.write64(reg(REG.IQT), 0x10n);
    expect(memory.read64(status)).toBe(0xaaaa_aaaa_5555_5555n);
    expect(memory.read64(reg(REG.IQH))).toBe(0x10n);
    expect(hw.stats.qiDescriptors).toBe(2);
  });

  it("a page-selective descriptor above 2^53 (57-bit unit) still invalidates the right page", () => {
    const m = unmanaged({ hw: { aw: 57 } });
    const iova = (1n << 56n) + 0x5000n;
    const req = { device: m.edu, requesterId: m.edu.requesterId, iova, access: "read" as const };
    m.iommu.map(m.d, iova, 0x100003000n, 0x1000n, RW);
    expect(m.hw.translate(req)).toMatchObject({ kind: "ok", phys: 0x100003000n });
    m.iommu.unmap(m.d, iova, 0x1000n);
    expect(m.hw.translate(req).kind).toBe("fault");
  });
});

describe("wait descriptor status data", () => {
  it("the token round-trips on both sides of 2^21 (its data built in one number conversion below)", () => {
    const m = unmanaged();
    const unit = m.driver.units[0] as unknown as { waitStatus: number; qStatus: bigint };
    unit.waitStatus = 0x1f_fffe;
    for (const expected of [0x1f_ffff, 0x20_0000, 0x20_0001]) {
      m.iommu.map(m.d, 0x100000n, 0x40000000n, 0x1000n, RW);
      expect(m.iommu.unmap(m.d, 0x100000n, 0x1000n)).toBe(0x1000n);
      expect(m.memory.read32(unit.qStatus)).toBe(expected);
    }
    unit.waitStatus = 0x7fff_fffe;
    m.iommu.map(m.d, 0x100000n, 0x40000000n, 0x1000n, RW);
    m.iommu.unmap(m.d, 0x100000n, 0x1000n);
    expect(m.memory.read32(unit.qStatus)).toBe(0x7fff_ffff);
  });
});

describe("IOTLB bookkeeping", () => {
  it("re-inserting a tag does not count twice; a full IOTLB is dropped whole; flushing an empty one is harmless", () => {
    const t = new Iotlb(3);
    const e = { phys: 0x1000n, level: 1, perm: 3 };
    t.invalidateAll();
    t.insert(1, 5, e);
    t.insert(1, 5, { ...e, perm: 1 });
    expect(t.size).toBe(1);
    expect(t.lookup(1, 5)?.perm).toBe(1);
    t.insert(1, 512, { phys: 0x200000n, level: 2, perm: 3 });
    t.insert(2, 5, e);
    expect(t.size).toBe(3);
    t.insert(2, 6, e);
    expect(t.size).toBe(1);
    expect(t.lookup(1, 5)).toBeUndefined();
    expect(t.lookup(2, 6)).toBe(e);
    t.invalidatePages(2, 6, 0);
    expect(t.size).toBe(0);
    t.invalidateAll();
    t.insert(2, 7, e);
    expect(t.size).toBe(1);
  });
});

describe("IOTLB per requester (QEMU 7.2's vtd_iotlb_key holds the source id)", () => {
  it("an entry is found only by the requester that filled it; page- and domain-selective flushes reach every requester's entries", () => {
    const e = { phys: 0x1000n, level: 1, perm: 1 };
    const shared = new Iotlb(16);
    shared.insert(1, 5, e, 8);
    expect(shared.lookup(1, 5, 16)).toBe(e);
    const t = new Iotlb(16, true);
    t.insert(1, 5, e, 8);
    t.insert(1, 6, e, 16);
    expect(t.lookup(1, 5, 8)).toBe(e);
    expect(t.lookup(1, 5, 16)).toBeUndefined();
    expect(t.size).toBe(2);
    t.invalidatePages(1, 4, 2); // pfns 4-7: both requesters' entries
    expect(t.size).toBe(0);
    t.insert(1, 5, e, 8);
    t.insert(1, 5, e, 16);
    t.insert(2, 5, e, 24);
    expect(t.size).toBe(3);
    t.invalidateDomain(1);
    expect(t.size).toBe(1);
    expect(t.lookup(2, 5, 24)).toBe(e);
  });
});

describe("walker fast path", () => {
  it("rights that AND to nothing (read-only table above a write-only leaf) fault both ways", () => {
    const b = bare();
    const { memory, pool, ctx } = b;
    const [l3, l2, l1] = [pool.alloc(), pool.alloc(), pool.alloc()];
    memory.write64(ctx + 0x80n, l3 | CTX.P);
    memory.write64(ctx + 0x88n, 1n | (5n << CTX.DID_SHIFT));
    memory.write64(l3, l2 | 3n);
    memory.write64(l2, l1 | 1n);
    memory.write64(l1 + 8n, 0x200000n | 2n);
    const req = { device: b.dev, requesterId: b.dev.requesterId, iova: 0x1008n };
    expect(b.hw.translate({ ...req, access: "read" })).toMatchObject({ kind: "fault" });
    expect(b.memory.read32(reg(0x220 + 12)) & 0xff).toBe(FAULT.READ);
    expect(b.hw.translate({ ...req, access: "write" })).toMatchObject({ kind: "fault" });
    expect(b.hw.iotlb.size).toBe(0);
  });

  it("rights are ANDed down the walk: a read-only L2 entry makes a RW leaf read-only (write faults with reason 5)", () => {
    const b = bare();
    const { memory, pool, ctx } = b;
    const l3 = pool.alloc();
    const l2 = pool.alloc();
    const l1 = pool.alloc();
    memory.write64(ctx + 0x80n, l3 | CTX.P);
    memory.write64(ctx + 0x88n, 1n | (5n << CTX.DID_SHIFT));
    memory.write64(l3, l2 | 3n);
    memory.write64(l2, l1 | 1n);
    memory.write64(l1 + 8n, 0x200000n | 3n);
    const req = { device: b.dev, requesterId: b.dev.requesterId, iova: 0x1008n };
    expect(b.hw.translate({ ...req, access: "read" })).toEqual({ kind: "ok", phys: 0x200008n, span: 0xff8n });
    expect(b.hw.translate({ ...req, access: "write" })).toMatchObject({ kind: "fault" });
    expect(b.memory.read32(reg(0x220 + 12)) & 0xff).toBe(FAULT.WRITE);
  });
});

describe("4 KiB map/unmap fast paths", () => {
  it("max_addr and the gather follow a 4 KiB map/unmap as the general path does", () => {
    const m = unmanaged();
    const t = m.vt;
    expect(t.mapPages(0x3000n, 0x100000000n, 0x1000n, 1, RW)).toEqual({ mapped: 0x1000n, error: null });
    expect(t.maxAddr).toBe(0x4000n);
    expect(t.mapPages(0x1000n, 0x100001000n, 0x1000n, 2, IOMMU_READ)).toEqual({ mapped: 0x2000n, error: null });
    expect(t.maxAddr).toBe(0x4000n);
    const g = emptyGather();
    expect(t.unmapPages(0x3000n, 0x1000n, 1, g)).toBe(0x1000n);
    expect(t.maxAddr).toBe(0x3000n);
    expect(t.unmapPages(0x1000n, 0x1000n, 1, g)).toBe(0x1000n);
    // Disjoint from the gathered 0x3000 page: that one was synced first (iommu_iotlb_gather_add_page).
    expect(g).toEqual({ start: 0x1000n, end: 0x1fffn, pgsize: 0x1000n });
    expect(t.maxAddr).toBe(0x3000n);
    // A hole in a present L1 table: the entry found is a 4 KiB one, so 4 KiB is reported (and nothing cleared).
    expect(t.unmapPages(0x2000n, 0x1000n, 1, emptyGather())).toBe(0x1000n);
    expect(t.iovaToPhys(0x2000n)).toBe(0n);
    expect(t.iovaToPhys(0x1000n)).toBe(0n);
  });

  it("checks stay as before: misaligned, no rights, beyond the width", () => {
    const { vt } = unmanaged();
    expect(vt.mapPages(0x1800n, 0x100000000n, 0x1000n, 1, RW).error?.code).toBe("EINVAL");
    expect(vt.mapPages(0x1000n, 0x100000800n, 0x1000n, 1, RW).error?.code).toBe("EINVAL");
    expect(vt.mapPages(0x1000n, 0x100000000n, 0x1000n, 1, 0).error?.code).toBe("EINVAL");
    expect(vt.mapPages((1n << 39n) - 0x1000n, 0x100000000n, 0x1000n, 2, RW).error?.code).toBe("EFAULT");
    expect(vt.mapPages((1n << 39n) - 0x1000n, 0x100000000n, 0x1000n, 1, RW)).toEqual({ mapped: 0x1000n, error: null });
    expect(vt.maxAddr).toBe(1n << 39n);
    expect(vt.unmapPages(1n << 39n, 0x1000n, 1, emptyGather())).toBe(0n);
  });

  it("a 4 KiB unmap at a 2 MiB superpage still takes the general path (whole superpage)", () => {
    const { vt } = unmanaged();
    vt.mapPages(0x200000n, 0x100200000n, 0x200000n, 1, RW);
    const g = emptyGather();
    expect(vt.unmapPages(0x200000n, 0x1000n, 1, g)).toBe(0x200000n);
    expect(g).toEqual({ start: 0x200000n, end: 0x3fffffn, pgsize: 0x200000n }); // the size unmapped
    expect(vt.iovaToPhys(0x300000n)).toBe(0n);
  });

  it("PTEs written by the fast path: output address, R/W, SNP once snooping is forced", () => {
    const m = unmanaged({ hw: { snoopControl: true } });
    const t = m.vt;
    t.mapPages(0x1000n, 0x100005000n, 0x1000n, 1, IOMMU_WRITE);
    expect(t.enforceCacheCoherency()).toBe(true);
    t.mapPages(0x2000n, 0x100006000n, 0x1000n, 1, RW);
    const l1 = (t.table as NonNullable<typeof t.table>).lookup(1);
    // Write-only still reads (6.1's dma_pte format: DMA_FL_PTE_PRESENT is the R bit).
    expect(l1.value).toBe(0x100005000n | 3n);
    expect(m.memory.read64(l1.at + 8n)).toBe(0x100006000n | 3n | (1n << 11n));
  });

  it("single-page maps over a present entry or under a superpage warn exactly as the multi-page loop", () => {
    const { vt } = unmanaged();
    const t = vt.table as NonNullable<typeof vt.table>;
    vt.mapPages(0x1000n, 0x100001000n, 0x1000n, 2, IOMMU_READ);
    vt.mapPages(0x1000n, 0x100009000n, 0x1000n, 1, IOMMU_READ);
    vt.mapPages(0x1000n, 0x100009000n, 0x1000n, 2, IOMMU_READ);
    vt.mapPages(0x400000n, 0x100400000n, 0x200000n, 1, RW);
    expect(vt.mapPages(0x401000n, 0x100009000n, 0x1000n, 1, RW)).toEqual({ mapped: 0x1000n, error: null });
    expect(t.warnings).toEqual([
      "DMAR: ERROR: DMA PTE for vPFN 0x1 already set (to 100001001 not 100009001)",
      "DMAR: ERROR: DMA PTE for vPFN 0x1 already set (to 100001001 not 100009001)",
      "DMAR: ERROR: DMA PTE for vPFN 0x2 already set (to 100002001 not 10000a001)",
      "DMAR: ERROR: DMA PTE for vPFN 0x401 already set (to ? not ?)",
    ]);
    expect(vt.iovaToPhys(0x401000n)).toBe(0x100401000n);
  });
});
