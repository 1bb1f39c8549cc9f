/**
 * The type1 rules that changed after Linux 6.1, one option at a time, with the bytes and errnos recorded on real
 * 6.1.192, 6.12.117 and 7.3.4 kernels (conformance linux-6.1/, linux-6.12/, linux-7.3/: info-argsz, basic,
 * map-errors-args, unmap-v2, map-unmap-happy).
 */
import { errnoName, PAGE_SIZE } from "@iommu/core";
import { ARCHES, type Arch, readRecords } from "@iommu-sim/conformance";
import {
  encodeDirtyPages,
  encodeDmaMap,
  encodeDmaUnmap,
  infoBuffer,
  toHex,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { TYPE1_KERNEL_DEFAULTS, type Type1KernelOptions } from "./kernel-options.js";
import { BASE, makeHost, openContainer } from "./test-support/hosts.js";
import { type1State } from "./testing.js";

const R = VFIO_DMA_MAP_FLAG_READ;
const W = VFIO_DMA_MAP_FLAG_WRITE;
const RW = R | W;
const FILL = 0xa5;

/** GET_INFO with `argsz` into a buffer of max(argsz, 24) bytes pre-filled with 0xa5, as the probe does. */
function infoRaw(container: { ioctl(r: number, a: Uint8Array): number }, argsz: number): { ret: number; raw: string } {
  const b = infoBuffer(argsz, FILL);
  const ret = container.ioctl(VFIO_IOMMU_GET_INFO, b);
  return { ret, raw: toHex(b) };
}

const a5 = (n: number): string => "a5".repeat(n);

/** map-unmap-happy lines 5-10: [iova, size, flags, vaddr offset]; the fifth is `r` over never-touched memory. */
const HAPPY_MAPS: readonly [bigint, bigint, number, bigint][] = [
  [0x100000n, 0x1000n, RW, 0n],
  [0x101000n, 0x1000n, RW, 0x1000n],
  [0x0ff000n, 0x1000n, RW, 0x2000n],
  [0x200000n, 0x200000n, RW, 0x200000n],
  [0x1000000n, 0x10000n, R, 0x400000n],
  [0x2000000n, 0x10000n, W, 0x500000n],
];

describe("alignCapabilities (vfio: align capability structures, a881b496941f, 6.6)", () => {
  // The whole 4096-byte answer on x86 as 6.12.117 and 7.3.4 wrote it: pad 20..23 zero, DMA_AVAIL's next 72,
  // 4 zero bytes after its 12, IOVA_RANGE at 72.
  const X86_ALIGNED =
    "00100000030000000010204000000000180000000000000002000100380000000000000000000000001000000000000000000010000000000300010048000000ffff000000000000010001000000000002000000000000000000000000000000ffffdffe000000000000f0fe00000000ffffffff7f000000";
  const ARM64_ALIGNED_TAIL = "ffffff07000000000000100800000000ffffffffffff0000";

  it("x86: MIGRATION@24, DMA_AVAIL@56 padded to 16, IOVA_RANGE@72; 120 bytes, as 6.12 and 7.3 wrote them", () => {
    const h = makeHost({ shape: "x86", kernel: { alignCapabilities: true } });
    const { container } = openContainer(h);
    const { ret, raw } = infoRaw(container, 4096);
    expect(ret).toBe(0);
    expect(raw.slice(0, 240)).toBe(X86_ALIGNED);
    expect(raw.slice(240)).toBe(a5(4096 - 120));
    expect(container.getInfo().iovaRanges).toEqual([
      { start: 0n, end: 0xfedfffffn },
      { start: 0xfef00000n, end: 0x7fffffffffn },
    ]);
  });

  it("arm64: the same layout with arm64's ranges", () => {
    const h = makeHost({ shape: "arm64", kernel: { alignCapabilities: true } });
    const { container } = openContainer(h);
    const { raw } = infoRaw(container, 4096);
    expect(raw.slice(0, 240 - ARM64_ALIGNED_TAIL.length)).toBe(X86_ALIGNED.slice(0, 240 - ARM64_ALIGNED_TAIL.length));
    expect(raw.slice(240 - ARM64_ALIGNED_TAIL.length, 240)).toBe(ARM64_ALIGNED_TAIL);
  });

  // argsz → the first 24 (or argsz) bytes written back, recorded on 6.12 and 7.3 (x86 and arm64 alike).
  const HEAD = "78000000030000000010204000000000";
  const RECORDED: readonly [number, string][] = [
    [16, HEAD + a5(8)],
    [20, `${HEAD}00000000${a5(4)}`],
    [23, `${HEAD}00000000000000${a5(1)}`],
    [24, `${HEAD}0000000000000000`],
    [25, `${HEAD}0000000000000000${a5(1)}`],
    [115, `${HEAD}0000000000000000${a5(115 - 24)}`],
    [116, `${HEAD}0000000000000000${a5(116 - 24)}`],
    [117, `${HEAD}0000000000000000${a5(117 - 24)}`],
  ];
  it.each(["x86", "arm64"] as const)(
    "%s: argsz 16..117 get argsz 120, no caps, pad written up to min(argsz, 24)",
    (shape) => {
      const h = makeHost({ shape, kernel: { alignCapabilities: true } });
      const { container } = openContainer(h);
      for (const [argsz, want] of RECORDED)
        expect({ argsz, ...infoRaw(container, argsz) }).toEqual({ argsz, ret: 0, raw: want });
      for (const argsz of [0, 8, 15]) {
        expect(infoRaw(container, argsz)).toEqual({
          ret: -22,
          raw: `${toHex(infoBuffer(argsz, FILL)).slice(0, 8)}${a5(20)}`,
        });
      }
    },
  );

  it("argsz 118 and 119 are still too small (the chain needs 120), 120 gets it all", () => {
    const h = makeHost({ shape: "x86", kernel: { alignCapabilities: true } });
    const { container } = openContainer(h);
    for (const argsz of [118, 119]) expect(infoRaw(container, argsz).raw.slice(0, 48)).toBe(`${HEAD}0000000000000000`);
    expect(infoRaw(container, 120).raw.slice(8)).toBe(X86_ALIGNED.slice(8));
  });

  it("6.1 (default): 116 needed, IOVA_RANGE@68, argsz 116 gets the caps and bytes 20..23 stay untouched", () => {
    const h = makeHost({ shape: "x86" });
    const { container } = openContainer(h);
    expect(infoRaw(container, 116).raw).toBe(
      "7400000003000000001020400000000018000000a5a5a5a502000100380000000000000000000000001000000000000000000010000000000300010044000000ffff0000010001000000000002000000000000000000000000000000ffffdffe000000000000f0fe00000000ffffffff7f000000",
    );
    expect(infoRaw(container, 23).raw).toBe(`7400000003000000001020400000000000000000${a5(4)}`);
  });
});

describe("longtermPinUnshare (mm/gup: reliable R/O long-term pinning in COW mappings, 84209e87c696, 6.2)", () => {
  /** map-unmap-happy lines 5-12: VmLck 2124 KB on 6.1, 2188 KB on 6.12 and 7.3 (the 64 KiB `r` map is charged). */
  function happy(unshare: boolean): number {
    const h = makeHost({ shape: "x86", kernel: { longtermPinUnshare: unshare } });
    const { container } = openContainer(h);
    for (const [iova, size, flags, off] of HAPPY_MAPS) container.mapDma({ vaddr: BASE + off, iova, size, flags });
    return h.proc.vmLckKb;
  }

  it("VmLck after map-unmap-happy's maps: 2124 KB on 6.1, 2188 KB with the rule", () => {
    expect(happy(false)).toBe(2124);
    expect(happy(true)).toBe(2188);
  });

  it("a device read through an `r` map of untouched memory sees the process's later write (6.1: zeros)", () => {
    for (const unshare of [false, true]) {
      const h = makeHost({ shape: "x86", kernel: { longtermPinUnshare: unshare } });
      const { container } = openContainer(h);
      container.mapDma({ vaddr: BASE, iova: 0x100000n, size: 2n * PAGE_SIZE, flags: R });
      h.proc.writeUser(BASE + PAGE_SIZE + 8n, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
      const domain = type1State(container.backend!).domains[0]!.domain;
      const seen = h.memory.read(h.iommu.iovaToPhys(domain, 0x100000n + PAGE_SIZE + 8n), 4);
      expect({ unshare, seen: [...seen] }).toEqual({
        unshare,
        seen: unshare ? [0xde, 0xad, 0xbe, 0xef] : [0, 0, 0, 0],
      });
      expect({ unshare, lockedVm: h.proc.lockedVm }).toEqual({ unshare, lockedVm: unshare ? 2 : 0 });
    }
  });

  it("under RLIMIT_MEMLOCK the charged `r` map can now fail with ENOMEM and leaves no trace", () => {
    const h = makeHost({
      shape: "x86",
      capIpcLock: false,
      memlockBytes: PAGE_SIZE,
      kernel: { longtermPinUnshare: true },
    });
    const { container } = openContainer(h);
    const map = encodeDmaMap({ argsz: 32, flags: R, vaddr: BASE, iova: 0x100000n, size: 2n * PAGE_SIZE });
    expect(container.ioctl(VFIO_IOMMU_MAP_DMA, map)).toBe(-12);
    expect(h.proc.lockedVm).toBe(0);
    expect(type1State(container.backend!).dmas.count).toBe(0);
  });
});

describe("nestingIommu (vfio: Remove VFIO_TYPE1_NESTING_IOMMU, 35890f85573c, 6.13)", () => {
  it("CHECK_EXTENSION answers 1 on 6.1 and 0 without the type (basic: ext type1_nesting)", () => {
    for (const nestingIommu of [true, false]) {
      const h = makeHost({ shape: "x86", kernel: { nestingIommu } });
      const c = h.vfio.openContainer(h.proc);
      expect(c.ioctl(VFIO_CHECK_EXTENSION, VFIO_TYPE1_NESTING_IOMMU)).toBe(nestingIommu ? 1 : 0);
      const { container } = openContainer(h);
      expect(container.ioctl(VFIO_CHECK_EXTENSION, VFIO_TYPE1_NESTING_IOMMU)).toBe(nestingIommu ? 1 : 0);
    }
  });

  it("SET_IOMMU with it finds no IOMMU driver: ENODEV (6.1: EINVAL from iommu_enable_nesting)", () => {
    for (const [nestingIommu, errno] of [
      [true, -22],
      [false, -19],
    ] as const) {
      const h = makeHost({ shape: "arm64", kernel: { nestingIommu } });
      const container = h.vfio.openContainer(h.proc);
      h.vfio.openGroup(h.groupIds[0]!).setContainer(container);
      expect(container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1_NESTING_IOMMU)).toBe(errno);
      expect(container.backend).toBeNull();
      expect(container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    }
  });
});

describe("sanitizeOverflow (vfio/type1: sanitize for overflow using check_*_overflow(), 6012379ede6a, 6.18)", () => {
  // map-errors-args, lines 4-14: [iova, size, flags, vaddr, errno on 6.1/6.12, errno on 7.3]
  const MAP_ERRORS: readonly [bigint, bigint, number, bigint, number, number][] = [
    [0x100000n, 0n, RW, BASE, -22, -22],
    [0x100800n, 0x1000n, RW, BASE, -22, -22],
    [0x100000n, 0x800n, RW, BASE, -22, -22],
    [0x100000n, 0x1800n, RW, BASE, -22, -22],
    [0x100000n, 0x1000n, RW, BASE + 0x800n, -22, -22],
    [0x100000n, 0x1000n, 0, BASE, -22, -22],
    [0xfffffffffffff000n, 0x2000n, RW, BASE, -22, -75],
    [0xfffffffffffff000n, 0x1000n, RW, BASE, -22, -22],
    [0n, 0xfffffffffffff000n, RW, BASE, -22, -75],
    [0x100000n, 0x2000n, RW, 0xfffffffffffff000n, -22, -75],
    [0x1000n, 0xfffffffffffff000n, RW, BASE, -22, -75],
  ];

  it.each(["x86", "arm64"] as const)("%s: map-errors-args gives 6.1's EINVALs and 7.3's EOVERFLOWs", (shape) => {
    for (const sanitizeOverflow of [false, true]) {
      const h = makeHost({ shape, kernel: { sanitizeOverflow } });
      const { container } = openContainer(h);
      for (const [iova, size, flags, vaddr, old, now] of MAP_ERRORS) {
        const ret = container.ioctl(VFIO_IOMMU_MAP_DMA, encodeDmaMap({ argsz: 32, flags, vaddr, iova, size }));
        expect({ iova, size, vaddr, ret }).toEqual({ iova, size, vaddr, ret: sanitizeOverflow ? now : old });
      }
      expect(h.proc.vmLckKb).toBe(0);
    }
  });

  it("MAP_DMA checks the wrap before the flags and the alignment", () => {
    const h = makeHost({ shape: "x86", kernel: { sanitizeOverflow: true } });
    const { container } = openContainer(h);
    const wrap = { argsz: 32, vaddr: BASE, iova: 0xfffffffffffff800n, size: 0x2000n };
    expect(container.ioctl(VFIO_IOMMU_MAP_DMA, encodeDmaMap({ ...wrap, flags: 0 }))).toBe(-75); // no READ/WRITE
    expect(container.ioctl(VFIO_IOMMU_MAP_DMA, encodeDmaMap({ ...wrap, flags: RW }))).toBe(-75); // unaligned
    expect(container.ioctl(VFIO_IOMMU_MAP_DMA, encodeDmaMap({ ...wrap, flags: 8 }))).toBe(-22); // unknown flag first
  });

  it("unmap-v2: a wrapping UNMAP_DMA is EOVERFLOW and copies nothing back; the top page and a huge size still answer 0", () => {
    for (const sanitizeOverflow of [false, true]) {
      const h = makeHost({ shape: "x86", kernel: { sanitizeOverflow } });
      const { container } = openContainer(h);
      const wrap = encodeDmaUnmap({ iova: 0xfffffffffffff000n, size: 0x2000n });
      const before = wrap.slice();
      expect(container.ioctl(VFIO_IOMMU_UNMAP_DMA, wrap)).toBe(sanitizeOverflow ? -75 : -22);
      expect(wrap).toEqual(before);
      expect(container.ioctl(VFIO_IOMMU_UNMAP_DMA, encodeDmaUnmap({ iova: 0xfffffffffffff000n, size: 0x1000n }))).toBe(
        0,
      );
      expect(container.ioctl(VFIO_IOMMU_UNMAP_DMA, encodeDmaUnmap({ iova: 0n, size: 0xfffffffffffff000n }))).toBe(0);
    }
  });

  it("DIRTY_PAGES GET_BITMAP: a wrap is EOVERFLOW, and a range ending exactly at 2^64 is no longer refused", () => {
    for (const sanitizeOverflow of [false, true]) {
      const h = makeHost({ shape: "x86", kernel: { sanitizeOverflow } });
      h.proc.mmap({ start: 0x7000_0000_0000n, size: 0x10000n, name: "bitmap" });
      const { container } = openContainer(h);
      expect(container.ioctl(VFIO_IOMMU_DIRTY_PAGES, encodeDirtyPages(VFIO_IOMMU_DIRTY_PAGES_FLAG_START))).toBe(0);
      const get = (iova: bigint, size: bigint): number =>
        container.ioctl(
          VFIO_IOMMU_DIRTY_PAGES,
          encodeDirtyPages(VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, {
            iova,
            size,
            bitmap: { pgsize: PAGE_SIZE, size: 8n, data: 0x7000_0000_0000n },
          }),
        );
      expect(get(0xfffffffffffff000n, 0x2000n)).toBe(sanitizeOverflow ? -75 : -22);
      expect(get(0xfffffffffffff000n, 0x1000n)).toBe(sanitizeOverflow ? 0 : -22);
      expect(get(0x100000n, 0x1000n)).toBe(0);
    }
  });
});

describe("defaults", () => {
  it("are Linux 6.1's answers, frozen", () => {
    expect(TYPE1_KERNEL_DEFAULTS).toEqual({
      alignCapabilities: false,
      longtermPinUnshare: false,
      nestingIommu: true,
      sanitizeOverflow: false,
      unmapToAddressLimit: false,
    });
    expect(Object.isFrozen(TYPE1_KERNEL_DEFAULTS)).toBe(true);
    expect(makeHost().vfio.kernel).toEqual(TYPE1_KERNEL_DEFAULTS);
  });
});

/**
 * The same rules against the recorded transcripts themselves (@iommu-sim/conformance): each kernel's GET_INFO
 * bytes at every argsz, its MAP_DMA argument errnos and its CHECK_EXTENSION answers, with that kernel's type1
 * options (the test's own version → options table; the product's one table is built above this package).
 */
describe("the options against the 6.1, 6.12 and 7.3 transcripts", () => {
  const OPTIONS: Record<string, Partial<Type1KernelOptions>> = {
    "linux-6.1": {},
    "linux-6.12": { alignCapabilities: true, longtermPinUnshare: true },
    "linux-7.3": { alignCapabilities: true, longtermPinUnshare: true, nestingIommu: false, sanitizeOverflow: true },
  };
  const fixture = (set: string, arch: Arch, name: string) => readRecords({ set, arch, name });
  const num = (x: unknown): bigint => BigInt(x as string);

  describe.each(Object.keys(OPTIONS))("%s", (set) => {
    it.each(ARCHES)("%s info-argsz: every GET_INFO's return, argsz and bytes", (arch) => {
      const h = makeHost({ shape: arch, kernel: OPTIONS[set]! });
      const { container } = openContainer(h);
      const recs = fixture(set, arch, "info-argsz").filter((r) => r.cmd === "info");
      expect(recs.length).toBeGreaterThan(10);
      for (const r of recs) {
        const argsz = Number(num(r.argsz_in));
        const fill = r.fill === undefined ? 0 : Number(num(r.fill));
        const b = infoBuffer(argsz, fill);
        const ret = container.ioctl(VFIO_IOMMU_GET_INFO, b);
        const raw = r.raw as string;
        const got = toHex(b);
        expect({ argsz, ret, head: got.slice(0, raw.length) }).toEqual({
          argsz,
          ret: r.ret === 0 ? 0 : -22,
          head: raw,
        });
        expect(got.slice(raw.length)).toBe(
          fill
            .toString(16)
            .padStart(2, "0")
            .repeat((got.length - raw.length) / 2),
        );
      }
    });

    it.each(ARCHES)("%s map-errors-args: every MAP_DMA's errno; basic: CHECK_EXTENSION", (arch) => {
      const h = makeHost({ shape: arch, kernel: OPTIONS[set]! });
      const { container } = openContainer(h);
      const maps = fixture(set, arch, "map-errors-args").filter((r) => r.cmd === "map");
      expect(maps.length).toBeGreaterThan(10);
      for (const r of maps) {
        const flags = (r.prot as string).includes("r") ? R : 0;
        const map = encodeDmaMap({
          argsz: 32,
          flags: flags | ((r.prot as string).includes("w") ? W : 0),
          vaddr: num(r.vaddr),
          iova: num(r.iova),
          size: num(r.size),
        });
        const ret = container.ioctl(VFIO_IOMMU_MAP_DMA, map);
        expect({ r, errno: ret < 0 ? errnoName(ret) : null }).toEqual({ r, errno: r.ret === 0 ? null : r.errno });
      }
      const ext = fixture(set, arch, "basic").find((r) => r.cmd === "ext")!;
      expect(container.ioctl(VFIO_CHECK_EXTENSION, VFIO_TYPE1_NESTING_IOMMU)).toBe(ext.type1_nesting);
    });

    it.each(ARCHES)("%s map-unmap-happy: VmLck after its six maps (the `r` map of untouched memory)", (arch) => {
      const h = makeHost({ shape: arch, kernel: OPTIONS[set]! });
      const { container } = openContainer(h);
      for (const [iova, size, flags, off] of HAPPY_MAPS) container.mapDma({ vaddr: BASE + off, iova, size, flags });
      const locked = fixture(set, arch, "map-unmap-happy").find((r) => r.cmd === "locked")!;
      expect(h.proc.vmLckKb).toBe(locked.vmlck_kb);
    });
  });
});

describe("unmapToAddressLimit (vfio/type1: handle DMA map/unmap up to the addressable limit, ef270ec44637, 6.18)", () => {
  // v1-unmap-edges line 12: `unmap 0x1000 0xfffffffffffff000` with a mapping at 0x200000 (6.1/6.12: 0 bytes, 7.3: 0x1000)
  it.each([
    [VFIO_TYPE1_IOMMU, "v1"],
    [VFIO_TYPE1v2_IOMMU, "v2"],
  ] as const)("a %s UNMAP_DMA reaching exactly 2^64 finds its mappings only with the option (%s)", (type, _label) => {
    for (const unmapToAddressLimit of [false, true]) {
      const h = makeHost({ shape: "x86", kernel: { unmapToAddressLimit } });
      const { container } = openContainer(h, type);
      const map = encodeDmaMap({ argsz: 32, flags: RW, vaddr: BASE, iova: 0x200000n, size: 0x1000n });
      expect(container.ioctl(VFIO_IOMMU_MAP_DMA, map)).toBe(0);
      const unmap = encodeDmaUnmap({ iova: 0x1000n, size: 0xfffffffffffff000n });
      expect(container.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap)).toBe(0);
      const unmapped = new DataView(unmap.buffer).getBigUint64(16, true);
      expect(unmapped).toBe(unmapToAddressLimit ? 0x1000n : 0n);
      expect(type1State(container.backend!).dmas.count).toBe(unmapToAddressLimit ? 0 : 1);
      expect(h.proc.vmLckKb).toBe(unmapToAddressLimit ? 0 : 4);
    }
  });
});
