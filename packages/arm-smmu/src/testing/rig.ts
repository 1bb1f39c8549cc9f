/**
 * Test rig: a QEMU-virt-like board with RAM, an SMMUv3 at 0x09050000, its driver, and PCI devices
 * behind it. Shared by this package's tests and benches (not exported).
 */
import {
  type Device,
  type DomainAllocContext,
  type IommuOps,
  PageAllocator,
  PciDevice,
  PhysicalMemory,
} from "@iommu/core";
import type { SmmuDomain } from "../driver/domain.js";
import { type ArmSmmuV3Driver, type ArmSmmuV3DriverOptions, createArmSmmuV3Driver } from "../driver/ops.js";
import { createSmmuV3Hardware, type SmmuV3Hardware, type SmmuV3HardwareOptions } from "../hw/smmu-v3.js";

export const SMMU_BASE = 0x9050000n;
export const RAM_BASE = 0x40000000n;
export const RAM_SIZE = 0x40000000n;
/** Frames for the driver's tables: the top 256 MiB of RAM. */
export const TABLES_BASE = 0x70000000n;
export const TABLES_SIZE = 0x10000000n;

export interface Fault {
  readonly dev: Device;
  readonly iova: bigint;
  readonly flags: number;
}

export interface Rig {
  readonly memory: PhysicalMemory;
  readonly hw: SmmuV3Hardware;
  readonly driver: ArmSmmuV3Driver;
  readonly ops: IommuOps;
  readonly pages: PageAllocator;
  readonly log: string[];
  readonly faults: Fault[];
  readonly ctx: DomainAllocContext;
  /** A PCI device at 00:<slot>.0, probed and behind the SMMU. */
  pci(slot: number): PciDevice;
  /** A paging domain of `type` with `devs` attached. */
  domain(devs: Device[], type?: "unmanaged" | "DMA" | "identity"): SmmuDomain;
}

export function makeRig(
  hwOpts: Partial<SmmuV3HardwareOptions> = {},
  drvOpts: Partial<ArmSmmuV3DriverOptions> = {},
  keepLog = true,
): Rig {
  const memory = new PhysicalMemory();
  memory.addRam(RAM_BASE, RAM_SIZE, "ram");
  const hw = createSmmuV3Hardware({ memory, mmioBase: SMMU_BASE, ias: 44, oas: 44, qemuQuirks: true, ...hwOpts });
  const pages = new PageAllocator(memory, TABLES_BASE, TABLES_SIZE);
  const log: string[] = [];
  const driver = createArmSmmuV3Driver({ memory, mmioBase: SMMU_BASE, pageAllocator: pages, ...drvOpts });
  const ops = driver.ops;
  // The event interrupt runs the driver's handler; its printk lines land in `log` at once.
  hw.onEventIrq = () => {
    const n = driver.handleEventIrq();
    const lines = driver.drainLog();
    if (keepLog) log.push(...lines);
    return n;
  };
  const faults: Fault[] = [];
  const ctx: DomainAllocContext = {
    reportFault(dev, iova, flags) {
      faults.push({ dev, iova, flags });
      return -38;
    },
  };
  return {
    memory,
    hw,
    driver,
    ops,
    pages,
    log,
    faults,
    ctx,
    pci(slot) {
      const dev = new PciDevice(memory, { bus: 0, slot, classCode: 0x00ff00 });
      dev.upstream = hw;
      ops.probeDevice(dev);
      return dev;
    },
    domain(devs, type = "unmanaged") {
      const d = ops.domainAlloc(type, ctx) as SmmuDomain | null;
      if (!d) throw new Error("domainAlloc returned null");
      for (const dev of devs) d.attachDev(dev);
      return d;
    },
  };
}
