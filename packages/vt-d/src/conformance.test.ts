/**
 * What Linux 6.1 answered on QEMU q35 + intel-iommu (@iommu-sim/conformance, linux-6.1/x86): reserved
 * regions, group type, page sizes, aperture, MSI address, DMAR fault log lines.
 */

import { IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import { readRecords } from "@iommu-sim/conformance";
import { describe, expect, it } from "vitest";
import { q35 } from "./testing/q35.js";

function transcript(name: string): Record<string, unknown>[] {
  return readRecords({ set: "linux-6.1", arch: "x86", name });
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

describe("Linux 6.1 x86 conformance (q35, intel-iommu, 39-bit)", () => {
  const msi = transcript("msi");
  const resv = msi.find((l) => l.cmd === "resv") as { regions: string[][]; type: string };
  const info = msi.find((l) => l.cmd === "info") as { iova_pgsizes: string };

  it("edu 00:01.0 is in group 1 of type DMA-FQ with one msi region", () => {
    const m = q35();
    const g = m.iommu.groupOf(m.edu);
    expect(g?.id).toBe(1);
    expect(g?.typeText().trim()).toBe(resv.type);
    const regions = m.iommu.getGroupResvRegions(g as NonNullable<typeof g>);
    expect(
      regions.map((r) => [
        `0x${r.start.toString(16).padStart(16, "0")}`,
        `0x${(r.start + r.length - 1n).toString(16).padStart(16, "0")}`,
        r.type,
      ]),
    ).toEqual(resv.regions);
  });

  it("a second edu at 00:02.0 is group 2 with the same regions", () => {
    const two = transcript("two-groups").find((l) => l.cmd === "resv") as { group: number; regions: string[][] };
    const m = q35({ edus: 2 });
    const g = m.iommu.groupOf(m.edus[1] as NonNullable<(typeof m.edus)[1]>);
    expect(g?.id).toBe(two.group);
    expect(m.iommu.getGroupResvRegions(g as NonNullable<typeof g>).map((r) => r.type)).toEqual(
      two.regions.map((r) => r[2]),
    );
  });

  it("an unmanaged (VFIO) domain reports iova_pgsizes 0x40201000 and aperture [0, 0x7fffffffff]", () => {
    const m = q35();
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    expect(hex(d.pgsizeBitmap)).toBe(info.iova_pgsizes);
    expect(d.geometry).toEqual({ apertureStart: 0n, apertureEnd: 0x7fffffffffn, forceAperture: true });
  });

  it("the older all-sizes bitmap is a named option", () => {
    const m = q35({ driver: { pgsizeBitmap: "all-sizes" } });
    expect(m.iommu.domainAlloc(m.driver.ops, "unmanaged").pgsizeBitmap).toBe(0xfffffffffffff000n);
  });

  it("capabilities: INTR_REMAP and CACHE_COHERENCY true; enforce_cache_coherency false without SC", () => {
    const m = q35();
    expect(m.iommu.capable(m.edu, "INTR_REMAP")).toBe(true);
    expect(m.iommu.capable(m.edu, "CACHE_COHERENCY")).toBe(true);
    expect(m.iommu.groupHasIsolatedMsi(m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>)).toBe(
      true,
    );
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    m.iommu.attachGroup(d, m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>);
    expect(d.driver.enforceCacheCoherency?.()).toBe(false);
    const sc = q35({ hw: { snoopControl: true } });
    const d2 = sc.iommu.domainAlloc(sc.driver.ops, "unmanaged");
    sc.iommu.attachGroup(d2, sc.iommu.groupOf(sc.edu) as NonNullable<ReturnType<typeof sc.iommu.groupOf>>);
    expect(d2.driver.enforceCacheCoherency?.()).toBe(true);
  });

  it("without interrupt remapping INTR_REMAP is false", () => {
    const m = q35({ hw: { interruptRemapping: false } });
    expect(m.iommu.capable(m.edu, "INTR_REMAP")).toBe(false);
  });

  it("the first edu MSI is programmed 0xfee00218 data 0 (IRTE 16) and is delivered", () => {
    const on = msi.find((l) => l.cmd === "irq" && l.op === "msi-on") as { phys_msi: { address: string; data: string } };
    const m = q35();
    // vfio-pci's open enabled the device: its INTx (GSI 21, IOAPIC pin 21) took IRTE 15 first.
    expect(m.driver.irq.allocIoapicPin(0, 21)).toBe(15);
    const a = m.driver.irq.alloc(m.edu, 0x21);
    expect(hex(a.address)).toBe(on.phys_msi.address);
    expect(`0x${a.data.toString(16)}`).toBe(on.phys_msi.data);
    expect(a.index).toBe(16);
    // The device's MSI is a dword write of the data to the address.
    const r = m.edu.dmaWrite(a.address, new Uint8Array([a.data, 0, 0, 0]));
    expect(r.ok).toBe(true);
    expect(m.interrupts.map((i) => [i.vector, i.irteIndex, i.requesterId])).toEqual([[0x21, 16, m.edu.requesterId]]);
    // msi off / on again reuses the same entry, as the transcript shows.
    m.driver.irq.free(m.edu);
    expect(m.driver.irq.alloc(m.edu, 0x21).address).toBe(0xfee00218n);
  });

  it("edu-dma: device faults are logged as Linux's dmar_fault prints them", () => {
    const t = transcript("edu-dma").filter(
      (l) => l.cmd === "dma" && Array.isArray(l.klog) && (l.klog as string[]).length === 2,
    );
    const m = q35({ hw: { qemuQuirks: true } });
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    m.iommu.claimDmaOwner(g, {});
    m.iommu.attachGroup(d, g);
    m.iommu.map(d, 0x100000n, 0x100000000n, 0x2000n, IOMMU_READ | IOMMU_WRITE);
    m.driver.drainLog();
    // Writing across the end of the mapping faults at 0x102000 (reason 5); reads of nothing fault with 6.
    m.edu.dmaWrite(0x101f80n, new Uint8Array(0x100));
    const w = m.driver.drainLog();
    m.edu.dmaRead(0x400000n, 0x100);
    const r = m.driver.drainLog();
    m.edu.dmaWrite(0x400000n, new Uint8Array(0x100));
    const w2 = m.driver.drainLog();
    expect([w, r, w2]).toEqual(t.map((l) => l.klog));
  });

  it("edu-dma: which device accesses fault, and their log lines, follow the transcript (QEMU quirks on)", () => {
    const m = q35({ hw: { qemuQuirks: true } });
    const d = m.iommu.domainAlloc(m.driver.ops, "unmanaged");
    const g = m.iommu.groupOf(m.edu) as NonNullable<ReturnType<typeof m.iommu.groupOf>>;
    m.iommu.claimDmaOwner(g, {});
    m.iommu.attachGroup(d, g);
    const base = 0x100000000000n;
    const phys = (vaddr: string) => 0x100000000n + (BigInt(vaddr) - base);
    let compared = 0;
    interface Line {
      cmd: string;
      iova: string;
      size: string;
      len: string;
      prot: string;
      dir: string;
      vaddr: string;
      unmapped: string;
      flags: string[];
      klog: string[];
    }
    for (const l of transcript("edu-dma") as unknown as Line[]) {
      if (l.cmd === "mapv" || (l.cmd === "unmap" && l.flags.length > 0)) break;
      if (l.cmd === "map") {
        const prot = (l.prot.includes("r") ? IOMMU_READ : 0) | (l.prot.includes("w") ? IOMMU_WRITE : 0);
        m.iommu.map(d, BigInt(l.iova), phys(l.vaddr), BigInt(l.size), prot);
      } else if (l.cmd === "unmap") {
        expect(hex(m.iommu.unmap(d, BigInt(l.iova), BigInt(l.size)))).toBe(l.unmapped);
      } else if (l.cmd === "dma") {
        m.driver.drainLog();
        const len = Number(BigInt(l.len));
        if (l.dir === "to-dev") m.edu.dmaRead(BigInt(l.iova), len);
        else m.edu.dmaWrite(BigInt(l.iova), new Uint8Array(len));
        const klog = m.driver.drainLog();
        const want = l.klog;
        // QEMU sometimes logs only the status line for a fault right after an unmap; compare what it printed.
        expect(klog.slice(0, want.length)).toEqual(want);
        expect(klog.length === 0).toBe(want.length === 0);
        compared++;
      }
    }
    expect(compared).toBe(12);
  });
});
