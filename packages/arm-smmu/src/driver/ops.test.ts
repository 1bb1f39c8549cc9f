import {
  type DriverDomain,
  emptyGather,
  IOMMU_FAULT_READ,
  IOMMU_FAULT_WRITE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_READ,
  IOMMU_WRITE,
  PageAllocator,
  PciDevice,
  PhysicalMemory,
  PlatformDevice,
} from "@iommu/core";
import { describe, expect, it } from "vitest";
import { DESC } from "../arch/lpae.js";
import { Q_BASE_LOG2SIZE_MASK, REG } from "../arch/regs.js";
import { createSmmuV3Hardware } from "../hw/smmu-v3.js";
import { makeRig, RAM_BASE } from "../testing/rig.js";
import type { SmmuDomain } from "./domain.js";
import { createArmSmmuV3Driver } from "./ops.js";

const RW = IOMMU_READ | IOMMU_WRITE;
const hex16 = (v: bigint) => `0x${v.toString(16).padStart(16, "0")}`;

describe("probe and ops (conformance: linux-6.1/arm64 basic, iova-range-48bit)", () => {
  it("reads the ID registers: 44-bit IAS/OAS, stage 1, 16-bit stream ids, two-level stream table", () => {
    const { ops, driver } = makeRig();
    expect(driver.features).toMatchObject({ stage1: true, stage2: false, oas: 44, ias: 44, sidBits: 16 });
    expect(driver.features.twoLevelStreamTable).toBe(true);
    expect(ops.pgsizeBitmap).toBe(0x40201000n | 0x2004000n | 0x20010000n);
  });

  it("gives a stage-1 domain 4K|2M|1G pages and the 48-bit aperture [0, 0xffffffffffff] with force_aperture", () => {
    const rig = makeRig();
    const d = rig.domain([rig.pci(1)]);
    expect(d.pgsizeBitmap).toBe(0x40201000n);
    expect(d.geometry).toEqual({ apertureStart: 0n, apertureEnd: 0xffffffffffffn, forceAperture: true });
  });

  it("reports the software MSI window [0x8000000, 0x80fffff] as sw-msi, write|noexec|mmio", () => {
    const rig = makeRig();
    expect(rig.ops.getResvRegions(rig.pci(1))).toEqual([
      { start: 0x8000000n, length: 0x100000n, prot: IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO, type: "sw-msi" },
    ]);
  });

  it("adds IORT ITS doorbells as msi, RMRs as direct for their stream ids, and the seed's host-bridge windows as reserved, each with its prot", () => {
    const rig = makeRig(
      {},
      {
        firmware: {
          itsDoorbells: [{ start: 0x8090000n, length: 0x10000n }],
          rmrs: [
            { start: 0x50000000n, length: 0x1000n, streamIds: [8] },
            { start: 0x50001000n, length: 0x1000n, streamIds: [16], relaxable: true },
          ],
        },
        seedHostBridgeWindows: [{ start: 0x10000000n, length: 0x2eff0000n }],
      },
    );
    const types = rig.ops.getResvRegions(rig.pci(1)).map((r) => [r.start, r.type, r.prot]);
    const doorbell = IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO;
    expect(types).toEqual([
      [0x8000000n, "sw-msi", doorbell],
      [0x8090000n, "msi", doorbell],
      [0x50000000n, "direct", RW],
      [0x10000000n, "reserved", 0],
    ]);
    expect(rig.ops.getResvRegions(rig.pci(2)).map((r) => r.type)).toContain("direct-relaxable");
  });

  it("puts each PCI function in its own group and refuses devices not behind it (ENODEV) or beyond SIDSIZE (ERANGE)", () => {
    const rig = makeRig({ streamIdBits: 8 }, { streamIdOf: (d) => (d.name === "other" ? null : d.requesterId) });
    const a = rig.pci(1);
    const b = rig.pci(2);
    expect(rig.ops.deviceGroup(a)).not.toBe(rig.ops.deviceGroup(b));
    expect(() => rig.ops.probeDevice(new PlatformDevice(rig.memory, "other", 3))).toThrow(
      expect.objectContaining({ code: "ENODEV", op: "arm_smmu_probe_device" }),
    );
    const far = new PciDevice(rig.memory, { bus: 1, slot: 0, classCode: 0 });
    expect(() => rig.ops.probeDevice(far)).toThrow(expect.objectContaining({ code: "ERANGE" }));
  });

  it("answers null from domainAlloc when no frame is left, keeping no frame and no ASID", () => {
    const memory = new PhysicalMemory();
    memory.addRam(RAM_BASE, 0x1000000n);
    const hw = createSmmuV3Hardware({ memory, mmioBase: 0x9050000n });
    const pages = new PageAllocator(memory, RAM_BASE, (32n + 256n) << 12n); // 32 frames besides the event queue
    const { ops } = createArmSmmuV3Driver({ memory, mmioBase: 0x9050000n, pageAllocator: pages });
    const dev = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    dev.upstream = hw;
    ops.probeDevice(dev);
    const ctx = { reportFault: () => -38 };
    expect((ops.domainAlloc("unmanaged", ctx) as SmmuDomain).tag).toBe(1);
    // Use up the pool, then give back exactly one frame: enough for a pgd but not for the CD.
    const taken: bigint[] = [];
    for (;;) {
      try {
        taken.push(pages.alloc());
      } catch {
        break; // exhausted
      }
    }
    pages.freeFrame(taken.pop() as bigint);
    const frames = pages.framesInUse;
    expect(ops.domainAlloc("unmanaged", ctx)).toBeNull();
    expect(pages.framesInUse).toBe(frames);
    for (const f of taken) pages.freeFrame(f);
    // The failed allocation gave its ASID back.
    expect((ops.domainAlloc("unmanaged", ctx) as SmmuDomain).tag).toBe(2);
  });

  it("has no blocked domain (6.1) and is capable of NOEXEC and coherency, not INTR_REMAP", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    expect(rig.ops.domainAlloc("blocked", rig.ctx)).toBeNull();
    expect(rig.ops.capable(dev, "NOEXEC")).toBe(true);
    expect(rig.ops.capable(dev, "CACHE_COHERENCY")).toBe(true);
    expect(rig.ops.capable(dev, "INTR_REMAP")).toBe(false);
    // 6.1 has no enforce_cache_coherency for SMMUv3: VFIO reports dma_cc 0 (basic.jsonl "ext").
    const d = rig.domain([dev]);
    expect((d as DriverDomain).enforceCacheCoherency).toBeUndefined();
  });

  it("refuses an IOVA beyond the 48-bit input range (ERANGE) and maps the last page of it", () => {
    const rig = makeRig();
    const d = rig.domain([rig.pci(1)]);
    expect(d.mapPages(0xfffffffff000n, RAM_BASE, 0x1000n, 1, RW).error).toBeNull();
    const r = d.mapPages(0x1000000000000n, RAM_BASE, 0x1000n, 1, RW);
    expect(r.error).toMatchObject({ code: "ERANGE", op: "arm_lpae_map_pages" });
    expect(d.iovaToPhys(0xfffffffff123n)).toBe(RAM_BASE + 0x123n);
  });
});

describe("device DMA through driver-written tables", () => {
  it("translates reads and writes through a 4 KiB mapping written with real descriptor bits", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    expect(d.mapPages(0x100000n, RAM_BASE + 0x5000n, 0x1000n, 2, RW).error).toBeNull();
    const w = dev.dmaWrite(0x100ffcn, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    expect(w.ok).toBe(true);
    expect([...rig.memory.read(RAM_BASE + 0x5ffcn, 8)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const leaf = rig.hw.walkFromMemory(8, 0x100000n);
    expect(leaf).toMatchObject({ kind: "leaf", level: 3 });
    const desc = (leaf as { desc: bigint }).desc;
    expect(desc & 3n).toBe(DESC.TYPE_PAGE);
    expect(desc & DESC.AF).toBe(DESC.AF);
    expect(desc & DESC.AP_UNPRIV).toBe(DESC.AP_UNPRIV);
    expect(desc & DESC.AP_RDONLY).toBe(0n);
    expect(desc & DESC.NG).toBe(DESC.NG);
  });

  it("uses one 2 MiB block where size and alignment allow, and splits it on a partial unmap", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    expect(d.mapPages(0x200000n, RAM_BASE + 0x200000n, 0x200000n, 1, RW).error).toBeNull();
    expect(rig.hw.walkFromMemory(8, 0x3ff000n)).toMatchObject({ kind: "leaf", level: 2, shift: 21 });
    expect(dev.dmaRead(0x201000n, 4).ok).toBe(true); // caches the block in the TLB
    const g = emptyGather();
    expect(d.unmapPages(0x201000n, 0x1000n, 1, g)).toBe(0x1000n);
    d.iotlbSync(g);
    expect(rig.hw.walkFromMemory(8, 0x200000n)).toMatchObject({
      kind: "leaf",
      level: 3,
      outBase: RAM_BASE + 0x200000n,
    });
    expect(d.iovaToPhys(0x201000n)).toBe(0n);
    expect(d.iovaToPhys(0x202010n)).toBe(RAM_BASE + 0x202010n);
    expect(dev.dmaRead(0x201000n, 4).ok).toBe(false);
    expect(dev.dmaRead(0x3ff000n, 4).ok).toBe(true);
  });

  it("refuses to map over a live mapping (EEXIST) and leaves the tables as they were", () => {
    const rig = makeRig();
    const d = rig.domain([rig.pci(1)]);
    d.mapPages(0x401000n, RAM_BASE, 0x1000n, 1, RW);
    const frames = rig.pages.framesInUse;
    const r = d.mapPages(0x400000n, RAM_BASE + 0x400000n, 0x200000n, 1, RW);
    expect(r).toMatchObject({ mapped: 0n, error: { code: "EEXIST" } });
    expect(rig.pages.framesInUse).toBe(frames);
    expect(d.iovaToPhys(0x401000n)).toBe(RAM_BASE);
    expect(d.iovaToPhys(0x400000n)).toBe(0n);
  });

  it("replaces an emptied table with a block, invalidating walks through it", () => {
    const rig = makeRig();
    const d = rig.domain([rig.pci(1)]);
    d.mapPages(0x600000n, RAM_BASE, 0x1000n, 1, RW);
    const g = emptyGather();
    d.unmapPages(0x600000n, 0x1000n, 1, g);
    d.iotlbSync(g);
    const frames = rig.pages.framesInUse;
    const commands = rig.hw.stats.commands;
    expect(d.mapPages(0x600000n, RAM_BASE + 0x600000n, 0x200000n, 1, RW).error).toBeNull();
    expect(rig.pages.framesInUse).toBe(frames - 1);
    expect(rig.hw.stats.commands).toBeGreaterThan(commands); // tlb_flush_walk before the table is freed
    expect(rig.hw.walkFromMemory(8, 0x600000n)).toMatchObject({ kind: "leaf", level: 2 });
  });
});

describe("event queue size (arm_smmu_device_hw_probe: EVTQ_MAX_SZ_SHIFT)", () => {
  it("asks for 2^15 records (Q_MAX_SZ_SHIFT 20 less the 32-byte entry), under QEMU's IDR1.EVENTQS of 19", () => {
    const rig = makeRig();
    expect(rig.driver.features.evtqLog2).toBe(15);
    expect(rig.memory.read64(0x9050000n + BigInt(REG.EVTQ_BASE)) & Q_BASE_LOG2SIZE_MASK).toBe(15n);
  });

  it("holds a whole page of word-sized fault events until the handler runs: no overflow, all of them read", () => {
    const rig = makeRig({}, {}, false);
    const dev = rig.pci(1);
    rig.domain([dev]);
    // The handler waits (as it does for QEMU's lock while the DMA runs), then drains once.
    const irq = rig.hw.onEventIrq;
    let raised = 0;
    rig.hw.onEventIrq = () => {
      raised++;
    };
    expect(dev.dmaWrite(0x400000n, new Uint8Array(0x1000)).ok).toBe(false);
    expect(raised).toBe(0x1000 / 4);
    expect(rig.hw.stats.eventsDropped).toBe(0);
    rig.hw.onEventIrq = irq;
    expect(rig.driver.handleEventIrq()).toBe(0x1000 / 4);
    expect(rig.driver.drainLog().some((l) => l.includes("overflow"))).toBe(false);
  });

  it("arm_smmu_init_one_queue: a pool short of contiguous frames gets a queue halved until it fits", () => {
    const memory = new PhysicalMemory();
    memory.addRam(RAM_BASE, 0x1000000n);
    createSmmuV3Hardware({ memory, mmioBase: 0x9050000n });
    const pages = new PageAllocator(memory, RAM_BASE, 64n << 12n);
    const { features } = createArmSmmuV3Driver({ memory, mmioBase: 0x9050000n, pageAllocator: pages });
    expect(features.evtqLog2).toBeLessThan(15);
    expect(2 ** features.evtqLog2 * 32).toBeLessThanOrEqual(64 * 4096);
    expect(memory.read64(0x9050000n + BigInt(REG.EVTQ_BASE)) & Q_BASE_LOG2SIZE_MASK).toBe(BigInt(features.evtqLog2));
  });
});

describe("faults (conformance: linux-6.1/arm64 edu-dma)", () => {
  it("reports an unmapped IOVA as F_TRANSLATION with the records QEMU writes, logs them rate-limited, and tells the core", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    d.mapPages(0x100000n, RAM_BASE, 0x1000n, 2, RW);
    const before = rig.memory.read(RAM_BASE + 0x1f80n, 0x80);
    const r = dev.dmaWrite(0x101f80n, new Uint8Array(0x100).fill(0xab));
    expect(r).toMatchObject({ ok: false, iova: 0x102000n, access: "write" });
    // A fault performs nothing: the mapped half was not written either.
    expect(rig.memory.read(RAM_BASE + 0x1f80n, 0x80)).toEqual(before);
    // edu-dma.jsonl, "dma 0x101f80 0x100 from-dev": one event per 4-byte word, the first 10 printed.
    const want: string[] = [];
    for (let i = 0n; i < 10n; i++) {
      want.push("arm-smmu-v3 9050000.smmuv3: event 0x10 received:");
      for (const v of [0x0000000800000010n, 0n, 0x102000n + 4n * i, 0n]) {
        want.push(`arm-smmu-v3 9050000.smmuv3: \t${hex16(v)}`);
      }
    }
    expect(rig.log).toEqual(want);
    expect(rig.faults).toHaveLength(0x80 / 4);
    expect(rig.faults[0]).toEqual({ dev, iova: 0x102000n, flags: IOMMU_FAULT_WRITE });
    // The window never ends without a clock: later faults are reported but not printed.
    expect(dev.dmaWrite(0x400000n, new Uint8Array(4)).ok).toBe(false);
    expect(rig.log).toHaveLength(50);
    expect(rig.faults).toHaveLength(0x80 / 4 + 1);
  });

  it("regression (QEMU 7.2 splits faulting reads too; 6.1 arm64 random-2 line 3): one event per 4-byte word of a read, to the page end", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    rig.domain([dev]);
    // `dma 0x183b000 0x800 to-dev` on nothing mapped: 0x200 events (RnW set), the first ten printed.
    expect(dev.dmaRead(0x183b000n, 0x800)).toMatchObject({ ok: false, iova: 0x183b000n, access: "read" });
    expect(rig.faults).toHaveLength(0x800 / 4);
    expect(rig.faults.every((f) => f.flags === IOMMU_FAULT_READ)).toBe(true);
    expect(rig.log).toHaveLength(50);
    expect(rig.log.slice(1, 5)).toEqual(
      [0x0000000800000010n, 0x0000000800000000n, 0x183b000n, 0n].map(
        (v) => `arm-smmu-v3 9050000.smmuv3: \t${hex16(v)}`,
      ),
    );
    expect(rig.log[48]).toBe(`arm-smmu-v3 9050000.smmuv3: \t${hex16(0x183b024n)}`);
    // Past the page end the rest is the next access's business: a read of 0x80 bytes at 0x...ff80 stops there.
    const rig2 = makeRig();
    const dev2 = rig2.pci(1);
    rig2.domain([dev2]);
    expect(dev2.dmaRead(0x73fff80n, 0x100).ok).toBe(false);
    expect(rig2.faults).toHaveLength(0x80 / 4);
  });

  it("regression (QEMU memory_access_size on the unassigned region; 6.1 arm64 random-49 line 13): an unaligned faulting access records its first event at its address, then one per aligned word", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    rig.domain([dev]);
    // `dma 0x1ffffdf 0x43 to-dev`: a 1-byte access to reach alignment, then 4-byte ones to the page end.
    expect(dev.dmaRead(0x1ffffdfn, 0x21).ok).toBe(false);
    const words = Array.from({ length: 8 }, (_, i) => 0x1ffffe0n + 4n * BigInt(i));
    expect(rig.faults.map((f) => f.iova)).toEqual([0x1ffffdfn, ...words]);
    expect(rig.log[3]).toBe(`arm-smmu-v3 9050000.smmuv3: \t${hex16(0x1ffffdfn)}`);
    expect(rig.log[8]).toBe(`arm-smmu-v3 9050000.smmuv3: \t${hex16(0x1ffffe0n)}`);
    // A tail of 3 bytes is a 2-byte and a 1-byte access; a misaligned word is 1 + 2 + 1.
    const rig2 = makeRig();
    const dev2 = rig2.pci(1);
    rig2.domain([dev2]);
    dev2.dmaRead(0x3000n, 3);
    dev2.dmaWrite(0x5001n, new Uint8Array(4));
    expect(rig2.faults.map((f) => f.iova)).toEqual([0x3000n, 0x3002n, 0x5001n, 0x5002n, 0x5004n]);
  });

  it("records a single event per faulting access off the QEMU board, and prints again after the rate-limit interval", () => {
    let t = 0;
    const rig = makeRig({ qemuQuirks: false }, { now: () => t });
    const dev = rig.pci(1);
    rig.domain([dev]);
    // DEFAULT_RATELIMIT_BURST: ten events (five lines each) print in a window, the eleventh does not.
    for (let i = 0; i < 11; i++) expect(dev.dmaWrite(0x400000n, new Uint8Array(0x100)).ok).toBe(false);
    expect(rig.log).toHaveLength(50);
    t = 4999;
    expect(dev.dmaWrite(0x400000n, new Uint8Array(0x100)).ok).toBe(false);
    expect(rig.log).toHaveLength(50);
    t = 5000;
    expect(dev.dmaWrite(0x400000n, new Uint8Array(0x100)).ok).toBe(false);
    expect(rig.log).toHaveLength(55);
    expect(rig.faults).toHaveLength(13);
  });

  it("reports a write to a read-only mapping as F_PERMISSION (0x13) and lets the read through", () => {
    const rig = makeRig();
    rig.pci(1);
    const dev = rig.pci(2);
    const d = rig.domain([dev]);
    d.mapPages(0x200000n, RAM_BASE, 0x1000n, 1, IOMMU_READ);
    expect(dev.dmaRead(0x200000n, 0x100).ok).toBe(true);
    expect(dev.dmaWrite(0x200000n, new Uint8Array(4)).ok).toBe(false);
    expect(rig.log[0]).toBe("arm-smmu-v3 9050000.smmuv3: event 0x13 received:");
    expect(rig.log[1]).toBe(`arm-smmu-v3 9050000.smmuv3: \t${hex16(0x0000001000000013n)}`);
    expect(rig.faults.map((f) => f.flags)).toEqual([IOMMU_FAULT_WRITE]);
  });

  it("lets a device read through a write-only mapping: stage 1 cannot express write-only", () => {
    const rig = makeRig({ qemuQuirks: false });
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    d.mapPages(0x300000n, RAM_BASE, 0x1000n, 1, IOMMU_WRITE);
    expect(dev.dmaRead(0x300000n, 0x100).ok).toBe(true);
    expect(dev.dmaWrite(0x300000n, new Uint8Array(4)).ok).toBe(true);
  });

  it("marks a read fault with RnW and, off the QEMU board, CLASS=IN", () => {
    const rig = makeRig({ qemuQuirks: false });
    const dev = rig.pci(1);
    rig.domain([dev]);
    expect(dev.dmaRead(0x5000n, 4).ok).toBe(false);
    expect(rig.log[2]).toBe(`arm-smmu-v3 9050000.smmuv3: \t${hex16((1n << 35n) | (2n << 40n))}`);
    expect(rig.faults[0]?.flags).toBe(IOMMU_FAULT_READ);
  });

  it("aborts DMA of a probed device that no domain was attached to (disable_bypass), without an event", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    expect(dev.dmaRead(0x1000n, 4)).toMatchObject({ ok: false, reason: "STE.Config abort" });
    expect(rig.log).toEqual([]);
  });

  it("passes DMA through untranslated in an identity domain", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    rig.domain([dev], "identity");
    rig.memory.write(RAM_BASE + 0x10n, new Uint8Array([9]));
    expect(dev.dmaRead(RAM_BASE + 0x10n, 1)).toMatchObject({ ok: true, data: new Uint8Array([9]) });
  });
});

describe("TLB and invalidation", () => {
  it("regression: a missing invalidation after unmap leaves a stale TLB entry that still translates", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    d.mapPages(0x100000n, RAM_BASE, 0x1000n, 1, RW);
    expect(dev.dmaRead(0x100000n, 4).ok).toBe(true); // walk, cached
    const g = emptyGather();
    expect(d.unmapPages(0x100000n, 0x1000n, 1, g)).toBe(0x1000n);
    expect(d.iovaToPhys(0x100000n)).toBe(0n);
    expect(rig.hw.walkFromMemory(8, 0x100000n)).toMatchObject({ kind: "fault" });
    // No TLBI yet: the hardware still translates from its TLB, as real SMMUs do.
    expect(dev.dmaRead(0x100000n, 4).ok).toBe(true);
    d.iotlbSync(g);
    expect(dev.dmaRead(0x100000n, 4).ok).toBe(false);
  });

  it("a TLB hit does not read the tables: rewriting a cached PTE behind the SMMU's back is invisible until TLBI", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    d.mapPages(0x100000n, RAM_BASE, 0x1000n, 1, RW);
    dev.dmaRead(0x100000n, 4);
    const walks = rig.hw.stats.walks;
    dev.dmaRead(0x100004n, 4);
    expect(rig.hw.stats.walks).toBe(walks);
    d.flushIotlbAll();
    dev.dmaRead(0x100004n, 4);
    expect(rig.hw.stats.walks).toBe(walks + 1);
  });

  it("invalidates with one command per granule when the SMMU has no range invalidation", () => {
    const rig = makeRig({ rangeInvalidation: false });
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    d.mapPages(0x100000n, RAM_BASE, 0x1000n, 8, RW);
    for (let i = 0n; i < 8n; i++) expect(dev.dmaRead(0x100000n + i * 0x1000n, 4).ok).toBe(true);
    const cmds = rig.hw.stats.commands;
    const g = emptyGather();
    expect(d.unmapPages(0x100000n, 0x1000n, 8, g)).toBe(0x8000n);
    d.iotlbSync(g);
    expect(rig.hw.stats.commands - cmds).toBe(9); // 8 TLBI_NH_VA + CMD_SYNC
    for (let i = 0n; i < 8n; i++) expect(dev.dmaRead(0x100000n + i * 0x1000n, 4).ok).toBe(false);
  });

  it("a device moved to another domain leaves the old one: freeing the old domain does not abort its stream", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    const a = rig.domain([dev]);
    const b = rig.domain([dev]);
    expect(a.masters.size).toBe(0);
    b.mapPages(0x100000n, RAM_BASE, 0x1000n, 1, RW);
    a.free();
    expect(dev.dmaRead(0x100000n, 4).ok).toBe(true);
  });

  it("frees a domain's tables and context: its ASID is invalidated and reused", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    const frames0 = rig.pages.framesInUse;
    const d = rig.domain([dev]);
    d.mapPages(0x100000n, RAM_BASE, 0x200000n, 3, RW);
    d.mapPages(0x40000000n, RAM_BASE, 0x1000n, 3, RW);
    dev.dmaRead(0x100000n, 4);
    const tag = d.tag;
    const other = rig.domain([]);
    d.free();
    expect(rig.pages.framesInUse).toBe(frames0 + other.pgtable!.framesInUse + 1);
    const again = rig.domain([dev]) as SmmuDomain;
    expect(again.tag).toBe(tag);
    expect(dev.dmaRead(0x100000n, 4).ok).toBe(false);
  });
});

describe("stream table entry and context descriptor (arm_smmu_write_strtab_ent, arm_smmu_write_ctx_desc, 6.1)", () => {
  /** The STE of `sid` in the 2-level stream table (span of stream ids 0-255), read back from memory. */
  function steOf(rig: ReturnType<typeof makeRig>, sid: number): bigint {
    const base = rig.memory.read64(0x9050000n + 0x80n) & ((1n << 52n) - 1n) & ~0x3fn;
    return (rig.memory.read64(base) & ((1n << 52n) - 1n) & ~0x3fn) + BigInt(sid * 64);
  }

  it("stage 1: STE dword 1 = S1DSS SSID0 + WBRA/ISH CD fetches; CD with T0SZ 16, IPS 44-bit, ASID, io-pgtable's MAIR", () => {
    const rig = makeRig();
    const dev = rig.pci(1);
    const d = rig.domain([dev]);
    const ste = steOf(rig, dev.requesterId);
    expect(rig.memory.read64(ste) & 0xfn).toBe(0xbn); // V | Config 0b101
    expect(hex16(rig.memory.read64(ste + 8n))).toBe(hex16(0xd6n)); // S1DSS=2, S1CIR=1, S1COR=1, S1CSH=3
    const cd = rig.memory.read64(ste) & ((1n << 52n) - 1n) & ~0x3fn;
    const d0 = rig.memory.read64(cd);
    expect(d0 & 0x3fn).toBe(16n); // T0SZ: 48-bit input
    expect((d0 >> 6n) & 3n).toBe(0n); // TG0 4K
    expect([(d0 >> 8n) & 3n, (d0 >> 10n) & 3n, (d0 >> 12n) & 3n]).toEqual([1n, 1n, 3n]); // coherent walk: WBWA, IS
    expect((d0 >> 32n) & 7n).toBe(4n); // IPS: 44 bits
    expect(d0 >> 48n).toBe(BigInt(d.tag));
    for (const bit of [30n, 31n, 41n, 45n, 46n, 47n]) expect((d0 >> bit) & 1n).toBe(1n); // EPD1 V AA64 R A ASET
    expect(rig.memory.read64(cd + 8n)).toBe(d.pgtable?.pgd);
    expect(hex16(rig.memory.read64(cd + 24n))).toBe(hex16(0xf404ff44n)); // NC, WBRWA, DEV, INC_OWBRWA
  });

  it("a non-coherent SMMU gets outer-shareable, non-cacheable table walks (CD and stage-2 STE)", () => {
    const s1 = makeRig({ coherent: false });
    const dev1 = s1.pci(1);
    s1.domain([dev1]);
    const cd = s1.memory.read64(steOf(s1, dev1.requesterId)) & ((1n << 52n) - 1n) & ~0x3fn;
    const d0 = s1.memory.read64(cd);
    expect([(d0 >> 8n) & 3n, (d0 >> 10n) & 3n, (d0 >> 12n) & 3n]).toEqual([0n, 0n, 2n]);
    const s2 = makeRig({ coherent: false, qemuQuirks: false }, { stage: 2 });
    const dev2 = s2.pci(1);
    s2.domain([dev2]);
    const d2 = s2.memory.read64(steOf(s2, dev2.requesterId) + 16n);
    expect([(d2 >> 40n) & 3n, (d2 >> 42n) & 3n, (d2 >> 44n) & 3n]).toEqual([0n, 0n, 2n]);
  });
});
