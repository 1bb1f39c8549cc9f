/** Hosts for type1's tests: an IOMMU core with the mock or a fake driver, a Vfio, and a process. */
import { Iommu, type IommuOps, PciDevice, PhysicalMemory } from "@iommu/core";
import { createMockIommu, type MockIommu } from "@iommu/core/testing";
import { VFIO_TYPE1v2_IOMMU } from "@vfio/uapi";
import type { Container } from "../container.js";
import type { VfioGroup } from "../group.js";
import type { Type1KernelOptions } from "../kernel-options.js";
import { lazyPageSource, Process } from "../process.js";
import type { Type1Params } from "../state.js";
import { Vfio } from "../vfio.js";
import { ARM64_SHAPE, createFakeDriver, type FakeDriver, X86_SHAPE } from "./fake-driver.js";

/** The probe's buffer: 1 GiB anonymous at 0x1000_0000_0000 (conformance README). */
export const BASE = 0x1000_0000_0000n;
export const BASE_LEN = 1n << 30n;

export interface HostOptions {
  shape?: "x86" | "arm64" | "mock";
  devices?: number;
  params?: Partial<Type1Params>;
  seedResvCaps?: boolean;
  /** The type1 rules that changed after 6.1 (default: 6.1's). */
  kernel?: Partial<Type1KernelOptions>;
  memlockBytes?: bigint;
  capIpcLock?: boolean;
  msiRemap?: boolean;
  mockHugePages?: boolean;
}

export interface Host {
  memory: PhysicalMemory;
  iommu: Iommu;
  ops: IommuOps;
  fake: FakeDriver | null;
  mock: MockIommu | null;
  devices: PciDevice[];
  groupIds: number[];
  vfio: Vfio;
  proc: Process;
}

export function makeHost(o: HostOptions = {}): Host {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 1n << 42n);
  const shape = o.shape ?? "x86";
  const iommu = new Iommu({ msiRemap: o.msiRemap ?? shape !== "x86" });
  let fake: FakeDriver | null = null;
  let mock: MockIommu | null = null;
  let ops: IommuOps;
  if (shape === "mock") {
    mock = createMockIommu({ ...(o.mockHugePages ? { hugePages: true } : {}) });
    ops = mock.ops;
  } else {
    fake = createFakeDriver(shape === "x86" ? X86_SHAPE : ARM64_SHAPE);
    ops = fake.ops;
  }
  const devices: PciDevice[] = [];
  const groupIds: number[] = [];
  for (let i = 0; i < (o.devices ?? 1); i++) {
    const dev = new PciDevice(memory, { bus: 0, slot: i + 1, classCode: 0x00ff00 });
    devices.push(dev);
    groupIds.push(iommu.probeDevice(dev, ops).id);
  }
  const vfio = new Vfio({
    iommu,
    ...(o.params ? { params: o.params } : {}),
    ...(o.seedResvCaps ? { seedResvCaps: true } : {}),
    ...(o.kernel ? { kernel: o.kernel } : {}),
  });
  const proc = new Process({
    pages: lazyPageSource(1n << 32n, (1n << 42n) - (1n << 32n)),
    memory,
    ...(o.memlockBytes !== undefined ? { memlockBytes: o.memlockBytes } : {}),
    capIpcLock: o.capIpcLock ?? true,
  });
  proc.mmap({ start: BASE, size: BASE_LEN, name: "probe-buffer" });
  return { memory, iommu, ops, fake, mock, devices, groupIds, vfio, proc };
}

/** The probe's setup: open the container and group 0, attach it, SET_IOMMU. */
export function openContainer(h: Host, type = VFIO_TYPE1v2_IOMMU): { container: Container; group: VfioGroup } {
  const container = h.vfio.openContainer(h.proc);
  const group = h.vfio.openGroup(h.groupIds[0]!);
  group.setContainer(container);
  container.setIommu(type);
  return { container, group };
}
