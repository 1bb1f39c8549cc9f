/**
 * type1's rules one by one (reference §6): attach/detach (§6.8), pinning and accounting (§6.4), VADDR,
 * dirty tracking on v1, and the page-size bitmap (§6.7). Errors are asserted by errno and op.
 */
import {
  ErrnoError,
  Iommu,
  type IommuGroup,
  isErrno,
  PAGE_SIZE,
  PciDevice,
  PhysicalMemory,
  resvRegion,
  SZ_2M,
} from "@iommu/core";
import { createMockIommu } from "@iommu/core/testing";
import {
  encodeDirtyPages,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_TYPE1_IOMMU,
} from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { lazyPageSource, type PageSource, Process } from "./process.js";
import { ARM64_SHAPE, createFakeDriver, X86_SHAPE } from "./test-support/fake-driver.js";
import { BASE, makeHost, openContainer } from "./test-support/hosts.js";
import { snapshot, type1State } from "./testing.js";
import { Vfio } from "./vfio.js";

const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

function errOf(fn: () => unknown): { code: string; op: string } | null {
  try {
    fn();
  } catch (e) {
    if (isErrno(e)) return { code: e.code, op: e.op };
    throw e;
  }
  return null;
}

/** One Iommu with two drivers (x86-like and arm64-like shapes) and one device on each. */
function twoDriverHost(opts: { arm?: typeof ARM64_SHAPE } = {}) {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 1n << 40n);
  const iommu = new Iommu({ msiRemap: true });
  const x86 = createFakeDriver(X86_SHAPE);
  const arm = createFakeDriver(opts.arm ?? ARM64_SHAPE);
  const a = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
  const b = new PciDevice(memory, { bus: 1, slot: 1, classCode: 0 });
  const ga = iommu.probeDevice(a, arm.ops);
  const gb = iommu.probeDevice(b, x86.ops);
  const vfio = new Vfio({ iommu });
  const proc = new Process({ pages: lazyPageSource(1n << 32n, 1n << 38n), memory });
  proc.mmap({ start: BASE, size: 1n << 30n });
  const container = vfio.openContainer(proc);
  const groupA = vfio.openGroup(ga.id);
  const groupB = vfio.openGroup(gb.id);
  groupA.setContainer(container);
  container.setIommu(3);
  return { iommu, x86, arm, ga, gb, vfio, proc, container, groupA, groupB };
}

describe("attach (vfio_iommu_type1_attach_group)", () => {
  it("refuses a group whose aperture excludes existing mappings, and leaves no trace", () => {
    const h = twoDriverHost();
    h.container.mapDma({ vaddr: BASE, iova: 1n << 40n, size: PAGE_SIZE, flags: RW }); // above 39 bits
    const before = JSON.stringify(snapshot(h.container));
    expect(errOf(() => h.groupB.setContainer(h.container))).toEqual({
      code: "EINVAL",
      op: "vfio_iommu_aper_conflict",
    });
    expect(JSON.stringify(snapshot(h.container))).toBe(before);
    expect(h.groupB.container).toBeNull();
    expect(h.gb.owner).toBeNull(); // DMA ownership released again
    expect([...h.x86.domains].filter((d) => d.type === "unmanaged")).toHaveLength(0);
  });

  it("refuses a group whose aperture starts above an existing mapping (low end of vfio_iommu_aper_conflict)", () => {
    const h = twoDriverHost();
    // The arm64-shaped domain's aperture starts at 0; the mock driver's starts at 16 MiB.
    h.container.mapDma({ vaddr: BASE, iova: 0x1000n, size: PAGE_SIZE, flags: RW });
    const mock = createMockIommu({ name: "mock-high-aperture" });
    const gm = h.iommu.probeDevice(new PciDevice(new PhysicalMemory(), { bus: 2, slot: 1, classCode: 0 }), mock.ops);
    const groupM = h.vfio.openGroup(gm.id);
    const before = JSON.stringify(snapshot(h.container));
    expect(errOf(() => groupM.setContainer(h.container))).toEqual({ code: "EINVAL", op: "vfio_iommu_aper_conflict" });
    expect(JSON.stringify(snapshot(h.container))).toBe(before);
    expect(groupM.container).toBeNull();
    expect([...mock.domains].filter((d) => d.type === "unmanaged")).toHaveLength(0);
  });

  it("refuses a group with a reserved region over an existing mapping (direct-relaxable excepted)", () => {
    const h = twoDriverHost();
    h.container.mapDma({ vaddr: BASE, iova: 0x4000_0000n, size: PAGE_SIZE, flags: RW });
    h.x86.extraResv.push(resvRegion(0x4000_0000n, 0x10_0000n, 3, "direct-relaxable"));
    // A relaxable RMRR over guest RAM is fine and stays usable.
    h.groupB.setContainer(h.container);
    const ranges = h.container.getInfo().iovaRanges;
    expect(ranges.some((r) => r.start <= 0x4000_0000n && 0x4000_0fffn <= r.end)).toBe(true);
    h.groupB.unsetContainer();
    h.x86.extraResv.push(resvRegion(0x4000_0000n, 0x10_0000n, 0, "reserved"));
    expect(errOf(() => h.groupB.setContainer(h.container))).toEqual({
      code: "EINVAL",
      op: "vfio_iommu_resv_conflict",
    });
  });

  it("keeps the IOVA list as the intersection of apertures minus every group's reserved regions", () => {
    const h = twoDriverHost();
    expect(h.container.getInfo().iovaRanges).toEqual([
      { start: 0n, end: 0x07ff_ffffn },
      { start: 0x0810_0000n, end: 0xffff_ffff_ffffn },
    ]);
    h.groupB.setContainer(h.container);
    expect(h.container.getInfo().iovaRanges).toEqual([
      { start: 0n, end: 0x07ff_ffffn },
      { start: 0x0810_0000n, end: 0xfedf_ffffn },
      { start: 0xfef0_0000n, end: 0x7f_ffff_ffffn },
    ]);
    // Detach widens the aperture back and drops the x86 MSI window (vfio_iommu_aper_expand + resv_refresh).
    h.groupB.unsetContainer();
    expect(h.container.getInfo().iovaRanges).toEqual([
      { start: 0n, end: 0x07ff_ffffn },
      { start: 0x0810_0000n, end: 0xffff_ffff_ffffn },
    ]);
  });

  it("replays existing mappings into a new domain and maps new ones into both", () => {
    const h = twoDriverHost();
    h.container.mapDma({ vaddr: BASE, iova: 0x10_0000n, size: 0x4000n, flags: RW });
    h.groupB.setContainer(h.container);
    const [da, db] = type1State(h.container.backend!).domains.map((d) => d.domain);
    expect(h.iommu.iovaToPhys(db!, 0x10_2000n)).toBe(h.iommu.iovaToPhys(da!, 0x10_2000n));
    expect(h.iommu.iovaToPhys(db!, 0x10_2000n)).not.toBe(0n);
    h.container.mapDma({ vaddr: BASE + 0x10000n, iova: 0x20_0000n, size: PAGE_SIZE, flags: RW });
    expect(h.iommu.iovaToPhys(db!, 0x20_0000n)).toBe(h.iommu.iovaToPhys(da!, 0x20_0000n));
    expect(h.proc.lockedVm).toBe(5); // pinned once, whatever the number of domains
  });

  it("reuses a compatible domain (same driver and coherency): one domain, no replay", () => {
    const h = makeHost({ shape: "x86", devices: 2 });
    const { container } = openContainer(h);
    container.mapDma({ vaddr: BASE, iova: 0x10_0000n, size: 0x2000n, flags: RW });
    const unmanaged = () => [...h.fake!.domains].filter((d) => d.type === "unmanaged").length;
    expect(unmanaged()).toBe(1);
    h.vfio.openGroup(h.groupIds[1]!).setContainer(container);
    expect(type1State(container.backend!).domains).toHaveLength(1);
    expect(type1State(container.backend!).domains[0]!.groups.map((g) => g.id)).toEqual(h.groupIds);
    expect(unmanaged()).toBe(1); // the new group's own domain was freed again
  });

  it("EPERM without interrupt remapping unless allow_unsafe_interrupts", () => {
    const h = makeHost({ shape: "x86", msiRemap: false });
    const noRemap = createFakeDriver({ ...X86_SHAPE, caps: [] });
    const dev = new PciDevice(h.memory, { bus: 2, slot: 0, classCode: 0 });
    const g = h.iommu.probeDevice(dev, noRemap.ops);
    const c = h.vfio.openContainer(h.proc);
    h.vfio.openGroup(g.id).setContainer(c);
    expect(errOf(() => c.setIommu(3))).toEqual({ code: "EPERM", op: "vfio_iommu_type1_attach_group" });
    expect(h.proc.klog.at(-1)).toMatch(/No interrupt remapping support.*allow_unsafe_interrupts/);
    expect(c.backend).toBeNull();
    h.vfio.params.allowUnsafeInterrupts = true; // 0644: read at attach time
    c.setIommu(3);
    expect(c.backend).not.toBeNull();
  });

  it("sets an MSI cookie at the SW_MSI base only when no hardware MSI region exists", () => {
    const arm = makeHost({ shape: "arm64" });
    openContainer(arm);
    const armDomain = [...arm.fake!.domains].find((d) => d.type === "unmanaged");
    expect(armDomain).toBeDefined();
    const c1 = arm.vfio.group(arm.groupIds[0]!)!.container!;
    expect(type1State(c1.backend!).domains[0]!.domain.iovaCookie?.kind).toBe("msi");

    const x86 = makeHost({ shape: "x86" });
    const { container } = openContainer(x86);
    expect(type1State(container.backend!).domains[0]!.domain.iovaCookie).toBeNull();

    const both = makeHost({ shape: "arm64" });
    both.fake!.extraResv.push(resvRegion(0xfee0_0000n, 0x10_0000n, 0, "msi"));
    const o = openContainer(both);
    expect(type1State(o.container.backend!).domains[0]!.domain.iovaCookie).toBeNull();
  });

  it("an MSI cookie failure with ENODEV is ignored; any other errno fails the attach without a trace", () => {
    for (const errno of ["ENODEV", "ENOMEM"] as const) {
      const memory = new PhysicalMemory();
      const iommu = new Iommu({ msiRemap: true });
      const mock = createMockIommu(); // SW_MSI window at 0x80000000
      const g = iommu.probeDevice(new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 }), mock.ops);
      const bases: bigint[] = [];
      const vfio = new Vfio({
        iommu,
        getMsiCookie: (_d, base) => {
          bases.push(base);
          throw new ErrnoError(errno, "iommu_get_msi_cookie", "refused", {});
        },
      });
      const c = vfio.openContainer(new Process({ pages: lazyPageSource(1n << 32n, 1n << 30n), memory }));
      vfio.openGroup(g.id).setContainer(c);
      const err = errOf(() => c.setIommu(3));
      expect(bases).toEqual([0x8000_0000n]);
      if (errno === "ENODEV") {
        expect(err).toBeNull();
        expect(type1State(c.backend!).domains).toHaveLength(1);
      } else {
        expect(err?.code).toBe("ENOMEM");
        expect([...mock.domains].filter((d) => d.type === "unmanaged")).toHaveLength(0);
      }
    }
  });

  it("hides sub-4 KiB IOMMU pages: the mock's 2 KiB pages show as PAGE_SIZE", () => {
    const h = makeHost({ shape: "mock", mockHugePages: true });
    const { container } = openContainer(h);
    expect(container.getInfo().iovaPgsizes).toBe(0x1000n | (1n << 20n));
    expect(container.getInfo().migration?.pgsizeBitmap).toBe(0x1000n);
  });
});

describe("detach (vfio_iommu_type1_detach_group)", () => {
  it("the last group takes every mapping with it and the container loses its backend", () => {
    const h = makeHost({ shape: "x86" });
    const { container, group } = openContainer(h);
    container.mapDma({ vaddr: BASE, iova: 0x10_0000n, size: 0x8000n, flags: RW });
    expect(h.proc.lockedVm).toBe(8);
    group.unsetContainer();
    expect(h.proc.lockedVm).toBe(0);
    expect(container.backend).toBeNull();
    expect([...h.fake!.domains].every((d) => d.recs.length === 0)).toBe(true);
    expect(errOf(() => container.mapDma({ vaddr: BASE, iova: 0n, size: PAGE_SIZE, flags: RW }))?.code).toBe("EINVAL");
    expect(container.ioctl(0x3b71, new Uint8Array(32))).toBe(-22);
  });
  it("detaching the last group from the backend itself unmaps, unpins and uncharges every mapping", () => {
    // The container's release() would also empty the tree: drive the backend directly so only detach can.
    const h = makeHost({ shape: "x86" });
    const { container, group } = openContainer(h);
    container.mapDma({ vaddr: BASE, iova: 0x10_0000n, size: 0x8000n, flags: RW });
    const backend = type1State(container.backend!);
    const avail = backend.dmaAvail;
    container.backend!.detachGroup(group.iommuGroup);
    expect(backend.dmas.count).toBe(0);
    expect(backend.dmaAvail).toBe(avail + 1);
    expect(h.proc.lockedVm).toBe(0);
    expect(backend.domains).toHaveLength(0);
    expect([...h.fake!.domains].every((d) => d.recs.length === 0)).toBe(true);
  });
});

describe("pinning (vfio_pin_pages_remote)", () => {
  it("pins hugetlb memory as one contiguous run per physically contiguous stretch", () => {
    const h = makeHost({ shape: "x86" });
    h.proc.mmap({ start: 0x4000_0000_0000n, size: 8n * SZ_2M, kind: "hugetlb-2M" });
    const { container } = openContainer(h);
    container.mapDma({ vaddr: 0x4000_0000_0000n, iova: 0x4000_0000n, size: 8n * SZ_2M, flags: RW });
    const dma = type1State(container.backend!).dmas.all()[0]!;
    expect(dma.runs).toHaveLength(1);
    expect(dma.runs[0]!.pages).toBe(4096);
    expect(h.proc.lockedVm).toBe(4096);
    const dom = [...h.fake!.domains].find((d) => d.type === "unmanaged")!;
    expect(dom.recs).toHaveLength(1); // one iommu_map of 2 MiB pages
  });

  it("disable_hugepages pins one page per run", () => {
    const h = makeHost({ shape: "x86", params: { disableHugepages: true } });
    h.proc.mmap({ start: 0x4000_0000_0000n, size: SZ_2M, kind: "hugetlb-2M" });
    const { container } = openContainer(h);
    container.mapDma({ vaddr: 0x4000_0000_0000n, iova: 0x4000_0000n, size: SZ_2M, flags: RW });
    expect(type1State(container.backend!).dmas.all()[0]!.runs).toHaveLength(512);
  });

  it("RLIMIT_MEMLOCK: ENOMEM with the kernel's warning, nothing left pinned or mapped", () => {
    const h = makeHost({ shape: "x86", capIpcLock: false, memlockBytes: 0x4000n });
    const { container } = openContainer(h);
    container.mapDma({ vaddr: BASE, iova: 0x10_0000n, size: 0x2000n, flags: RW });
    const before = JSON.stringify(snapshot(container));
    expect(
      errOf(() => container.mapDma({ vaddr: BASE + 0x10000n, iova: 0x20_0000n, size: 0x3000n, flags: RW })),
    ).toEqual({
      code: "ENOMEM",
      op: "vfio_pin_pages_remote",
    });
    expect(h.proc.klog.at(-1)).toBe("vfio_pin_pages_remote: RLIMIT_MEMLOCK (16384) exceeded");
    expect(JSON.stringify(snapshot(container))).toBe(before);
    // With CAP_IPC_LOCK the limit does not apply (lock_cap is sampled at MAP time).
    h.proc.capIpcLock = true;
    container.mapDma({ vaddr: BASE + 0x10000n, iova: 0x20_0000n, size: 0x3000n, flags: RW });
    expect(h.proc.lockedVm).toBe(5);
  });

  it("read-only pins of untouched anonymous memory take the zero page: not charged, one page per run", () => {
    const h = makeHost({ shape: "x86" });
    const { container } = openContainer(h);
    container.mapDma({ vaddr: BASE, iova: 0x10_0000n, size: 0x4000n, flags: VFIO_DMA_MAP_FLAG_READ });
    const dma = type1State(container.backend!).dmas.all()[0]!;
    expect(dma.runs.map((r) => [r.phys, r.pages, r.reserved])).toEqual(
      Array.from({ length: 4 }, () => [h.proc.zeroPage, 1, true]),
    );
    expect(h.proc.lockedVm).toBe(0);
    h.proc.touch(BASE + 0x10000n, PAGE_SIZE);
    container.mapDma({ vaddr: BASE + 0x10000n, iova: 0x20_0000n, size: PAGE_SIZE, flags: VFIO_DMA_MAP_FLAG_READ });
    expect(h.proc.lockedVm).toBe(1);
  });

  it("host memory exhausted while faulting a page in: ENOMEM, nothing left pinned or mapped", () => {
    const memory = new PhysicalMemory();
    const iommu = new Iommu({ msiRemap: true });
    const drv = createFakeDriver(X86_SHAPE);
    const g = iommu.probeDevice(new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 }), drv.ops);
    const vfio = new Vfio({ iommu });
    const proc = new Process({ pages: lazyPageSource(1n << 32n, 4n * PAGE_SIZE), memory }); // zero page + 3
    proc.mmap({ start: BASE, size: 1n << 20n });
    const c = vfio.openContainer(proc);
    vfio.openGroup(g.id).setContainer(c);
    c.setIommu(3);
    expect(errOf(() => c.mapDma({ vaddr: BASE, iova: 0n, size: 4n * PAGE_SIZE, flags: RW }))).toEqual({
      code: "ENOMEM",
      op: "handle_mm_fault",
    });
    expect(proc.lockedVm).toBe(0);
    expect(type1State(c.backend!).dmas.count).toBe(0);
    expect([...drv.domains].every((d) => d.recs.length === 0)).toBe(true);
  });

  it("MMIO (VM_PFNMAP) is mapped without pinning or charging", () => {
    const h = makeHost({ shape: "x86", capIpcLock: false, memlockBytes: 0n });
    h.proc.mmap({ start: 0x5000_0000_0000n, size: 0x4000n, kind: "pfnmap", phys: 0xfe00_0000n });
    const { container } = openContainer(h);
    container.mapDma({ vaddr: 0x5000_0000_0000n, iova: 0x1000_0000n, size: 0x4000n, flags: RW });
    const dma = type1State(container.backend!).dmas.all()[0]!;
    expect(dma.runs).toEqual([{ offset: 0n, phys: 0xfe00_0000n, pages: 4, reserved: true, charged: 0 }]);
    expect(h.proc.lockedVm).toBe(0);
  });

  it("EFAULT for unmapped user memory and for a write pin of a read-only vma", () => {
    const h = makeHost({ shape: "x86" });
    h.proc.mmap({ start: 0x6000_0000_0000n, size: 0x2000n, writable: false });
    const { container } = openContainer(h);
    expect(errOf(() => container.mapDma({ vaddr: BASE - 0x1000n, iova: 0n, size: 0x2000n, flags: RW }))?.code).toBe(
      "EFAULT",
    );
    expect(errOf(() => container.mapDma({ vaddr: 0x6000_0000_0000n, iova: 0n, size: 0x2000n, flags: RW }))?.code).toBe(
      "EFAULT",
    );
    container.mapDma({ vaddr: 0x6000_0000_0000n, iova: 0n, size: 0x2000n, flags: VFIO_DMA_MAP_FLAG_READ });
    // A run that faults half way fails as a whole: the first page is unpinned again.
    expect(
      errOf(() => container.mapDma({ vaddr: BASE + (1n << 30n) - 0x1000n, iova: 0x10_0000n, size: 0x2000n, flags: RW }))
        ?.code,
    ).toBe("EFAULT");
    expect(h.proc.lockedVm).toBe(0);
  });
});

describe("VADDR: invalidate and re-supply (5.12+)", () => {
  it("keeps DMA working, reports the sizes, rolls back a partial invalidate, and checks the re-supply", () => {
    const h = makeHost({ shape: "x86", devices: 2 });
    const { container } = openContainer(h);
    const t = type1State(container.backend!);
    container.mapDma({ vaddr: BASE, iova: 0x10_0000n, size: 0x2000n, flags: RW });
    container.mapDma({ vaddr: BASE + 0x4000n, iova: 0x20_0000n, size: 0x1000n, flags: RW });
    const phys = h.iommu.iovaToPhys(t.domains[0]!.domain, 0x10_0000n);
    expect(container.unmapDma({ iova: 0x10_0000n, size: 0x2000n, flags: VFIO_DMA_UNMAP_FLAG_VADDR })).toBe(0x2000n);
    expect(t.vaddrInvalidCount).toBe(1);
    expect(h.iommu.iovaToPhys(t.domains[0]!.domain, 0x10_0000n)).toBe(phys);
    // Covering both: the first is already invalid → EINVAL, the second is not left invalidated.
    expect(
      errOf(() => container.unmapDma({ iova: 0n, size: 0x100_0000n, flags: VFIO_DMA_UNMAP_FLAG_VADDR }))?.code,
    ).toBe("EINVAL");
    expect(t.dmas.all()[1]!.vaddrInvalid).toBe(false);
    // A group cannot join while a vaddr is invalid.
    expect(errOf(() => h.vfio.openGroup(h.groupIds[1]!).setContainer(container))?.code).toBe("EBUSY");
    const mapv = (iova: bigint, size: bigint) =>
      errOf(() => container.mapDma({ vaddr: BASE + 0x8000n, iova, size, flags: VFIO_DMA_MAP_FLAG_VADDR }))?.code ??
      "ok";
    expect(mapv(0x30_0000n, 0x1000n)).toBe("ENOENT");
    expect(mapv(0x10_0000n, 0x1000n)).toBe("EINVAL");
    expect(mapv(0x20_0000n, 0x1000n)).toBe("EINVAL"); // valid vaddr: nothing to re-supply
    expect(mapv(0x10_0000n, 0x2000n)).toBe("ok");
    expect(t.dmas.all()[0]!.vaddr).toBe(BASE + 0x8000n);
    expect(t.vaddrInvalidCount).toBe(0);
  });
});

describe("dirty tracking", () => {
  it("EACCES on a v1 container", () => {
    const h = makeHost({ shape: "x86" });
    const { container } = openContainer(h, VFIO_TYPE1_IOMMU);
    expect(container.ioctl(VFIO_IOMMU_DIRTY_PAGES, encodeDirtyPages(1))).toBe(-13);
  });

  it("copies a mapping's bits at its offset from the requested base, OR-ing the user's shared leading word", () => {
    const h = makeHost({ shape: "x86" });
    const heap = 0x2000_0000_0000n;
    h.proc.mmap({ start: heap, size: 0x1000n });
    const { container } = openContainer(h);
    container.mapDma({ vaddr: BASE, iova: 0x10_3000n, size: 0x4000n, flags: RW }); // bits 3..6 from base 0x100000
    container.mapDma({ vaddr: BASE, iova: 0x14_0000n, size: 0x1000n, flags: RW }); // bit 64: word 1, shift 0
    container.dirtyStart();
    h.proc.writeUser(heap, new Uint8Array([0x01, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xee]));
    container.dirtyGetBitmap(0x10_0000n, 0x41_000n, { pgsize: 0x1000n, size: 16n, data: heap });
    // word 0 = user's word | 0b1111000; word 1 = exactly the mapping's one bit (whole words are written).
    expect([...h.proc.readUser(heap, 17)]).toEqual([0x79, 0, 0, 0, 0, 0, 0, 0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0xee]);
    // A bitmap the user cannot write: EFAULT, and the mappings' bits are not consumed.
    expect(
      errOf(() => container.dirtyGetBitmap(0x10_0000n, 0x41_000n, { pgsize: 0x1000n, size: 16n, data: heap + 0xff8n }))
        ?.code,
    ).toBe("EFAULT");
  });

  it("a report at an offset that is not a multiple of 64 pages shifts the mapping's bitmap in place: the bits pushed past its pages stay and show in later reports", () => {
    // Linux 6.1 update_user_bitmap shifts dma->bitmap itself, over whole words, without masking the last one; the
    // reset after a report clears only the mapping's own pages. Recorded on a real kernel (dirty-multi fixtures).
    const h = makeHost({ shape: "x86" });
    const heap = 0x2000_0000_0000n;
    h.proc.mmap({ start: heap, size: 0x1000n });
    const { container } = openContainer(h);
    container.mapDma({ vaddr: BASE, iova: 0x10_0000n, size: 0x3000n, flags: RW }); // pages 0..2 from 0x100000
    container.mapDma({ vaddr: BASE, iova: 0x10_5000n, size: 0x1000n, flags: RW }); // page 5: shift 5
    container.mapDma({ vaddr: BASE, iova: 0x14_0000n, size: 0x2000n, flags: RW }); // pages 64, 65: word 1
    container.dirtyStart();
    const t = type1State(container.backend!);
    const read = (n: number) => Buffer.from(h.proc.readUser(heap, n)).toString("hex");
    h.proc.writeUser(heap, new Uint8Array(16));
    container.dirtyGetBitmap(0x10_0000n, 0x42_000n, { pgsize: 0x1000n, size: 16n, data: heap });
    expect(read(16)).toBe("27000000000000000300000000000000");
    // The one-page mapping's bitmap now holds its own page shifted to bit 5 and the user's leading bits 0..2; the
    // reset cleared bit 0 only.
    expect(t.dmas.all()[1]!.bits).toBe(0x26n);
    // Reported from its own iova (shift 0) it copies that whole word: bits 1, 2, 5 are stale, bit 0 is its page.
    // The third mapping lands at bit 59 of the same word.
    h.proc.writeUser(heap, new Uint8Array(8));
    container.dirtyGetBitmap(0x10_5000n, 0x3d_000n, { pgsize: 0x1000n, size: 8n, data: heap });
    expect(read(8)).toBe("2700000000000018");
    // Unmapping both with a bitmap: the third mapping's bits 0..2 (its two pages plus a stale bit 2) shift to
    // 59..61, past its nbits + shift = 61 bits, and bit 61 is not masked off.
    h.proc.writeUser(heap, new Uint8Array(8));
    const unmapped = container.unmapDma({
      iova: 0x10_5000n,
      size: 0x3d_000n,
      flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
      bitmap: { pgsize: 0x1000n, size: 8n, data: heap },
    });
    expect(unmapped).toBe(0x3000n);
    expect(read(8)).toBe("2700000000000038");
    // A fresh start allocates zeroed bitmaps: nothing stale.
    container.dirtyStop();
    container.dirtyStart();
    expect(t.dmas.all().map((d) => d.bits)).toEqual([0n]);
  });

  it("a group leaving while tracking marks every page dirty", () => {
    const h = makeHost({ shape: "x86", devices: 2 });
    const { container } = openContainer(h);
    const g2 = h.vfio.openGroup(h.groupIds[1]!);
    g2.setContainer(container);
    container.mapDma({ vaddr: BASE, iova: 0x10_0000n, size: 0x2000n, flags: RW });
    container.dirtyStart();
    g2.unsetContainer();
    expect(type1State(container.backend!).dmas.all()[0]!.bits).toBe(0b11n);
  });
});

describe("groups of a driver's own making", () => {
  it("a group with two devices is one VFIO group", () => {
    const memory = new PhysicalMemory();
    const iommu = new Iommu({ msiRemap: true });
    const drv = createFakeDriver(ARM64_SHAPE, () => "bridge");
    const g: IommuGroup = iommu.probeDevice(new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 }), drv.ops);
    iommu.probeDevice(new PciDevice(memory, { bus: 0, slot: 1, fn: 1, classCode: 0 }), drv.ops);
    const vfio = new Vfio({ iommu });
    const proc = new Process({ pages: lazyPageSource(1n << 32n, 1n << 30n), memory });
    const c = vfio.openContainer(proc);
    vfio.openGroup(g.id).setContainer(c);
    c.setIommu(3);
    expect(type1State(c.backend!).domains[0]!.groups).toEqual([g]);
  });
});

describe("failures leave no trace", () => {
  /** Two mock drivers (so two domains) with one device each; group A attached with a mapping. */
  function twoMocks() {
    const memory = new PhysicalMemory();
    memory.addRam(0n, 1n << 36n);
    const iommu = new Iommu({ msiRemap: true });
    const ma = createMockIommu({ name: "mock-a" });
    const mb = createMockIommu({ name: "mock-b" });
    const ga = iommu.probeDevice(new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 }), ma.ops);
    const gb = iommu.probeDevice(new PciDevice(memory, { bus: 1, slot: 1, classCode: 0 }), mb.ops);
    const vfio = new Vfio({ iommu });
    const proc = new Process({ pages: lazyPageSource(1n << 32n, 1n << 34n), memory });
    proc.mmap({ start: BASE, size: 1n << 30n });
    const container = vfio.openContainer(proc);
    vfio.openGroup(ga.id).setContainer(container);
    container.setIommu(3);
    container.mapDma({ vaddr: BASE, iova: 0x100_0000n, size: 0x8000n, flags: RW });
    return { iommu, ma, mb, ga, gb, vfio, proc, container };
  }

  it("a replay that fails in the new domain (ENOMEM) unwinds it and keeps the container as it was", () => {
    const h = twoMocks();
    const before = JSON.stringify(snapshot(h.container));
    h.mb.failMapsAfter(3); // 3 IOMMU pages (2 KiB each) of the 8 KiB-run replay, then ENOMEM
    expect(errOf(() => h.vfio.openGroup(h.gb.id).setContainer(h.container))?.code).toBe("ENOMEM");
    expect(JSON.stringify(snapshot(h.container))).toBe(before);
    expect([...h.mb.domains].filter((d) => d.type === "unmanaged")).toHaveLength(0);
    expect(h.gb.owner).toBeNull();
  });

  it("a MAP_DMA that fails in the second domain unmaps it from the first, unpins and uncharges", () => {
    const h = twoMocks();
    h.vfio.openGroup(h.gb.id).setContainer(h.container);
    expect(type1State(h.container.backend!).domains).toHaveLength(2);
    const before = JSON.stringify(snapshot(h.container));
    const da = type1State(h.container.backend!).domains[0]!.domain;
    h.mb.failMapsAfter(5);
    expect(
      errOf(() => h.container.mapDma({ vaddr: BASE + 0x10_0000n, iova: 0x200_0000n, size: 0x4000n, flags: RW }))?.code,
    ).toBe("ENOMEM");
    expect(JSON.stringify(snapshot(h.container))).toBe(before);
    expect(h.iommu.iovaToPhys(da, 0x200_0000n)).toBe(0n);
    expect(h.proc.lockedVm).toBe(8);
  });

  it("fgsp probe: a driver that unmaps more than asked has fine-grained superpages", () => {
    for (const unmapWhole of [false, true]) {
      const memory = new PhysicalMemory();
      const iommu = new Iommu({ msiRemap: true });
      const drv = createFakeDriver(X86_SHAPE, (n) => n, { unmapWhole });
      const g = iommu.probeDevice(new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 }), drv.ops);
      const vfio = new Vfio({ iommu, kernelPages: lazyPageSource(1n << 30n, 1n << 24n) });
      const c = vfio.openContainer(new Process({ pages: lazyPageSource(1n << 32n, 1n << 30n), memory }));
      vfio.openGroup(g.id).setContainer(c);
      c.setIommu(3);
      expect(type1State(c.backend!).domains[0]!.fgsp).toBe(unmapWhole);
      expect(type1State(c.backend!).domains[0]!.domain.driver.iovaToPhys!(0n)).toBe(0n); // the probe left nothing mapped
    }
  });

  it("fgsp probe: the two kernel pages are freed again, and no kernel memory skips the probe instead of failing the attach", () => {
    const attach = (kernelPages: PageSource) => {
      const memory = new PhysicalMemory();
      const iommu = new Iommu({ msiRemap: true });
      const drv = createFakeDriver(X86_SHAPE);
      const g = iommu.probeDevice(new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 }), drv.ops);
      const vfio = new Vfio({ iommu, kernelPages });
      const c = vfio.openContainer(new Process({ pages: lazyPageSource(1n << 32n, 1n << 30n), memory }));
      vfio.openGroup(g.id).setContainer(c);
      c.setIommu(3);
      return c;
    };
    const live = new Set<bigint>();
    const src = lazyPageSource(1n << 30n, 1n << 24n);
    const tracked: PageSource = {
      allocPage: () => src.allocPage(),
      allocPages: (n) => {
        const a = src.allocPages!(n);
        for (let i = 0n; i < BigInt(n); i++) live.add(a + i * PAGE_SIZE);
        return a;
      },
      freePage: (a) => {
        live.delete(a);
      },
    };
    attach(tracked);
    expect(live.size).toBe(0); // __free_pages after the probe

    const empty = lazyPageSource(1n << 30n, 0n); // alloc_pages fails: ENOMEM
    const c = attach(empty);
    expect(type1State(c.backend!).domains).toHaveLength(1);
    expect(type1State(c.backend!).domains[0]!.fgsp).toBe(false);
  });
});
