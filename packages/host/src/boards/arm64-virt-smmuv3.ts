/**
 * QEMU 7.2's arm64 `virt` machine with `iommu=smmuv3,gic-version=3` (hw/arm/virt.c memory map):
 * RAM at 0x40000000, a PCIe host bridge (ECAM 0x3f000000, 32-bit MMIO window 0x10000000-0x3efeffff,
 * high MMIO window at 0x8000000000), an SMMUv3 at 0x09050000 (44-bit IAS/OAS) in front of the root
 * bus, and a GICv3 ITS at 0x08080000 whose GITS_TRANSLATER is a real MMIO register. The `-seed`
 * variant reports the host-bridge windows as reserved regions and turns on the seed's per-range
 * capability (seed-rfc.md §2).
 */
import type { HostBridge } from "@dma-iommu/msi-cookie";
import { createArmSmmuV3Driver, createSmmuV3Hardware } from "@iommu/arm-smmu";
import { type Device, Iommu, PageAllocator, PciDevice, PhysicalMemory } from "@iommu/core";
import { EDU_BAR0_SIZE, EduDevice } from "../devices/edu.js";
import { Bql } from "../irq/bql.js";
import { Gicv3Its, ITS_FRAME_SIZE, VIRT_ITS_BASE } from "../irq/gicv3-its.js";
import { InterruptController } from "../irq/interrupt-controller.js";
import { createArmMsiGlue } from "../kernel/irq-glue.js";
import { KernelLog } from "../kernel/kernel-log.js";
import { kernelProfile } from "../kernel-profile.js";
import { dmaCookieAtAlloc } from "./dma-ops.js";
import { assembleHost } from "./host.js";
import type { Board, BoardOptions, BoardRegion } from "./types.js";

/** hw/arm/virt.c base_memmap (QEMU 7.2). */
export const VIRT = {
  GIC_DIST: 0x08000000n,
  GIC_ITS: VIRT_ITS_BASE,
  GIC_REDIST: 0x080a0000n,
  UART: 0x09000000n,
  SMMU: 0x09050000n,
  SMMU_SIZE: 0x20000n,
  PCIE_MMIO: 0x10000000n,
  PCIE_MMIO_SIZE: 0x2eff0000n,
  PCIE_PIO: 0x3eff0000n,
  PCIE_ECAM: 0x3f000000n,
  PCIE_ECAM_SIZE: 0x01000000n,
  MEM: 0x40000000n,
  HIGH_PCIE_ECAM: 0x4010000000n,
  HIGH_PCIE_MMIO: 0x8000000000n,
  HIGH_PCIE_MMIO_SIZE: 0x8000000000n,
} as const;

/** Host RAM: 32 GiB from 0x40000000; the first 64 MiB are the kernel's (IOMMU tables, queues). */
const HOST_RAM_SIZE = 0x800000000n;
const KERNEL_POOL_SIZE = 0x4000000n;

export function createArm64VirtSmmuV3(opts: BoardOptions, variant: { seed: boolean }): Board {
  const kernel = kernelProfile(opts.kernel);
  const quirks = opts.qemuQuirks ?? true;
  const eduCount = opts.eduCount ?? 1;
  const memory = new PhysicalMemory();
  memory.addRam(VIRT.MEM, HOST_RAM_SIZE, "ram");
  const kernelPages = new PageAllocator(memory, VIRT.MEM, KERNEL_POOL_SIZE);

  const gic = new InterruptController("gicv3");
  const edus: EduDevice[] = [];
  const its = new Gicv3Its(gic, {
    deviceName: (rid) => edus.find((d) => d.requesterId === rid)?.name ?? `rid:0x${rid.toString(16)}`,
  });
  memory.addMmio(VIRT.GIC_ITS, ITS_FRAME_SIZE, its, "gic-its");

  const hostBridgeWindows = [
    { start: VIRT.PCIE_MMIO, length: VIRT.PCIE_MMIO_SIZE },
    { start: VIRT.HIGH_PCIE_MMIO, length: VIRT.HIGH_PCIE_MMIO_SIZE },
  ];
  const klog = new KernelLog();
  const hw = createSmmuV3Hardware({ memory, mmioBase: VIRT.SMMU, oas: 44, streamIdBits: 16, qemuQuirks: quirks });
  let board: Board | null = null;
  const smmu = createArmSmmuV3Driver({
    memory,
    mmioBase: VIRT.SMMU,
    pageAllocator: kernelPages,
    // arm_smmu_evtq_thread's event lines are rate-limited (10 per 5 s) on the board's model clock (board.tick).
    now: () => board?.nowMs ?? 0,
    decodedEventLog: kernel.smmu.decodedEventLog,
    blockedDomain: kernel.smmu.blockedDomain,
    ...(variant.seed ? { seedHostBridgeWindows: hostBridgeWindows } : {}),
  });
  const ops = smmu.ops;
  klog.addSource(() => smmu.drainLog());
  // The SMMU's event queue interrupt (a wired SPI on virt) runs the driver's event handler once the device
  // callback that faulted returns (it reads EVTQ_PROD under QEMU's lock); its lines go to the log at once.
  const bql = new Bql();
  hw.onEventIrq = () =>
    bql.interrupt(() => {
      smmu.handleEventIrq();
      klog.sync();
    });
  // The GICv3 ITS isolates MSIs by DeviceID: irq_domain_check_msi_remap() is true on this machine.
  const iommu = new Iommu({ defaultDomainType: "DMA", msiRemap: true, onDomainAlloc: dmaCookieAtAlloc });

  for (let i = 0; i < eduCount; i++) {
    const edu = new EduDevice(memory, { slot: i + 1, qemuQuirks: quirks, lock: bql });
    edu.bar0Base = VIRT.PCIE_MMIO + BigInt(i * EDU_BAR0_SIZE);
    memory.addMmio(edu.bar0Base, BigInt(EDU_BAR0_SIZE), edu.bar0, `edu ${edu.name} BAR0`);
    edu.upstream = hw;
    edus.push(edu);
  }
  // QEMU's gpex host bridge 00:00.0 (1b36:0008): an IOMMU client only where the kernel's SMMU probes it,
  // and then first in bus order, so it takes group 0.
  const bridge = kernel.host.smmuProbesHostBridge
    ? new PciDevice(memory, { bus: 0, slot: 0, classCode: 0x060000, vendorId: 0x1b36, deviceId: 0x0008 })
    : null;
  if (bridge) bridge.upstream = hw;
  const probed: Device[] = [...(bridge ? [bridge] : []), ...edus];
  for (const d of probed) iommu.probeDevice(d, ops);

  const glue = createArmMsiGlue({ iommu, its, gic });
  const regions: BoardRegion[] = [
    { name: "GICv3 distributor", base: VIRT.GIC_DIST, size: 0x10000n, kind: "mmio" },
    { name: "GICv3 ITS", base: VIRT.GIC_ITS, size: ITS_FRAME_SIZE, kind: "mmio" },
    { name: "SMMUv3", base: VIRT.SMMU, size: VIRT.SMMU_SIZE, kind: "mmio" },
    { name: "PCIe MMIO window", base: VIRT.PCIE_MMIO, size: VIRT.PCIE_MMIO_SIZE, kind: "window" },
    { name: "PCIe ECAM", base: VIRT.PCIE_ECAM, size: VIRT.PCIE_ECAM_SIZE, kind: "mmio" },
    { name: "RAM", base: VIRT.MEM, size: HOST_RAM_SIZE, kind: "ram" },
    { name: "PCIe high MMIO window", base: VIRT.HIGH_PCIE_MMIO, size: VIRT.HIGH_PCIE_MMIO_SIZE, kind: "window" },
  ];
  board = assembleHost({
    name: variant.seed ? "arm64-virt-smmuv3-seed" : "arm64-virt-smmuv3",
    kernel,
    arch: "aarch64",
    memory,
    iommu,
    edus,
    glue,
    controller: gic,
    msiDoorbell: its.doorbell,
    regions,
    userRam: { base: VIRT.MEM + KERNEL_POOL_SIZE, size: HOST_RAM_SIZE - KERNEL_POOL_SIZE },
    kernelPages,
    vfioParams: opts.vfioParams ?? {},
    ...(opts.modset ? { modset: opts.modset } : {}),
    seedCaps: variant.seed,
    klog,
    hostBridge: virtHostBridge(),
    pciDevices: probed,
    description: variant.seed
      ? "QEMU virt, SMMUv3 (44-bit IAS/OAS), GICv3 ITS; seed variant: host-bridge windows reserved, per-range caps"
      : "QEMU virt, SMMUv3 (44-bit IAS/OAS, stage 1), GICv3 ITS doorbell at 0x8090040, sw-msi window 0x8000000",
  });
  return board;
}

/**
 * The virt PCIe host bridge as the kernel builds it from QEMU's DT node (`ranges`: the 32-bit MMIO window,
 * the I/O window, the high MMIO window; no `dma-ranges`, so no inbound gaps to reserve).
 */
export function virtHostBridge(): HostBridge {
  return {
    windows: [
      { kind: "mem", start: VIRT.PCIE_MMIO, end: VIRT.PCIE_MMIO + VIRT.PCIE_MMIO_SIZE - 1n },
      { kind: "io", start: VIRT.PCIE_PIO, end: VIRT.PCIE_PIO + 0xffffn, offset: VIRT.PCIE_PIO },
      { kind: "mem", start: VIRT.HIGH_PCIE_MMIO, end: VIRT.HIGH_PCIE_MMIO + VIRT.HIGH_PCIE_MMIO_SIZE - 1n },
    ],
    dmaRanges: [],
  };
}
