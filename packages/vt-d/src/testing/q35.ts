/**
 * Test helper: a small q35-like machine — RAM, a kernel page pool, one QEMU-like VT-d unit at
 * 0xfed90000 (INCLUDE_PCI_ALL), the Intel driver over it, the core, a host bridge at 00:00.0 and edu-like
 * endpoints at 00:01.0, 00:02.0, … whose DMA goes through the unit.
 */
import { Iommu, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import type { DmarTable } from "../driver/dmar-table.js";
import { createIntelIommuDriver, type IntelIommuDriverOptions } from "../driver/ops.js";
import type { DeliveredInterrupt } from "../hw/interrupt-remapping.js";
import { createVtdHardware, type VtdHardwareOptions } from "../hw/vtd-hardware.js";

export const DMAR_BASE = 0xfed90000n;
export const POOL = { base: 0x1000000n, size: 0x4000000n };
/** QEMU q35's IOAPIC in the DMAR table: APIC id 0 at pseudo bus 0xff, devfn 0 (source id 0xff00). */
export const Q35_IOAPIC = { ioapicId: 0, bus: 0xff, devfn: 0 } as const;

export interface Q35Options {
  readonly hw?: Partial<Omit<VtdHardwareOptions, "memory" | "mmioBase">>;
  readonly driver?: Partial<Omit<IntelIommuDriverOptions, "memory" | "pageAllocator" | "dmar">>;
  readonly dmar?: Partial<DmarTable>;
  readonly edus?: number;
  readonly extra?: (memory: PhysicalMemory) => PciDevice[];
  readonly probe?: boolean;
  /**
   * Take the IRTEs Linux takes at boot for q35's 15 ISA IOAPIC pins (0-14), as the q35 board in
   * @iommu-sim/host does, so the first device's INTx gets 15 and its MSI 16. Default true.
   */
  readonly isaIoapicEntries?: boolean;
  /** Bytes of the kernel's page pool (default POOL.size); a small pool runs out sooner in tests. */
  readonly poolSize?: bigint;
}

export function q35(o: Q35Options = {}) {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 0x80000000n, "ram-below-4g");
  memory.addRam(0x100000000n, 0x40000000n, "ram-above-4g");
  const pool = new PageAllocator(memory, POOL.base, o.poolSize ?? POOL.size);
  const interrupts: DeliveredInterrupt[] = [];
  const hw = createVtdHardware({
    memory,
    mmioBase: DMAR_BASE,
    qemuQuirks: false,
    ...o.hw,
    onInterrupt: (irq) => interrupts.push(irq),
  });
  const driver = createIntelIommuDriver({
    memory,
    pageAllocator: pool,
    dmar: { drhds: [{ registerBase: DMAR_BASE, includeAll: true, ioapics: [Q35_IOAPIC] }], rmrrs: [], ...o.dmar },
    ...o.driver,
  });
  hw.onFaultEvent = () => driver.handleFaultIrq(0);
  const bootIr = driver.irqRemapping[0];
  if (bootIr && (o.isaIoapicEntries ?? true)) {
    // IRQ 0 → pin 2 by MADT override, IRQs 1, 3-15 → their pins: pins 1-15 in order; vectors from 0x30.
    for (let pin = 1; pin <= 15; pin++)
      bootIr.allocIoapicEntry((Q35_IOAPIC.bus << 8) | Q35_IOAPIC.devfn, 0x30 + pin, pin === 9 ? 1 : 0);
  }
  const hostBridge = new PciDevice(memory, {
    bus: 0,
    slot: 0,
    classCode: 0x060000,
    vendorId: 0x8086,
    deviceId: 0x29c0,
  });
  const edus = Array.from(
    { length: o.edus ?? 1 },
    (_, i) => new PciDevice(memory, { bus: 0, slot: i + 1, classCode: 0x00ff00 }),
  );
  const extra = o.extra?.(memory) ?? [];
  const all = [hostBridge, ...edus, ...extra];
  for (const d of all) d.upstream = hw;
  const iommu = new Iommu({ defaultDomainType: "DMA-FQ" });
  if (o.probe ?? true) for (const d of all) iommu.probeDevice(d, driver.ops);
  return { memory, pool, hw, driver, iommu, hostBridge, edus, extra, interrupts, edu: edus[0] as PciDevice };
}
