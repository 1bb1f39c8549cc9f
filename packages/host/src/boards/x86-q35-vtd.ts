/**
 * QEMU 7.2's `q35` with `-device intel-iommu,intremap=on` (legacy mode, 39-bit address width,
 * interrupt remapping): RAM below 2 GiB (and above 4 GiB), MMCONFIG at 0xb0000000, the 32-bit PCI
 * window up to 0xfebfffff, IOAPIC 0xfec00000, the DMAR unit at 0xfed90000 and the interrupt window
 * 0xfee00000-0xfeefffff. The host bridge 00:00.0 takes IOMMU group 0, edu devices follow at 00:01.0,
 * 00:02.0, …; `x86Rmrr` adds an xHCI controller with an RMRR (direct-relaxable) and an ISA bridge.
 */
import type { HostBridge } from "@dma-iommu/msi-cookie";
import { Iommu, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import {
  createIntelIommuDriver,
  createVtdHardware,
  type IntelIommuDriver,
  type IoapicScope,
  type IrqRemapping,
} from "@iommu/vt-d";
import { EDU_BAR0_SIZE, EduDevice } from "../devices/edu.js";
import { PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MEMORY } from "../devices/pci-config.js";
import { Bql } from "../irq/bql.js";
import { InterruptController } from "../irq/interrupt-controller.js";
import { IoapicGsiMap } from "../irq/ioapic.js";
import { AcpiPciIrq, type PciIrqRoute } from "../kernel/acpi-pci-irq.js";
import { createX86MsiGlue } from "../kernel/irq-glue.js";
import { KernelLog } from "../kernel/kernel-log.js";
import { kernelProfile } from "../kernel-profile.js";
import { dmaCookieAtAlloc } from "./dma-ops.js";
import { assembleHost } from "./host.js";
import type { Board, BoardOptions, BoardRegion } from "./types.js";

export const Q35 = {
  LOW_RAM_SIZE: 0x80000000n,
  HIGH_RAM: 0x100000000n,
  HIGH_RAM_SIZE: 0x800000000n,
  MMCONFIG: 0xb0000000n,
  MMCONFIG_SIZE: 0x10000000n,
  PCI_WINDOW: 0xc0000000n,
  PCI_WINDOW_END: 0xfec00000n,
  IOAPIC: 0xfec00000n,
  DMAR: 0xfed90000n,
  DMAR_SIZE: 0x1000n,
  MSI_WINDOW: 0xfee00000n,
  MSI_WINDOW_SIZE: 0x100000n,
  /** Where SeaBIOS puts the edu BARs in this model (top of the 32-bit window, downwards). */
  EDU_BAR_TOP: 0xfe000000n,
  /** RMRR of the optional USB controller (inside RAM below 2 GiB, as firmware USB buffers are). */
  USB_RMRR: 0x7f7e0000n,
  USB_RMRR_SIZE: 0x20000n,
  /** QEMU's 64-bit PCI hole: after RAM above 4 GiB, 1 GiB aligned, 32 GiB (q35 `pci-hole64-size`). */
  PCI_HOLE64_SIZE: 0x800000000n,
} as const;

/**
 * PCI0's `_CRS` memory windows in QEMU's q35 DSDT for this memory map (Linux: "root bus resource [mem …
 * window]"): the legacy VGA hole, the 32-bit hole below and above MMCONFIG up to the IOAPIC, the 64-bit
 * hole. No `_DMA`: no dma-ranges.
 */
export function q35HostBridge(): HostBridge {
  const highEnd = Q35.HIGH_RAM + Q35.HIGH_RAM_SIZE;
  const hole64 = (highEnd + 0x3fffffffn) & ~0x3fffffffn;
  return {
    windows: [
      { kind: "mem", start: 0xa0000n, end: 0xbffffn },
      { kind: "mem", start: Q35.LOW_RAM_SIZE, end: Q35.MMCONFIG - 1n },
      { kind: "mem", start: Q35.PCI_WINDOW, end: Q35.PCI_WINDOW_END - 1n },
      { kind: "mem", start: hole64, end: hole64 + Q35.PCI_HOLE64_SIZE - 1n },
    ],
    dmaRanges: [],
  };
}

/** q35's IOAPIC in QEMU's DMAR table: APIC id 0 at pseudo bus 0xff, devfn 0 (Q35_PSEUDO_*): source id 0xff00. */
export const Q35_IOAPIC: IoapicScope = { ioapicId: 0, bus: 0xff, devfn: 0 };

/**
 * The IRTEs Linux takes at boot on q35 before any device driver runs: one per IOAPIC pin with an ISA
 * interrupt entry in the MADT (IRQ 0 → pin 2 by override, IRQs 1, 3-15 → their pins; IRQ2 has none), in
 * pin order: indices 0-14 on a fresh table. That is why the first device's INTx gets 15 and its MSI 16
 * (0xfee00218). Vectors are the kernel's business; ISA vectors start at 0x30 (ISA_IRQ_VECTOR).
 */
export function allocQ35BootIoapicEntries(ir: IrqRemapping): number[] {
  const sid = (Q35_IOAPIC.bus << 8) | Q35_IOAPIC.devfn;
  const pins = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  // Pin 9 (the ACPI SCI) is level-triggered.
  return pins.map((pin) => ir.allocIoapicEntry(sid, 0x30 + pin, pin === 9 ? 1 : 0));
}

/** The kernel's pool for IOMMU tables: 64 MiB at 16 MiB. */
const KERNEL_POOL = { base: 0x1000000n, size: 0x4000000n };

export function createX86Q35Vtd(opts: BoardOptions): Board {
  const kernel = kernelProfile(opts.kernel);
  const quirks = opts.qemuQuirks ?? true;
  const eduCount = opts.eduCount ?? 1;
  const memory = new PhysicalMemory();
  memory.addRam(0n, Q35.LOW_RAM_SIZE, "ram-below-4g");
  memory.addRam(Q35.HIGH_RAM, Q35.HIGH_RAM_SIZE, "ram-above-4g");
  const kernelPages = new PageAllocator(memory, KERNEL_POOL.base, KERNEL_POOL.size);
  const lapic = new InterruptController("lapic");

  const hostBridge = new PciDevice(memory, {
    bus: 0,
    slot: 0,
    classCode: 0x060000,
    vendorId: 0x8086,
    deviceId: 0x29c0,
  });
  const edus: EduDevice[] = [];
  const bql = new Bql();
  for (let i = 0; i < eduCount; i++) {
    const edu = new EduDevice(memory, { slot: i + 1, qemuQuirks: quirks, lock: bql });
    edu.bar0Base = Q35.EDU_BAR_TOP - BigInt((i + 1) * EDU_BAR0_SIZE);
    memory.addMmio(edu.bar0Base, BigInt(EDU_BAR0_SIZE), edu.bar0, `edu ${edu.name} BAR0`);
    // SeaBIOS assigns the BARs and turns on I/O and memory decoding (so Linux's pci_enable_device
    // finds nothing to enable and prints no "enabling device" line on q35).
    edu.config.write(PCI_COMMAND, 2, edu.config.command | PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    edus.push(edu);
  }
  const extra: PciDevice[] = [];
  if (opts.x86Rmrr) {
    extra.push(new PciDevice(memory, { bus: 0, slot: 0x1d, classCode: 0x0c0330, vendorId: 0x1b36, deviceId: 0x000d }));
    extra.push(new PciDevice(memory, { bus: 0, slot: 0x1f, classCode: 0x060100, vendorId: 0x8086, deviceId: 0x2918 }));
  }
  const deviceName = (rid: number) => edus.find((d) => d.requesterId === rid)?.name ?? `rid:0x${rid.toString(16)}`;
  const klog = new KernelLog();
  let driver: IntelIommuDriver | null = null;
  const hw = createVtdHardware({
    memory,
    mmioBase: Q35.DMAR,
    aw: 39,
    // QEMU 7.2's q35 intel-iommu without eim=on: ECAP 0xf00f4a (IOMMU_GET_HW_INFO on 6.12 shows it)
    eim: false,
    qemuQuirks: quirks,
    onInterrupt: (irq) => lapic.deliver(`ir:${deviceName(irq.requesterId)}`, irq.vector),
    // dmar_fault runs as the fault event's interrupt handler once the device callback that faulted returns
    // (so a burst's later faults from the same requester collapse into the pending record); its lines go
    // to the log at once.
    onFaultEvent: () =>
      bql.interrupt(() => {
        driver?.handleFaultIrq(0);
        klog.sync();
      }),
  });
  const rmrrScope = { bus: 0, devfn: 0x1d << 3, kind: "endpoint" as const };
  let board: Board | null = null;
  driver = createIntelIommuDriver({
    memory,
    pageAllocator: kernelPages,
    dmar: {
      hostAddressWidth: 39,
      drhds: [{ registerBase: Q35.DMAR, includeAll: true, ioapics: [Q35_IOAPIC] }],
      rmrrs: opts.x86Rmrr
        ? [{ base: Q35.USB_RMRR, end: Q35.USB_RMRR + Q35.USB_RMRR_SIZE - 1n, scopes: [rmrrScope] }]
        : [],
    },
    slPteFormat: kernel.vtd.slPteFormat,
    faultLogSegment: kernel.vtd.faultLogSegment,
    blockedDomain: kernel.vtd.blockedDomain,
    // dmar_fault's log ratelimit runs on the board's model clock (board.tick).
    now: () => board?.nowMs ?? 0,
    // without ECAP.EIM Linux remaps in xAPIC mode (intel_setup_irq_remapping drops eim)
    eim: false,
  });
  const vtd = driver;
  klog.addSource(() => vtd.drainLog());
  // Boot: the ISA IOAPIC pins take their IRTEs on the first unit before any device is enabled.
  const bootIr = driver.irqRemapping[0];
  if (bootIr) allocQ35BootIoapicEntries(bootIr);
  const all = [hostBridge, ...edus, ...extra];
  for (const d of all) d.upstream = hw;
  // Debian's x86 kernel defaults to lazy invalidation: default domains are DMA-FQ.
  const iommu = new Iommu({ defaultDomainType: "DMA-FQ", msiRemap: false, onDomainAlloc: dmaCookieAtAlloc });
  for (const d of all) iommu.probeDevice(d, driver.ops);

  const glue = createX86MsiGlue({ ir: driver.irq, lapic });
  // pci_enable_device maps a device's INTx GSI through the IOAPIC (24 pins from GSI 0), whose pins take IRTEs.
  const ioapic = new IoapicGsiMap({ id: Q35_IOAPIC.ioapicId, gsiBase: 0, pins: 24 }, driver.irq);
  const acpiIrq = new AcpiPciIrq(klog, ioapic, q35PciIrqRoute);
  const regions: BoardRegion[] = [
    { name: "RAM below 4G", base: 0n, size: Q35.LOW_RAM_SIZE, kind: "ram" },
    { name: "MMCONFIG", base: Q35.MMCONFIG, size: Q35.MMCONFIG_SIZE, kind: "mmio" },
    { name: "PCI 32-bit window", base: Q35.PCI_WINDOW, size: Q35.PCI_WINDOW_END - Q35.PCI_WINDOW, kind: "window" },
    { name: "IOAPIC", base: Q35.IOAPIC, size: 0x1000n, kind: "mmio" },
    { name: "VT-d DMAR", base: Q35.DMAR, size: Q35.DMAR_SIZE, kind: "mmio" },
    { name: "interrupt window", base: Q35.MSI_WINDOW, size: Q35.MSI_WINDOW_SIZE, kind: "window" },
    { name: "RAM above 4G", base: Q35.HIGH_RAM, size: Q35.HIGH_RAM_SIZE, kind: "ram" },
  ];
  board = assembleHost({
    name: "x86-q35-vtd",
    kernel,
    arch: "x86_64",
    memory,
    iommu,
    edus,
    glue,
    controller: lapic,
    msiDoorbell: Q35.MSI_WINDOW,
    regions,
    userRam: { base: Q35.HIGH_RAM, size: Q35.HIGH_RAM_SIZE },
    kernelPages,
    vfioParams: opts.vfioParams ?? {},
    ...(opts.modset ? { modset: opts.modset } : {}),
    seedCaps: false,
    klog,
    hostBridge: q35HostBridge(),
    pciDevices: all,
    pcibiosEnableIrq: (dev) => acpiIrq.enable(dev),
    pcibiosDisableIrq: (dev) => acpiIrq.disable(dev),
    description: "QEMU q35, VT-d (legacy mode, 39-bit AGAW, interrupt remapping), MSI window 0xfee00000",
  });
  return board;
}

/**
 * q35's `_PRT` for the root bus: QEMU's DSDT routes INTx of a slot to PIRQ E–H by (slot + pin − 1)
 * mod 4, whose IOAPIC-mode links GSIE–GSIH sit at GSI 20–23 (slots 1 and 5 share GSIF, and so one pin).
 */
export function q35PciIrqRoute(dev: EduDevice, pin: number): PciIrqRoute {
  const link = ((dev.devfn >> 3) + pin - 1) & 3;
  return { link: `\\_SB_.GSI${"EFGH"[link]}`, gsi: 20 + link };
}
