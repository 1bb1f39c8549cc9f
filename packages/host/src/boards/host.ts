/**
 * The board-independent half of a passthrough host: VFIO (type1 + vfio-pci) on top of the IOMMU
 * core, user processes backed by the board's RAM, and the interrupt log.
 */
import type { HostBridge } from "@dma-iommu/msi-cookie";
import type { Device, Iommu, PageAllocator, PhysicalMemory } from "@iommu/core";
import { Process, pageAllocatorSource, Vfio } from "@vfio/type1";
import type { EduDevice } from "../devices/edu.js";
import type { InterruptController } from "../irq/interrupt-controller.js";
import type { KernelLog } from "../kernel/kernel-log.js";
import type { MsiGlue } from "../kernel/msi-glue.js";
import { type Modset, VfioIommufd } from "../kernel/vfio-iommufd.js";
import { VfioPciHost } from "../kernel/vfio-pci.js";
import type { KernelProfile } from "../kernel-profile.js";
import { FqClock, setupKernelDma } from "./dma-ops.js";
import { HostPagePool } from "./page-pool.js";
import type { Board, BoardName, BoardOptions, BoardRegion } from "./types.js";

export interface HostParts {
  readonly name: BoardName;
  readonly kernel: KernelProfile;
  readonly arch: "x86_64" | "aarch64";
  readonly memory: PhysicalMemory;
  readonly iommu: Iommu;
  readonly edus: EduDevice[];
  readonly glue: MsiGlue;
  readonly controller: InterruptController;
  readonly msiDoorbell: bigint;
  readonly regions: readonly BoardRegion[];
  /** RAM that user pages come from. */
  readonly userRam: { base: bigint; size: bigint };
  /** The kernel's frame pool (type1's fine-grained-superpage probe takes a page from it). */
  readonly kernelPages: PageAllocator;
  readonly vfioParams: NonNullable<BoardOptions["vfioParams"]>;
  /** The seed's per-range reserved-IOVA capability in GET_INFO. */
  readonly seedCaps: boolean;
  readonly description: string;
  /** The kernel's printk buffer, already fed by the board's drivers. */
  readonly klog: KernelLog;
  /** The PCI host bridge's windows and dma-ranges (for the DMA cookies of default domains). */
  readonly hostBridge: HostBridge;
  /** Every device the IOMMU core probed: each runs `iommu_setup_dma_ops` (the core must allocate DMA cookies: `dmaCookieAtAlloc`). */
  readonly pciDevices: readonly Device[];
  /** x86: `pcibios_enable_irq` (ACPI interrupt links); see `VfioPciKernel`. */
  readonly pcibiosEnableIrq?: (dev: EduDevice) => void;
  /** x86: `pcibios_disable_irq`; see `VfioPciKernel`. */
  readonly pcibiosDisableIrq?: (dev: EduDevice) => void;
  /** The VFIO module set (default `debian`). */
  readonly modset?: Modset;
}

export function assembleHost(p: HostParts): Board {
  setupKernelDma(p.iommu, p.pciDevices, p.hostBridge, p.klog, p.kernel.iova.rcacheDepot);
  const clock = new FqClock(p.iommu);
  const pages = new HostPagePool(p.userRam.base, p.userRam.size);
  const vfio = new Vfio({
    iommu: p.iommu,
    params: {
      ...(p.vfioParams.dmaEntryLimit !== undefined ? { dmaEntryLimit: p.vfioParams.dmaEntryLimit } : {}),
      ...(p.vfioParams.allowUnsafeInterrupts !== undefined
        ? { allowUnsafeInterrupts: p.vfioParams.allowUnsafeInterrupts }
        : {}),
      ...(p.vfioParams.disableHugepages !== undefined ? { disableHugepages: p.vfioParams.disableHugepages } : {}),
    },
    seedResvCaps: p.seedCaps,
    kernel: p.kernel.type1,
    kernelPages: pageAllocatorSource(p.kernelPages),
  });
  const groupIdOf = (dev: EduDevice): number => {
    const g = p.iommu.groupOf(dev);
    if (!g) throw new RangeError(`${dev.name} has no IOMMU group`);
    return g.id;
  };
  const vfioIommufd = new VfioIommufd({
    modset: p.modset ?? "debian",
    iommu: p.iommu,
    vfio,
    devices: p.edus,
    groupIdOf,
    vfioPci: () => vfioPci,
  });
  const vfioPci: VfioPciHost = new VfioPciHost(
    p.edus,
    groupIdOf,
    vfioIommufd.gate({ get: (g) => vfio.deviceGet(g), put: (g) => vfio.devicePut(g) }),
    p.glue,
    {
      printk: (line) => p.klog.printk(line),
      ...(p.pcibiosEnableIrq ? { pcibiosEnableIrq: p.pcibiosEnableIrq } : {}),
      ...(p.pcibiosDisableIrq ? { pcibiosDisableIrq: p.pcibiosDisableIrq } : {}),
    },
  );
  return {
    name: p.name,
    kernel: p.kernel,
    arch: p.arch,
    memory: p.memory,
    iommu: p.iommu,
    vfio,
    edus: p.edus,
    vfioPci,
    vfioIommufd,
    msiDoorbell: p.msiDoorbell,
    regions: p.regions,
    description: p.description,
    groupIdOf,
    createProcess(opts) {
      const proc = new Process({
        memory: p.memory,
        pages,
        memlockBytes: opts.memlockBytes,
        capIpcLock: opts.capIpcLock ?? true,
      });
      return this.adoptProcess(proc);
    },
    adoptProcess(proc) {
      // type1 logs on the process's behalf (RLIMIT_MEMLOCK, unsafe interrupts): that is the kernel log too.
      p.klog.addSource(() => proc.klog.splice(0));
      return proc;
    },
    kernelLog() {
      return p.klog.drain();
    },
    hostBridge: p.hostBridge,
    tick(ms) {
      clock.tick(ms);
    },
    get nowMs() {
      return clock.nowMs;
    },
    interrupts() {
      return p.controller.list();
    },
  };
}
