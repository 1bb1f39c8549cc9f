// The README's example, kept runnable: the same program (README: plain JS with node:assert; here: typed, with expect).
import { Iommu, PciDevice, PhysicalMemory } from "@iommu/core";
import { createMockIommu } from "@iommu/core/testing";
import { IOMMU_IOAS_IOVA_RANGES, rd32 } from "@vfio/uapi/iommufd";
import { expect, it } from "vitest";
import { IommufdCtx, iommufdIoctl, type UserMemory } from "./index.js";

it("README example", () => {
  // A host: the IOMMU core with a driver (here core's selftest-shaped mock) and one device.
  const memory = new PhysicalMemory();
  const mock = createMockIommu();
  const iommu = new Iommu({ msiRemap: true });
  const dev = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0x00ff00 });
  iommu.probeDevice(dev, mock.ops);

  // The process iommufd pins from (a UserMemory; a real host passes its process model).
  let frame = 0x1000_0000n;
  const mm: UserMemory = {
    faultIn: () => ({ phys: (frame += 0x1000n), pages: 1 }),
    rlimitMemlock: 8n << 20n,
    capIpcLock: true,
    lockedVm: 0,
    pinnedVm: 0,
    readUser: (_va, len) => new Uint8Array(len),
    writeUser: () => {},
  };

  // open("/dev/iommu"), IOAS_ALLOC, bind and attach the device: ids 1, 2 and the auto HWPT 3.
  const ctx = new IommufdCtx({ iommu, mm });
  const ioas = ctx.ioasAlloc();
  const idev = ctx.bindDevice(dev);
  expect(ctx.attachDevice(idev, ioas)).toBe(3);

  // The usable IOVA ranges: the mock's aperture [16 MiB, 2 GiB) (its SW_MSI window lies above); 2 KiB pages.
  const { ranges, alignment } = ctx.ioasIovaRanges(ioas);
  expect(ranges.map((r) => [r.start, r.last])).toEqual([[0x100_0000n, 0x7fff_ffffn]]);
  expect(alignment).toBe(0x800n);

  // IOAS_MAP with a kernel-chosen IOVA: pinned, charged to VmPin, mapped into the domain.
  const iova = ctx.ioasMap(ioas, 0x7000_0000_0000n, 0x2000n, 0n, { fixed: false, read: true, write: true });
  expect(iova).toBe(0x100_0000n);
  expect(mm.pinnedVm).toBe(2);

  // The same through the ioctl bytes: IOMMU_IOAS_IOVA_RANGES with room for 0 ranges -> -EMSGSIZE, 1 needed.
  const arg = new Uint8Array(32);
  arg.set([32, 0, 0, 0, ioas, 0, 0, 0]);
  expect(iommufdIoctl(ctx, IOMMU_IOAS_IOVA_RANGES, arg)).toBe(-90);
  expect(rd32(arg, 8)).toBe(1);
});
