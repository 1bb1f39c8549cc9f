/**
 * Errors are errnos, everywhere (issue 13, rule 4), on type1's side: what a driver answers on the driver
 * contract (arm-smmu's ERANGE and vt-d's EFAULT from map_pages, EOPNOTSUPP from attach_dev, a NULL domain) and
 * what an exhausted page pool answers (ENOMEM) come out of the byte ioctls as negative errnos and leave no trace;
 * type1 catches only ErrnoError, so an exception of any other type (a bug) is not turned into an errno.
 */
import {
  type DriverDomain,
  ErrnoError,
  Iommu,
  type IommuOps,
  PAGE_SIZE,
  PageAllocator,
  PciDevice,
  PhysicalMemory,
} from "@iommu/core";
import {
  encodeDmaMap,
  infoBuffer,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  view,
} from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { lazyPageSource, type PageSource, Process, pageAllocatorSource } from "./process.js";
import { ARM64_SHAPE, createFakeDriver, X86_SHAPE } from "./test-support/fake-driver.js";
import { BASE } from "./test-support/hosts.js";
import { snapshot } from "./testing.js";
import { Vfio } from "./vfio.js";

const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

interface Faults {
  /** map_pages answers this errno (after mapping nothing). */
  map?: "ERANGE" | "EFAULT";
  /** attach_dev throws this. */
  attach?: ErrnoError | Error;
  /** domain_alloc returns NULL. */
  noDomain?: boolean;
  /** domain_alloc throws this (a driver bug). */
  allocThrows?: Error;
}

/** The fake driver of the given shape with faults injected on the driver contract. */
function faultyOps(shape: "x86" | "arm64", f: Faults): IommuOps {
  const base = createFakeDriver(shape === "x86" ? X86_SHAPE : ARM64_SHAPE).ops;
  return {
    ...base,
    domainAlloc(type, ctx) {
      if (f.noDomain && type === "unmanaged") return null;
      if (f.allocThrows && type === "unmanaged") throw f.allocThrows;
      const d = base.domainAlloc(type, ctx);
      if (!d || type !== "unmanaged") return d;
      const wrapped: DriverDomain = {
        ...d,
        pgsizeBitmap: d.pgsizeBitmap,
        geometry: d.geometry,
        attachDev(dev) {
          if (f.attach) throw f.attach;
          d.attachDev(dev);
        },
        mapPages(iova, paddr, pgsize, pgcount, prot) {
          if (f.map) return { mapped: 0n, error: new ErrnoError(f.map, "map_pages", "injected", { iova }) };
          return d.mapPages!(iova, paddr, pgsize, pgcount, prot);
        },
        free: () => d.free(),
      };
      return wrapped;
    },
  };
}

function host(shape: "x86" | "arm64", f: Faults, pages?: { process?: PageSource; kernel?: PageSource }) {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 1n << 36n);
  const iommu = new Iommu({ msiRemap: shape !== "x86" });
  const ops = faultyOps(shape, f);
  const groups = [1, 2].map((slot) => iommu.probeDevice(new PciDevice(memory, { bus: 0, slot, classCode: 0 }), ops));
  const vfio = new Vfio({ iommu, ...(pages?.kernel ? { kernelPages: pages.kernel } : {}) });
  const proc = new Process({ pages: pages?.process ?? lazyPageSource(1n << 32n, 1n << 34n), memory, zeroPage: 0n });
  proc.mmap({ start: BASE, size: 1n << 24n });
  const container = vfio.openContainer(proc);
  const fdBuf = new Uint8Array(4);
  view(fdBuf).setInt32(0, container.fd, true);
  const join = (i: number): number => vfio.openGroup(groups[i]!.id).ioctl(VFIO_GROUP_SET_CONTAINER, fdBuf.slice());
  const map = (iova: bigint, size: bigint, flags = RW): number =>
    container.ioctl(VFIO_IOMMU_MAP_DMA, encodeDmaMap({ argsz: 32, flags, vaddr: BASE, iova, size }));
  return { iommu, proc, container, join, map };
}

describe("errors are errnos, everywhere (type1)", () => {
  it.each([
    ["arm64", "ERANGE", -34],
    ["x86", "EFAULT", -14],
  ] as const)("%s: map_pages' %s comes out of MAP_DMA as %i and leaves no trace", (shape, errno, ret) => {
    const h = host(shape, { map: errno });
    expect(h.join(0)).toBe(0);
    expect(h.container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    const before = JSON.stringify(snapshot(h.container));
    expect(h.map(0x100000n, 0x4000n)).toBe(ret);
    expect(JSON.stringify(snapshot(h.container))).toBe(before);
    expect(h.proc.lockedVm).toBe(0);
  });

  it("attach_dev's EOPNOTSUPP comes out of SET_IOMMU and of GROUP_SET_CONTAINER as -95", () => {
    const f: Faults = { attach: new ErrnoError("EOPNOTSUPP", "attach_dev", "injected") };
    const h = host("x86", f);
    expect(h.join(0)).toBe(0);
    expect(h.container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(-95);
    expect(h.container.backend).toBeNull();
    delete f.attach;
    expect(h.container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    const before = JSON.stringify(snapshot(h.container));
    f.attach = new ErrnoError("EOPNOTSUPP", "attach_dev", "injected");
    expect(h.join(1)).toBe(-95);
    expect(JSON.stringify(snapshot(h.container))).toBe(before);
  });

  it("a NULL domain from domain_alloc is type1's -EIO", () => {
    const h = host("arm64", { noDomain: true });
    expect(h.join(0)).toBe(0);
    expect(h.container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(-5);
    expect(h.container.backend).toBeNull();
  });

  it("exhausted page pools: the fgsp probe is skipped, a w/rw pin is -ENOMEM, an `r` pin of untouched memory works", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0n, 1n << 24n);
    const empty = new PageAllocator(memory, 0x10_0000n, 0x1000n);
    empty.alloc(1); // the pool's only frame is gone
    const h = host("arm64", {}, { process: pageAllocatorSource(empty), kernel: pageAllocatorSource(empty) });
    expect(h.join(0)).toBe(0);
    expect(h.container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    const before = JSON.stringify(snapshot(h.container));
    expect(h.map(0x100000n, 0x2000n)).toBe(-12);
    expect(JSON.stringify(snapshot(h.container))).toBe(before);
    expect(h.map(0x100000n, 0x2000n, VFIO_DMA_MAP_FLAG_READ)).toBe(0);
    expect(h.container.ioctl(VFIO_IOMMU_GET_INFO, infoBuffer(4096))).toBe(0);
    expect(h.join(1)).toBe(0); // a second group joins the backend (replay of the zero-page run)
  });

  it("an exception that is not an ErrnoError is a bug: type1 does not turn it into an errno", () => {
    const h = host("x86", { attach: new TypeError("driver bug") });
    expect(h.join(0)).toBe(0);
    expect(() => h.container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toThrow(TypeError);
    // iommu_domain_alloc's NULL is -EIO; a thrown TypeError is not a NULL.
    const g = host("arm64", { allocThrows: new TypeError("domain_alloc bug") });
    expect(g.join(0)).toBe(0);
    expect(() => g.container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toThrow(TypeError);
    // A page source's own bug is not an out-of-memory fault (only its ENOMEM is).
    const broken: PageSource = {
      allocPage: () => {
        throw new TypeError("page source bug");
      },
    };
    const proc = new Process({ pages: broken, zeroPage: 0n });
    proc.mmap({ start: BASE, size: PAGE_SIZE });
    expect(() => proc.faultIn(BASE, true, 1)).toThrow(TypeError);
  });
});
