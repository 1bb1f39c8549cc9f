/**
 * Test helper: a small ARM-like host on the core's mock IOMMU driver — RAM, a GICv3 ITS whose
 * GITS_TRANSLATER records the MSIs that land on it, PCI devices probed into their own groups, and
 * the VFIO-style unmanaged domain type1 would build (claim ownership, attach, MSI cookie).
 */
import type { IommuDomain, IommuGroup, MemTxAttrs } from "@iommu/core";
import { Iommu, PciDevice, PhysicalMemory } from "@iommu/core";
import type { MockIommu, MockIommuOptions } from "@iommu/core/testing";
import { createMockIommu } from "@iommu/core/testing";

/** QEMU virt: ITS frame at 0x08080000, GITS_TRANSLATER at +0x10040 (reference / conformance). */
export const ITS_BASE = 0x0808_0000n;
export const GITS_TRANSLATER_OFFSET = 0x1_0040n;
export const GITS_TRANSLATER = ITS_BASE + GITS_TRANSLATER_OFFSET;
/** The software MSI window ARM SMMU drivers advertise. */
export const ARM_MSI_IOVA_BASE = 0x0800_0000n;
export const RAM_BASE = 0x4000_0000n;

/** An MSI the ITS received: which device (requester id) and the event id it wrote. */
export interface ItsMsi {
  readonly its: number;
  readonly requesterId: number | undefined;
  readonly data: bigint;
}

export interface TestBoard {
  readonly memory: PhysicalMemory;
  readonly mock: MockIommu;
  readonly iommu: Iommu;
  readonly devices: PciDevice[];
  /** Every write to a GITS_TRANSLATER, oldest first. */
  readonly msis: ItsMsi[];
  /** Physical address of ITS n's translater (ITS n at ITS_BASE + n * 0x20000). */
  translater(n: number): bigint;
}

export interface TestBoardOptions {
  readonly devices?: number;
  readonly itsCount?: number;
  readonly defaultDomainType?: "DMA" | "DMA-FQ" | "identity";
  readonly mock?: MockIommuOptions;
}

export function testBoard(opts: TestBoardOptions = {}): TestBoard {
  const memory = new PhysicalMemory();
  memory.addRam(RAM_BASE, 0x1000_0000n, "ram");
  const msis: ItsMsi[] = [];
  const itsCount = opts.itsCount ?? 1;
  for (let n = 0; n < itsCount; n++) {
    memory.addMmio(
      ITS_BASE + BigInt(n) * 0x2_0000n,
      0x2_0000n,
      {
        read: () => 0n,
        write(offset: bigint, _size, value: bigint, attrs: MemTxAttrs) {
          if (offset === GITS_TRANSLATER_OFFSET) msis.push({ its: n, requesterId: attrs.requesterId, data: value });
        },
      },
      `gic-its${n}`,
    );
  }
  const mock = createMockIommu(opts.mock);
  const iommu = new Iommu({ defaultDomainType: opts.defaultDomainType ?? "DMA", msiRemap: true });
  const devices: PciDevice[] = [];
  for (let i = 0; i < (opts.devices ?? 1); i++) {
    const dev = new PciDevice(memory, { bus: 0, slot: i + 1, classCode: 0x00ff_00 });
    iommu.probeDevice(dev, mock.ops);
    devices.push(dev);
  }
  return {
    memory,
    mock,
    iommu,
    devices,
    msis,
    translater: (n) => ITS_BASE + BigInt(n) * 0x2_0000n + GITS_TRANSLATER_OFFSET,
  };
}

/** What type1 does for a group: claim DMA ownership, allocate an unmanaged domain, attach. */
export function vfioDomain(board: TestBoard, groups: readonly IommuGroup[]): IommuDomain {
  const domain = board.iommu.domainAlloc(board.mock.ops, "unmanaged");
  for (const g of groups) {
    board.iommu.claimDmaOwner(g, board);
    board.iommu.attachGroup(domain, g);
  }
  return domain;
}

/** The group of a probed device (throws if it has none). */
export function groupOf(board: TestBoard, i: number): IommuGroup {
  const dev = board.devices[i];
  const g = dev ? board.iommu.groupOf(dev) : null;
  if (!g) throw new Error(`device ${i} has no group`);
  return g;
}

/** Little-endian bytes of a 32-bit MSI payload, as a device writes it. */
export function msiPayload(data: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, data >>> 0, true);
  return b;
}
