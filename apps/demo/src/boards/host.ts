/**
 * The board-independent half of a passthrough host: VFIO (type1 + vfio-pci) on top of the IOMMU
 * core, user processes backed by the board's RAM, and the interrupt log.
 */
import type { Iommu, PhysicalMemory } from "@iommu/core";
import type { Process, Vfio } from "@vfio/type1";
import * as type1 from "@vfio/type1";
import type { EduDevice } from "../devices/edu.js";
import type { MsiGlue } from "../host/msi-glue.js";
import { VfioPciHost } from "../host/vfio-pci.js";
import type { InterruptController } from "../irq/interrupt-controller.js";
import { HostPagePool } from "./page-pool.js";
import type { Board, BoardName, BoardOptions, BoardRegion } from "./types.js";

export interface HostParts {
  readonly name: BoardName;
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
  readonly vfioParams: NonNullable<BoardOptions["vfioParams"]>;
  /** The seed's per-range reserved-IOVA capability in GET_INFO. */
  readonly seedCaps: boolean;
  readonly description: string;
}

export function assembleHost(p: HostParts): Board {
  const pages = new HostPagePool(p.userRam.base, p.userRam.size);
  // Built on first use: the hardware and the IOMMU core work without it (tests of the device path).
  let vfio: Vfio | null = null;
  const lib = type1 as unknown as { Vfio?: new (init: unknown) => Vfio; Process?: new (init: unknown) => Process };
  const getVfio = (): Vfio => {
    if (vfio) return vfio;
    if (!lib.Vfio) throw new Error("@vfio/type1 does not export Vfio (not landed yet)");
    vfio = new lib.Vfio({
      iommu: p.iommu,
      params: {
        ...(p.vfioParams.dmaEntryLimit !== undefined ? { dmaEntryLimit: p.vfioParams.dmaEntryLimit } : {}),
        ...(p.vfioParams.allowUnsafeInterrupts !== undefined
          ? { allowUnsafeInterrupts: p.vfioParams.allowUnsafeInterrupts }
          : {}),
        ...(p.vfioParams.disableHugepages !== undefined ? { disableHugepages: p.vfioParams.disableHugepages } : {}),
      },
      ...(p.seedCaps ? { seedResvCaps: true } : {}),
    });
    return vfio;
  };
  const groupIdOf = (dev: EduDevice): number => {
    const g = p.iommu.groupOf(dev);
    if (!g) throw new RangeError(`${dev.name} has no IOMMU group`);
    return g.id;
  };
  const vfioPci = new VfioPciHost(p.edus, groupIdOf, (groupId) => getVfio().deviceAccess(groupId), p.glue);
  return {
    name: p.name,
    arch: p.arch,
    memory: p.memory,
    iommu: p.iommu,
    get vfio() {
      return getVfio();
    },
    edus: p.edus,
    vfioPci,
    msiDoorbell: p.msiDoorbell,
    regions: p.regions,
    description: p.description,
    groupIdOf,
    createProcess(opts) {
      if (!lib.Process) throw new Error("@vfio/type1 does not export Process (not landed yet)");
      return new lib.Process({
        memory: p.memory,
        pages,
        memlockBytes: opts.memlockBytes,
        capIpcLock: opts.capIpcLock ?? true,
      });
    },
    interrupts() {
      return p.controller.list();
    },
  };
}
