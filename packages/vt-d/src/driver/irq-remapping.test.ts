import type { PciDevice } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { q35 } from "../testing/q35.js";
import { composeRemappableMsi, type IrqRemapping } from "./irq-remapping.js";

function irOf(m: ReturnType<typeof q35>): IrqRemapping {
  return m.driver.irqRemapping[0] as IrqRemapping;
}

const write = (_m: ReturnType<typeof q35>, dev: PciDevice, addr: bigint, data: number) =>
  dev.dmaWrite(addr, new Uint8Array([data & 0xff, (data >> 8) & 0xff, 0, 0]));

describe("remappable-format MSI", () => {
  it("fill_msi_msg: handle bits 19:5 and 2, format bit 4, SHV bit 3; subhandle in data", () => {
    expect(composeRemappableMsi(16, 0)).toEqual({ addressLo: 0xfee00218, addressHi: 0, data: 0 });
    expect(composeRemappableMsi(0x8001, 3)).toEqual({ addressLo: 0xfee0003c, addressHi: 0, data: 3 });
  });

  it("boot takes IRTEs 0-14 (ISA IOAPIC pins), the device's INTx pin (GSI 21) 15, its MSI 16", () => {
    const m = q35();
    expect(irOf(m).inUse).toBe(15);
    expect(m.driver.irq.allocIoapicPin(0, 21)).toBe(15);
    expect(m.driver.irq.alloc(m.edu, 0x21).index).toBe(16);
  });

  it("issue #13 rule 2: an IOAPIC pin's IRTE is reserved at irq alloc, written only at activation, freed with the pin", () => {
    const m = q35({ edus: 2 });
    expect(m.driver.irq.allocIoapicPin(0, 22)).toBe(15);
    // intel_irq_remapping_alloc only reserves: the entry stays clear until request_irq activates it.
    expect(m.driver.units[0]?.readIrte(15)).toEqual([0n, 0n]);
    expect(() => m.driver.irq.allocIoapicPin(0, 22)).toThrow(expect.objectContaining({ code: "EBUSY" }));
    expect(() => m.driver.irq.allocIoapicPin(7, 22)).toThrow(expect.objectContaining({ code: "ENODEV" }));
    // MSI takes no INTx entry of its own: the next free one.
    expect(m.driver.irq.alloc(m.edu, 0x21).index).toBe(16);
    m.driver.irq.freeIoapicPin(0, 22);
    expect(irOf(m).inUse).toBe(16);
    expect(m.driver.irq.alloc(m.edus[1] as PciDevice, 0x22).index).toBe(15);
  });

  it("modify_irte writes the entry in memory: P, RH (prepare_irte), vector, x2APIC destination; SVT=1 + requester id", () => {
    const m = q35();
    const { index } = m.driver.irq.alloc(m.edu, 0x21, 3);
    const [lo, hi] = m.driver.units[0]?.readIrte(index) ?? [0n, 0n];
    expect(lo & 0xffffn).toBe(0b1001n); // P, RH; FPD, DM, TM, DLM (fixed) clear
    expect((lo >> 16n) & 0xffn).toBe(0x21n);
    expect(lo >> 32n).toBe(3n); // EIM: a 32-bit APIC id
    expect(hi).toBe(BigInt(m.edu.requesterId) | (1n << 18n)); // SID, SQ = 0, SVT = 1
  });

  it("without the boot entries the first MSI would get 0 (the table is first-fit)", () => {
    const m = q35({ isaIoapicEntries: false });
    expect(irOf(m).allocMsi(m.edu, 0x22).index).toBe(0);
  });

  it("multi-vector MSI takes an aligned power-of-two block; each subhandle reaches its own vector", () => {
    const m = q35();
    const a = irOf(m).allocMsi(m.edu, 0x40, 0, 3);
    expect(a.index).toBe(16);
    expect(irOf(m).allocIrte(1)).toBe(15);
    expect(irOf(m).allocIrte(1)).toBe(20);
    for (const msg of a.messages) write(m, m.edu, BigInt(msg.addressLo), msg.data);
    expect(m.interrupts.map((i) => i.vector)).toEqual([0x40, 0x41, 0x42]);
  });

  it("faults: index beyond the table (0x21), entry not present (0x22), wrong requester (0x26), compatibility format blocked (0x25)", () => {
    let clock = 0;
    const m = q35({ driver: { irtOrder: 8, now: () => clock }, edus: 2 });
    const edu2 = m.edus[1] as PciDevice;
    const a = irOf(m).allocMsi(m.edu, 0x30);
    const log = () => m.driver.drainLog().filter((l) => l.includes("INTR-REMAP"));
    expect(write(m, m.edu, BigInt(composeRemappableMsi(300, 0).addressLo), 0).ok).toBe(false);
    expect(log()[0]).toMatch(/fault index 0x12c \[fault reason 0x21\] Interrupt index exceeded/);
    expect(write(m, m.edu, BigInt(composeRemappableMsi(200, 0).addressLo), 0).ok).toBe(false);
    expect(log()[0]).toMatch(/\[fault reason 0x22\] Present field in the IRTE entry is clear/);
    const msg = a.messages[0] as { addressLo: number; data: number };
    expect(write(m, edu2, BigInt(msg.addressLo), msg.data).ok).toBe(false);
    expect(log()[0]).toContain(`Request device [00:02.0] fault index 0x${a.index.toString(16)} [fault reason 0x26]`);
    clock += 5000; // three faults spent 9 of dmar_fault's 10 log lines per 5 s: start a new window
    expect(write(m, m.edu, 0xfee00000n, 0x31).ok).toBe(false);
    expect(log()[0]).toMatch(/\[fault reason 0x25\] Blocked a compatibility format interrupt/);
    expect(m.interrupts).toEqual([]);
    expect(write(m, m.edu, BigInt(msg.addressLo), msg.data).ok).toBe(true);
    expect(m.interrupts).toHaveLength(1);
  });

  it("a freed IRTE is cleared: a late MSI with the old address faults (not present)", () => {
    const m = q35();
    const a = m.driver.irq.alloc(m.edu, 0x21);
    m.driver.irq.free(m.edu);
    expect(write(m, m.edu, a.address, a.data).ok).toBe(false);
    expect(m.driver.drainLog().join("\n")).toMatch(/fault reason 0x22/);
  });

  it("with interrupt remapping off, compatibility-format MSIs go straight through", () => {
    const m = q35({ hw: { interruptRemapping: false } });
    expect(m.driver.irqRemapping[0]).toBeNull();
    expect(() => m.driver.irq.alloc(m.edu, 0x21)).toThrow(/no interrupt remapping/);
    expect(write(m, m.edu, 0xfee01000n, 0x25).ok).toBe(true);
    expect(m.interrupts[0]).toMatchObject({ vector: 0x25, destination: 1, irteIndex: null });
  });

  it("property: allocations never overlap, are aligned to their size, and free returns them", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constant(0)), { maxLength: 60 }), (ops) => {
        const m = q35({ driver: { irtOrder: 8 }, isaIoapicEntries: false });
        const ir = irOf(m);
        const live: { index: number; size: number }[] = [];
        for (const n of ops) {
          if (n === 0 && live.length > 0) {
            const x = live.shift() as { index: number; size: number };
            ir.freeIrte(x.index, x.size);
            continue;
          }
          if (n === 0) continue;
          let index: number;
          try {
            index = ir.allocIrte(n);
          } catch {
            continue;
          }
          const size = 2 ** Math.ceil(Math.log2(n));
          expect(index % size).toBe(0);
          for (const o of live) expect(index + size <= o.index || o.index + o.size <= index).toBe(true);
          live.push({ index, size });
        }
        expect(ir.inUse).toBe(live.reduce((s, x) => s + x.size, 0));
      }),
      { seed: 0x1e7, numRuns: 60 },
    );
  });
});
