import {
  emptyGather,
  IOMMU_FAULT_WRITE,
  IOMMU_READ,
  IOMMU_WRITE,
  Iommu,
  PageAllocator,
  PciDevice,
  PhysicalMemory,
} from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createSmmuV2Hardware } from "../../hw/smmu-v2.js";
import { createArmSmmuV2Driver } from "./ops.js";

const BASE = 0x2b400000n;
const RAM = 0x80000000n;
const RW = IOMMU_READ | IOMMU_WRITE;

function v2(opts: { contextBanks?: number } = {}) {
  const memory = new PhysicalMemory();
  memory.addRam(RAM, 0x10000000n);
  const hw = createSmmuV2Hardware({ memory, mmioBase: BASE, ipaBits: 44, ...opts });
  const log: string[] = [];
  const driver = createArmSmmuV2Driver({
    memory,
    mmioBase: BASE,
    pageAllocator: new PageAllocator(memory, RAM + 0x8000000n, 0x1000000n),
  });
  const ops = driver.ops;
  hw.onContextIrq = (cb) => {
    driver.handleContextIrq(cb);
    log.push(...driver.drainLog());
  };
  const iommu = new Iommu({ defaultDomainType: "DMA" });
  const dev = (slot: number) => {
    const d = new PciDevice(memory, { bus: 0, slot, classCode: 0 });
    d.upstream = hw;
    return d;
  };
  return { memory, hw, driver, ops, iommu, log, dev };
}

describe("SMMUv2 (stream matching, stage-1 context banks)", () => {
  it("probes ID0/ID1/ID2: 16 SMRs, 8 context banks, 15-bit stream ids, 4K|2M|1G and 16K/64K formats", () => {
    const { ops, driver } = v2();
    expect(driver.features).toMatchObject({ numSmr: 16, numCb: 8, sidBits: 15, ipaBits: 44, vaBits: 48, numPage: 8 });
    expect(ops.pgsizeBitmap).toBe(0x40201000n | 0x2004000n | 0x20010000n);
  });

  it("faults unmatched streams after reset (USFCFG) and probed-but-unattached streams (S2CR fault)", () => {
    const { ops, dev } = v2();
    const stranger = dev(5);
    expect(stranger.dmaRead(0x1000n, 4)).toMatchObject({ ok: false, reason: "unidentified stream (USF)" });
    const d = dev(1);
    ops.probeDevice(d);
    expect(d.dmaRead(0x1000n, 4)).toMatchObject({ ok: false, reason: "S2CR.TYPE fault" });
  });

  it("gives a group the sw-msi window and a DMA default domain with 4K|2M|1G and a 48-bit aperture", () => {
    const { ops, iommu, dev } = v2();
    const g = iommu.probeDevice(dev(1), ops);
    expect(g.resvRegionsText()).toBe("0x0000000008000000 0x00000000080fffff msi\n");
    expect(g.defaultDomain?.pgsizeBitmap).toBe(0x40201000n);
    expect(g.defaultDomain?.geometry).toEqual({ apertureStart: 0n, apertureEnd: 0xffffffffffffn, forceAperture: true });
  });

  it("translates through the context bank's tables, splits a block, and invalidates with TLBIVAL + TLBSYNC", () => {
    const { memory, ops, iommu, dev } = v2();
    const d = dev(1);
    const group = iommu.probeDevice(d, ops);
    iommu.claimDmaOwner(group, {});
    const dom = iommu.domainAlloc(ops, "unmanaged");
    iommu.attachGroup(dom, group);
    iommu.map(dom, 0x200000n, RAM + 0x200000n, 0x200000n, RW);
    expect(d.dmaWrite(0x201008n, new Uint8Array([5])).ok).toBe(true);
    expect(memory.read(RAM + 0x201008n, 1)[0]).toBe(5);
    expect(iommu.unmap(dom, 0x201000n, 0x1000n)).toBe(0x1000n);
    expect(d.dmaRead(0x201000n, 4).ok).toBe(false);
    expect(d.dmaRead(0x202000n, 4).ok).toBe(true);
  });

  it("regression: without TLBIVA a stale TLB entry still translates after unmap", () => {
    const { ops, iommu, dev } = v2();
    const d = dev(1);
    const group = iommu.probeDevice(d, ops);
    const dom = iommu.domainAlloc(ops, "unmanaged");
    iommu.attachGroup(dom, group);
    iommu.map(dom, 0x1000n, RAM, 0x1000n, RW);
    expect(d.dmaRead(0x1000n, 4).ok).toBe(true);
    const gather = emptyGather();
    dom.driver.unmapPages?.(0x1000n, 0x1000n, 1, gather);
    expect(d.dmaRead(0x1000n, 4).ok).toBe(true);
    dom.driver.iotlbSync?.(gather);
    expect(d.dmaRead(0x1000n, 4).ok).toBe(false);
  });

  it("reports context faults from FSR/FAR/FSYNR0 to the handler, and logs them when none is installed", () => {
    const { ops, iommu, dev, log } = v2();
    const d = dev(1);
    const group = iommu.probeDevice(d, ops);
    const dom = iommu.domainAlloc(ops, "unmanaged");
    iommu.attachGroup(dom, group);
    iommu.map(dom, 0x1000n, RAM, 0x1000n, IOMMU_READ);
    expect(d.dmaWrite(0x1000n, new Uint8Array(4)).ok).toBe(false);
    expect(log).toEqual([
      `arm-smmu 2b400000.iommu: Unhandled context fault: fsr=0x8, iova=0x00001000, fsynr=0x10, cbfrsynra=0x8, cb=${1}`,
    ]);
    const seen: [bigint, number][] = [];
    dom.setFaultHandler((_d, _dev, iova, flags) => {
      seen.push([iova, flags]);
      return 0;
    });
    expect(d.dmaWrite(0x5000n, new Uint8Array(4)).ok).toBe(false);
    expect(seen).toEqual([[0x5000n, IOMMU_FAULT_WRITE]]);
    expect(log).toHaveLength(1);
  });

  it("the unhandled-fault line is dev_err_ratelimited: ten per window, then silence (faults still read and cleared)", () => {
    const { ops, iommu, dev, log } = v2();
    const d = dev(1);
    const group = iommu.probeDevice(d, ops);
    const dom = iommu.domainAlloc(ops, "unmanaged");
    iommu.attachGroup(dom, group);
    for (let i = 0; i < 12; i++) expect(d.dmaWrite(BigInt(i + 1) << 12n, new Uint8Array(4)).ok).toBe(false);
    expect(log).toHaveLength(10);
    expect(log[9]).toContain("iova=0x0000a000");
  });

  it("runs out of context banks at attach (ENOSPC), and a freed domain gives its bank back", () => {
    const { ops, iommu, dev } = v2({ contextBanks: 2 });
    const d1 = dev(1);
    const d2 = dev(2);
    const a = iommu.probeDevice(d1, ops); // default domain: bank 0
    iommu.probeDevice(d2, ops); // bank 1
    // VFIO's claim needs a blocking (empty unmanaged) domain, which needs a third bank.
    expect(() => iommu.claimDmaOwner(a, {})).toThrow(expect.objectContaining({ code: "ENOSPC" }));
    expect(a.domain).toBe(a.defaultDomain);
    iommu.releaseDevice(d2); // its group and default domain go: bank 1 is free again
    iommu.claimDmaOwner(a, {});
    expect(d1.dmaRead(0x1000n, 4).ok).toBe(false);
  });
});

describe("SMMUv2 tables vs a plain map (property)", () => {
  it("after every iommu_map/iommu_unmap, device DMA through the context bank (TLB included) matches the model", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            unmap: fc.boolean(),
            page: fc.nat(1535),
            pages: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 1100 })),
            ro: fc.boolean(),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        (ops) => {
          const h = v2();
          const d = h.dev(1);
          const group = h.iommu.probeDevice(d, h.ops);
          const dom = h.iommu.domainAlloc(h.ops, "unmanaged");
          h.iommu.attachGroup(dom, group);
          const model = new Map<number, { pa: bigint; ro: boolean }>();
          for (const op of ops) {
            const iova = BigInt(op.page) * 0x1000n;
            const size = BigInt(op.pages) * 0x1000n;
            if (op.unmap) {
              // Unmap page by page so holes never stop it early (iommu_unmap stops at the first hole).
              for (let p = op.page; p < op.page + op.pages; p++) {
                if (model.delete(p)) expect(h.iommu.unmap(dom, BigInt(p) * 0x1000n, 0x1000n) > 0n).toBe(true);
              }
            } else {
              let clash = false;
              for (let p = op.page; p < op.page + op.pages; p++) clash ||= model.has(p);
              const pa = RAM + iova;
              const map = () => h.iommu.map(dom, iova, pa, size, op.ro ? IOMMU_READ : RW);
              if (clash) expect(map).toThrow(expect.objectContaining({ code: "EEXIST" }));
              else {
                map();
                for (let p = 0; p < op.pages; p++) model.set(op.page + p, { pa: pa + BigInt(p) * 0x1000n, ro: op.ro });
              }
            }
            for (const p of [
              op.page - 1,
              op.page,
              op.page + op.pages - 1,
              op.page + op.pages,
              op.page + (op.pages >> 1),
            ]) {
              if (p < 0) continue;
              const want = model.get(p);
              const a = BigInt(p) * 0x1000n + 0x10n;
              expect(h.iommu.iovaToPhys(dom, a)).toBe(want ? want.pa + 0x10n : 0n);
              expect(d.dmaRead(a, 4).ok).toBe(want !== undefined);
              expect(d.dmaWrite(a, new Uint8Array(1)).ok).toBe(want !== undefined && !want.ro);
            }
          }
        },
      ),
      { numRuns: 40, seed: 2 },
    );
  });
});
