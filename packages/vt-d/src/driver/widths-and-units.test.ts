import { emptyGather, IOMMU_READ, IOMMU_WRITE, Iommu, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { createVtdHardware } from "../hw/vtd-hardware.js";
import { q35 } from "../testing/q35.js";
import type { VtdDomain } from "./domain.js";
import { createIntelIommuDriver } from "./ops.js";

function owned(m: ReturnType<typeof q35>) {
  const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
  const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
  m.iommu.claimDmaOwner(g, {});
  m.iommu.attachGroup(d, g);
  return d;
}

describe("address widths: 3, 4 and 5 levels", () => {
  for (const [aw, levels] of [
    [39, 3],
    [48, 4],
    [57, 5],
  ] as const) {
    it(`${aw}-bit unit: ${levels}-level tables, aperture [0, 2^${aw} - 1], DMA at the top of the aperture`, () => {
      const m = q35({ hw: { aw } });
      const d = owned(m);
      expect(d.geometry.apertureEnd).toBe((1n << BigInt(aw)) - 1n);
      expect((d.driver as unknown as VtdDomain).table?.levels).toBe(levels);
      const top = (1n << BigInt(aw)) - 0x200000n;
      m.iommu.map(d, top, 0x100200000n, 0x200000n, IOMMU_READ | IOMMU_WRITE);
      expect(m.edu.dmaWrite(top + 0x1234n, new Uint8Array([0x5a])).ok).toBe(true);
      expect(m.memory.read(0x100201234n, 1)[0]).toBe(0x5a);
      expect(m.edu.dmaRead(1n << BigInt(aw), 1)).toMatchObject({ ok: false, reason: "Access beyond MGAW" });
    });
  }

  it("a unit without superpages: pgsizes 0x1000 and a 2 MiB aligned map is 512 small pages", () => {
    const m = q35({ hw: { superpages: 0 } });
    const d = owned(m);
    expect(d.pgsizeBitmap).toBe(0x1000n);
    m.iommu.map(d, 0x200000n, 0x100200000n, 0x200000n, IOMMU_READ);
    expect((d.driver as unknown as VtdDomain).table?.leaves()).toHaveLength(512);
  });

  it("a PS bit at a level the unit does not support is a reserved-field fault (0xc)", () => {
    const m = q35({ hw: { superpages: 1 } });
    const d = owned(m);
    const t = (d.driver as unknown as VtdDomain).table as NonNullable<VtdDomain["table"]>;
    // Forge a 1 GiB leaf the hardware cannot walk.
    m.memory.write64(t.root + 8n, 0x40000000n | 0x83n);
    expect(m.edu.dmaRead(0x40000000n, 1)).toMatchObject({ ok: false, reason: "non-zero reserved fields in PTE" });
  });
});

describe("two DMAR units (device scopes + include-all)", () => {
  it("devices are served by their unit; one domain gets a domain id on each and flushes both", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0n, 0x80000000n);
    memory.addRam(0x100000000n, 0x40000000n);
    const pool = new PageAllocator(memory, 0x1000000n, 0x4000000n);
    const hwA = createVtdHardware({ memory, mmioBase: 0xfed90000n, name: "dmar0" });
    const hwB = createVtdHardware({ memory, mmioBase: 0xfed91000n, name: "dmar1" });
    const driver = createIntelIommuDriver({
      memory,
      pageAllocator: pool,
      dmar: {
        drhds: [
          { registerBase: 0xfed90000n, scopes: [{ bus: 0, devfn: 2 << 3, kind: "endpoint" }] },
          { registerBase: 0xfed91000n, includeAll: true },
        ],
      },
    });
    const gpu = new PciDevice(memory, { bus: 0, slot: 2, classCode: 0x030000 });
    const nic = new PciDevice(memory, { bus: 0, slot: 3, classCode: 0x020000 });
    gpu.upstream = hwA;
    nic.upstream = hwB;
    expect(driver.unitFor(gpu)?.name).toBe("dmar0");
    expect(driver.unitFor(nic)?.name).toBe("dmar1");
    const iommu = new Iommu();
    const g1 = iommu.probeDevice(gpu, driver.ops);
    const g2 = iommu.probeDevice(nic, driver.ops);
    const d = iommu.domainAlloc(driver.ops, "unmanaged");
    iommu.claimDmaOwner(g1, {});
    iommu.claimDmaOwner(g2, {});
    iommu.attachGroup(d, g1);
    iommu.attachGroup(d, g2);
    expect((d.driver as unknown as VtdDomain).dids.size).toBe(2);
    iommu.map(d, 0x10000n, 0x100000000n, 0x1000n, IOMMU_READ);
    expect(gpu.dmaRead(0x10000n, 1).ok).toBe(true);
    expect(nic.dmaRead(0x10000n, 1).ok).toBe(true);
    iommu.unmap(d, 0x10000n, 0x1000n);
    // Both units' IOTLBs were flushed by the sync.
    expect(gpu.dmaRead(0x10000n, 1).ok).toBe(false);
    expect(nic.dmaRead(0x10000n, 1).ok).toBe(false);
  });
});

describe("faults reach the domain", () => {
  it("a DMA fault read by dmar_fault is reported to the domain's fault handler (flags READ 0 / WRITE 1)", () => {
    const m = q35();
    const d = owned(m);
    const seen: [string, bigint, number][] = [];
    d.setFaultHandler((_dom, dev, iova, flags) => {
      seen.push([dev.name, iova, flags]);
      return 0;
    });
    m.edu.dmaRead(0x5000n, 4);
    m.edu.dmaWrite(0x7000n, new Uint8Array(4));
    expect(seen).toEqual([
      ["0000:00:01.0", 0x5000n, 0],
      ["0000:00:01.0", 0x7000n, 1],
    ]);
  });

  it("re-attaching a device to its own domain changes nothing", () => {
    const m = q35();
    const d = owned(m);
    const vt = d.driver as unknown as VtdDomain;
    const did = [...vt.dids.values()][0]?.did;
    vt.attachDev(m.edu);
    expect([...vt.dids.values()]).toEqual([{ did, refs: 1 }]);
    m.iommu.map(d, 0x1000n, 0x100000000n, 0x1000n, IOMMU_READ);
    expect(m.edu.dmaRead(0x1000n, 1).ok).toBe(true);
  });
});

describe("identity domains and allocation failure", () => {
  it("an identity domain programs pass-through contexts: DMA is untranslated (no page table)", () => {
    const m = q35();
    const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    const id = m.iommu.domainAlloc(m.driver.ops, "identity");
    expect(id.driver.mapPages).toBeUndefined();
    m.iommu.attachGroup(id, g);
    expect(m.edu.dmaWrite(0x12345678n, new Uint8Array([0x42])).ok).toBe(true);
    expect(m.memory.read(0x12345678n, 1)[0]).toBe(0x42);
    m.iommu.detachGroup(id, g);
    expect(m.edu.dmaWrite(0x12345678n, new Uint8Array([0x43])).ok).toBe(false);
  });

  it("running out of table frames fails the map with ENOMEM and leaves nothing mapped", () => {
    const m = q35();
    const d = owned(m);
    // Exhaust the kernel pool, leaving one frame: the walk to a fresh 1 GiB region needs two.
    for (;;) {
      try {
        m.pool.alloc();
      } catch {
        break;
      }
    }
    const vt = d.driver as unknown as VtdDomain;
    vt.table?.drainFreelist();
    expect(() => m.iommu.map(d, 0x40000000n, 0x100000000n, 0x1000n, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: "ENOMEM" }),
    );
    expect(m.iommu.iovaToPhys(d, 0x40000000n)).toBe(0n);
    expect(vt.maxAddr).toBe(0n);
  });
  it("an attach that finds no frame for the bus's context table fails with ENOMEM and leaves no trace", () => {
    const m = q35({
      probe: false,
      extra: (memory) => [new PciDevice(memory, { bus: 1, slot: 0, classCode: 0x00ff00 })],
    });
    const dev = m.extra[0] as PciDevice;
    m.driver.ops.probeDevice(dev);
    const d = m.driver.ops.domainAlloc("unmanaged", { reportFault: () => -38 }) as VtdDomain;
    const taken: bigint[] = [];
    for (;;) {
      try {
        taken.push(m.pool.alloc());
      } catch {
        break;
      }
    }
    const inUse = m.pool.framesInUse;
    expect(() => d.attachDev(dev)).toThrow(expect.objectContaining({ code: "ENOMEM" }));
    expect(d.dids.size).toBe(0);
    expect(d.devices.size).toBe(0);
    expect(m.pool.framesInUse).toBe(inUse);
    const unit = m.driver.units[0] as NonNullable<(typeof m.driver.units)[0]>;
    expect(unit.contextPresent(dev.requesterId)).toBe(false);
    // With a frame back, the same attach works and gets the first free domain id (2): none was leaked.
    m.pool.freeFrame(taken.pop() as bigint);
    d.attachDev(dev);
    expect(d.dids.get(unit)?.did).toBe(2);
    expect(unit.contextPresent(dev.requesterId)).toBe(true);
  });
});

describe("IOTLB invalidations carry the drain bits CAP.DRD/DWD ask for (qi_flush_iotlb, __iommu_flush_iotlb)", () => {
  it("queued: every IOTLB descriptor has DR (bit 7) and DW (bit 6)", () => {
    const m = q35();
    const d = owned(m);
    m.iommu.map(d, 0x100000n, 0x100000000n, 0x1000n, IOMMU_READ);
    m.iommu.unmap(d, 0x100000n, 0x1000n);
    const base = m.memory.read64(0xfed90000n + 0x90n) & ~0xfffn;
    const tail = Number(m.memory.read64(0xfed90000n + 0x88n));
    const iotlb: bigint[] = [];
    for (let off = 0; off < tail; off += 16) {
      const lo = m.memory.read64(base + BigInt(off));
      if ((lo & 0xfn) === 2n) iotlb.push(lo);
    }
    expect(iotlb.length).toBeGreaterThan(2); // global at init, domain/page-selective later
    for (const lo of iotlb) expect(lo & 0xc0n).toBe(0xc0n);
  });

  it("register-based: the IOTLB invalidate register is written with DR (bit 49) and DW (bit 48)", () => {
    const m = q35({ driver: { queuedInvalidation: false, interruptRemapping: false } });
    const d = owned(m);
    m.iommu.map(d, 0x100000n, 0x100000000n, 0x1000n, IOMMU_READ);
    m.iommu.unmap(d, 0x100000n, 0x1000n);
    const reg = m.memory.read64(0xfed90000n + 0xf8n);
    expect((reg >> 60n) & 3n).toBe(3n); // IIRG: page-selective was the last one
    expect(reg & (3n << 48n)).toBe(3n << 48n);
  });
});

describe("caching mode (CAP.CM, QEMU caching-mode=on)", () => {
  /** Queued descriptors of `type` (1 context cache, 2 IOTLB) between IQ offsets [from, to). */
  function descriptors(m: ReturnType<typeof q35>, from: number, to: number, type: bigint): bigint[] {
    const base = m.memory.read64(0xfed90000n + 0x90n) & ~0xfffn;
    const out: bigint[] = [];
    for (let off = from; off < to; off += 16) {
      const lo = m.memory.read64(base + BigInt(off));
      if ((lo & 0xfn) === type) out.push(lo);
    }
    return out;
  }
  const tail = (m: ReturnType<typeof q35>) => Number(m.memory.read64(0xfed90000n + 0x88n));

  it("a new context entry flushes domain 0's context cache for the device and the domain's IOTLB; a map flushes its pages", () => {
    const m = q35({ hw: { cachingMode: true } });
    const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    m.iommu.claimDmaOwner(g, {});
    let t0 = tail(m);
    m.iommu.attachGroup(d, g);
    const cc = descriptors(m, t0, tail(m), 1n);
    // The device's old context is flushed with its old id, then the new one (domain 0, CM) with its source id.
    expect(
      cc.some((lo) => ((lo >> 16n) & 0xffffn) === 0n && ((lo >> 32n) & 0xffffn) === BigInt(m.edu.requesterId)),
    ).toBe(true);
    t0 = tail(m);
    m.iommu.map(d, 0x100000n, 0x100000000n, 0x1000n, IOMMU_READ);
    const psi = descriptors(m, t0, tail(m), 2n).filter((lo) => ((lo >> 4n) & 3n) === 3n);
    expect(psi.length).toBe(1); // iotlb_sync_map: page-selective
  });

  it("without caching mode a map issues no invalidation", () => {
    const m = q35();
    const d = owned(m);
    const t0 = tail(m);
    m.iommu.map(d, 0x100000n, 0x100000000n, 0x1000n, IOMMU_READ);
    expect(tail(m)).toBe(t0);
  });
});

describe("page-selective invalidation address (iommu_flush_iotlb_psi, 6.1)", () => {
  it("an unaligned range keeps its first page in ADDR and widens AM to cover it: 2 pages at pfn 0x101 → 0x101000 | IH | AM 2", () => {
    const m = q35();
    const d = owned(m);
    m.iommu.map(d, 0x101000n, 0x100000000n, 0x2000n, IOMMU_READ);
    m.iommu.unmap(d, 0x101000n, 0x2000n);
    const base = m.memory.read64(0xfed90000n + 0x90n) & ~0xfffn;
    const last = Number(m.memory.read64(0xfed90000n + 0x88n)) - 32; // the PSI, then its wait descriptor
    expect(m.memory.read64(base + BigInt(last)) & 0x3fn).toBe(0x32n); // IOTLB, page-selective
    expect(m.memory.read64(base + BigInt(last + 8))).toBe(0x101000n | 0x40n | 2n);
    expect(m.edu.dmaRead(0x102000n, 1).ok).toBe(false); // the whole range went
  });
});

describe("gathering unmapped ranges (iommu_iotlb_gather_add_page, 6.1)", () => {
  /** qword 1 of every page-selective IOTLB descriptor queued from IQ offset `from`. */
  function psiAddrs(m: ReturnType<typeof q35>, from: number): bigint[] {
    const base = m.memory.read64(0xfed90000n + 0x90n) & ~0xfffn;
    const to = Number(m.memory.read64(0xfed90000n + 0x88n));
    const out: bigint[] = [];
    for (let off = from; off < to; off += 16) {
      if ((m.memory.read64(base + BigInt(off)) & 0x3fn) === 0x32n) out.push(m.memory.read64(base + BigInt(off + 8)));
    }
    return out;
  }

  it("a disjoint range syncs what was gathered first: two page-selective flushes, not one covering the gap", () => {
    const m = q35();
    const d = owned(m);
    m.iommu.map(d, 0x100000n, 0x100000000n, 0x1000n, IOMMU_READ);
    m.iommu.map(d, 0x300000n, 0x100001000n, 0x1000n, IOMMU_READ);
    const vt = d.driver as unknown as VtdDomain;
    const from = Number(m.memory.read64(0xfed90000n + 0x88n));
    const g = emptyGather();
    vt.unmapPages(0x100000n, 0x1000n, 1, g);
    vt.unmapPages(0x300000n, 0x1000n, 1, g);
    vt.iotlbSync(g);
    expect(psiAddrs(m, from)).toEqual([0x100040n, 0x300040n]); // IH set (no table freed), AM 0 each
  });

  it("contiguous pages of one size stay in one gather: one flush for the run", () => {
    const m = q35();
    const d = owned(m);
    m.iommu.map(d, 0x100000n, 0x100000000n, 0x2000n, IOMMU_READ);
    const vt = d.driver as unknown as VtdDomain;
    const from = Number(m.memory.read64(0xfed90000n + 0x88n));
    const g = emptyGather();
    vt.unmapPages(0x100000n, 0x1000n, 1, g);
    vt.unmapPages(0x101000n, 0x1000n, 1, g);
    vt.iotlbSync(g);
    expect(psiAddrs(m, from)).toEqual([0x100041n]); // two pages: AM 1
  });
});
