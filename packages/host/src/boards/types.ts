/**
 * The board seam: a passthrough host as QEMU builds it (memory map, PCI devices, IOMMU hardware and
 * driver, MSI controller) with the host kernel's IOMMU core, VFIO type1 and vfio-pci on top. The
 * conformance replay and the VMM both drive a host only through this interface.
 */
import type { HostBridge } from "@dma-iommu/msi-cookie";
import type { Iommu, PhysicalMemory } from "@iommu/core";
import type { Process, Vfio } from "@vfio/type1";
import type { EduDevice } from "../devices/edu.js";
import type { Modset, VfioIommufd } from "../kernel/vfio-iommufd.js";
import type { VfioPciHost } from "../kernel/vfio-pci.js";
import type { KernelProfile, KernelVersion } from "../kernel-profile.js";

export type BoardName = "x86-q35-vtd" | "arm64-virt-smmuv3" | "arm64-virt-smmuv3-seed";

export const BOARD_NAMES: readonly BoardName[] = ["x86-q35-vtd", "arm64-virt-smmuv3", "arm64-virt-smmuv3-seed"];

export interface BoardOptions {
  /** The Linux the host runs (`KERNEL_PROFILES`: every layer's options for that version). Default "6.1". */
  kernel?: KernelVersion;
  /** edu devices at 00:01.0, 00:02.0, … each in its own IOMMU group (x86: groups 1,2,… since the q35 host bridge 00:00.0 is group 0; arm64: groups 0,1,…, or 1,2,… when the kernel's SMMU probes the host bridge). Default 1. */
  eduCount?: number;
  /** vfio_iommu_type1 module parameters (read at container open). */
  vfioParams?: { dmaEntryLimit?: number; allowUnsafeInterrupts?: boolean; disableHugepages?: boolean };
  /** Default true: QEMU 7.2's IOMMU/edu/ITS quirks (conformance README). */
  qemuQuirks?: boolean;
  /** x86: add an RMRR'd USB controller and an ISA bridge. */
  x86Rmrr?: boolean;
  /**
   * Which VFIO doors the kernel's modules provide (default `debian`, as Debian ships them: no /dev/iommu,
   * no device cdev); `iommufd` adds both, `iommufd-compat` also makes /dev/vfio/vfio iommufd's container.
   */
  modset?: Modset;
}

/** One line of "what reached the interrupt controller". */
export interface BoardInterrupt {
  readonly source: string;
  readonly vector: number;
  readonly count: number;
}

/** A named range of the board's physical address map (for `iommu-demo map`). */
export interface BoardRegion {
  readonly name: string;
  readonly base: bigint;
  readonly size: bigint;
  readonly kind: "ram" | "mmio" | "window";
}

export interface Board {
  readonly name: BoardName;
  /** The kernel profile the host was built with. */
  readonly kernel: KernelProfile;
  readonly arch: "x86_64" | "aarch64";
  readonly memory: PhysicalMemory;
  readonly iommu: Iommu;
  /** Host /dev/vfio. */
  readonly vfio: Vfio;
  readonly edus: EduDevice[];
  /** vfio-pci: open a device fd from a group (config space with the virtualized MSI capability, BAR0, SET_IRQS for MSI with eventfd counters). */
  readonly vfioPci: VfioPciHost;
  /** VFIO's iommufd side: the module set, /dev/iommu files, groups on an iommufd, device cdevs. */
  readonly vfioIommufd: VfioIommufd;
  /** @vfio/type1's process model, pages from the board's RAM. */
  createProcess(opts: { memlockBytes: bigint; capIpcLock?: boolean }): Process;
  // capIpcLock defaults to true (a root VMM / the recorder's probe before `memlock`).
  /** A process built elsewhere (the native door's client) becomes one of the board's: its type1 warnings reach the kernel log. */
  adoptProcess<P extends Process>(p: P): P;
  /** What reached the interrupt controller. */
  interrupts(): readonly BoardInterrupt[];
  /** Physical address of the MSI doorbell devices target (ARM: GITS_TRANSLATER; x86: the interrupt window base). */
  readonly msiDoorbell: bigint;
  /** The machine's physical memory map (RAM, device windows), for narration and maps. */
  readonly regions: readonly BoardRegion[];
  /** IOMMU group id of a device. */
  groupIdOf(dev: EduDevice): number;
  /** One-line description of the hardware (IOMMU, widths, interrupt path). */
  readonly description: string;
  /**
   * The host kernel's log since the last call, oldest first (drains it): IOMMU driver fault/event
   * lines (VT-d `DMAR: …`, rate-limited `arm-smmu-v3 …: event …`), vfio-pci/PCI/ACPI device-enable
   * lines, type1 warnings of the board's processes (RLIMIT_MEMLOCK, unsafe interrupts). Raw printk text:
   * a /dev/kmsg reader escapes it (`kmsgEscape`).
   */
  kernelLog(): string[];
  /**
   * The PCI host bridge as dma-iommu reads it (`pci_host_bridge.windows` / `.dma_ranges`): q35's ACPI
   * `_CRS` memory windows, virt's DT `ranges` (no `dma-ranges`). `iommu_dma_init_domain` keeps these bus
   * addresses out of the DMA-API IOVA space (peer-to-peer would hit a BAR, not RAM).
   */
  readonly hostBridge: HostBridge;
  /**
   * Advance the model clock by `ms` (default 10, `IOVA_FQ_TIMEOUT`): every DMA-FQ default domain whose
   * flush-queue timer was armed at least 10 ms of model time earlier runs `fq_flush_timeout` (one
   * IOTLB flush, then its queued IOVAs go back to the allocator). No wall clock is read.
   */
  tick(ms?: number): void;
  /** Model time in ms (advanced only by `tick`). */
  readonly nowMs: number;
}
