import { type Arch, parseScenario, readTranscript } from "@iommu-sim/conformance";
import * as U from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { bitmapBytes, Probe } from "./probe.js";
import type { ProbeSys, SysResult } from "./sys.js";

/** Lines of a linux-6.1 transcript (`x86/dirty.jsonl`), as the kernel's probe printed them. */
const fixtureLines = (p: string): string[] => {
  const [arch, file] = p.split("/") as [Arch, string];
  return readTranscript({ set: "linux-6.1", arch, name: file.replace(/\.jsonl$/, "") })
    .trim()
    .split("\n");
};

type Handler = (fd: number, req: number, arg: bigint, mem: FakeSys) => SysResult;

/** A scripted kernel: flat user memory, fds, and one ioctl handler per test. */
class FakeSys implements ProbeSys {
  readonly mem = new Map<bigint, number>();
  readonly calls: { fd: number; req: number; arg: bigint; bytes: Uint8Array | null }[] = [];
  private heap = 0x7f00_0000_0000n;
  private nextFd = 3;
  constructor(
    private readonly handler: Handler,
    private readonly devs = [{ bdf: "0000:00:01.0", group: 1 }],
    private readonly sizes = new Map<bigint, number>(),
  ) {}
  uname() {
    return { release: "test", version: "#0", machine: "fake" };
  }
  devices() {
    return this.devs;
  }
  pageSize() {
    return 4096;
  }
  mmapAnonymous() {
    return { ret: 0, errno: 0 };
  }
  calloc(len: number) {
    const a = this.heap;
    this.heap += BigInt((len + 4095) & ~4095) + 4096n;
    this.sizes.set(a, len);
    for (let i = 0; i < len; i++) this.mem.set(a + BigInt(i), 0);
    return a;
  }
  free() {}
  peek(addr: bigint, len: number) {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) out[i] = this.mem.get(addr + BigInt(i)) ?? 0;
    return out;
  }
  poke(addr: bigint, bytes: Uint8Array) {
    for (let i = 0; i < bytes.length; i++) this.mem.set(addr + BigInt(i), bytes[i]!);
  }
  read32() {
    return 0;
  }
  write32() {}
  read64() {
    return 0n;
  }
  write64() {}
  open() {
    return { ret: this.nextFd++, errno: 0 };
  }
  close() {
    return { ret: 0, errno: 0 };
  }
  ioctl(fd: number, req: number, arg: bigint) {
    const len = this.sizes.get(arg);
    this.calls.push({ fd, req, arg, bytes: len === undefined ? null : this.peek(arg, len) });
    return this.handler(fd, req, arg, this);
  }
  pread() {
    return { ret: -1, errno: 9, data: new Uint8Array(0) };
  }
  pwrite() {
    return { ret: -1, errno: 9 };
  }
  mmapDevice() {
    return { ret: -1, errno: 9, addr: 0n };
  }
  munmap() {}
  eventfd() {
    return { ret: this.nextFd++, errno: 0 };
  }
  readEventfd() {
    return { ret: -1, errno: 11, value: 0n };
  }
  poll() {
    return { ret: 0, errno: 0 };
  }
  usleep() {}
  readFile() {
    return { ret: -1, errno: 2, data: new Uint8Array(0) };
  }
  readDir() {
    return null;
  }
  dropIpcLockAndSetMemlock() {
    return null;
  }
  kmsg() {
    return [];
  }
}

const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint32(o, true);
const u64 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getBigUint64(o, true);
const hexToBytes = (h: string) => Uint8Array.from(h.match(/../g)!.map((x) => Number.parseInt(x, 16)));

/** Setup answers of a healthy 6.1 host; `body` handles everything else. */
function kernel(body: Handler): Handler {
  return (fd, req, arg, m) => {
    if (req === U.VFIO_GET_API_VERSION) return { ret: 0, errno: 0 };
    if (req === U.VFIO_GROUP_GET_STATUS) {
      m.poke(arg + 4n, new Uint8Array([1, 0, 0, 0]));
      return { ret: 0, errno: 0 };
    }
    if (req === U.VFIO_GROUP_SET_CONTAINER || req === U.VFIO_SET_IOMMU) return { ret: 0, errno: 0 };
    return body(fd, req, arg, m);
  };
}

function run(text: string, h: Handler, devs?: { bdf: string; group: number }[]): { out: string[]; sys: FakeSys } {
  const sys = new FakeSys(kernel(h), devs);
  return { out: new Probe(sys, parseScenario(text)).run(), sys };
}

describe("probe setup and framing", () => {
  it("prints hello, setup, the body and done, and opens/attaches group 0 then SET_IOMMU(v2)", () => {
    const { out, sys } = run("platform x86-q35-vtd\n---\n", () => ({ ret: 0, errno: 0 }));
    expect(out).toEqual([
      '{"cmd":"hello","kernel":"test","kernel_version":"#0","machine":"fake","platform":"x86-q35-vtd","group":1,"device":"0000:00:01.0","iommu":"type1v2","params":"","base":"0x100000000000"}',
      '{"cmd":"setup","api_version":0,"group_status_ret":0,"group_flags":"0x1","iommu":"type1v2","ret":0}',
      '{"cmd":"done"}',
    ]);
    expect(sys.calls.map((c) => c.req)).toEqual([
      U.VFIO_GET_API_VERSION,
      U.VFIO_GROUP_GET_STATUS,
      U.VFIO_GROUP_SET_CONTAINER,
      U.VFIO_SET_IOMMU,
    ]);
    expect(sys.calls[3]!.arg).toBe(BigInt(U.VFIO_TYPE1v2_IOMMU));
    // GROUP_SET_CONTAINER gets a pointer to the container fd (3, the first open)
    expect(u32(sys.calls[2]!.bytes!, 0)).toBe(3);
  });
  it("stops after a failing setup step with the step's name, then done", () => {
    const sys = new FakeSys((_fd, req) =>
      req === U.VFIO_SET_IOMMU
        ? { ret: -1, errno: 19 }
        : req === U.VFIO_GROUP_GET_STATUS
          ? { ret: 0, errno: 0 }
          : { ret: 0, errno: 0 },
    );
    const out = new Probe(sys, parseScenario("iommu type1\n---\next\n")).run();
    expect(out[1]).toBe(
      '{"cmd":"setup","api_version":0,"group_status_ret":0,"group_flags":"0x0","step":"group not viable"}',
    );
    const { out: out2 } = run("iommu type1\n---\next\n", () => ({ ret: -1, errno: 19 }));
    expect(out2.slice(1)).toEqual([
      '{"cmd":"setup","api_version":0,"group_status_ret":0,"group_flags":"0x1","iommu":"type1","ret":0}',
      '{"cmd":"ext","type1":-1,"type1_errno":"ENODEV","type1v2":-1,"type1v2_errno":"ENODEV","type1_nesting":-1,"type1_nesting_errno":"ENODEV","dma_cc":-1,"dma_cc_errno":"ENODEV","unmap_all":-1,"unmap_all_errno":"ENODEV","update_vaddr":-1,"update_vaddr_errno":"ENODEV","noiommu":-1,"noiommu_errno":"ENODEV"}',
      '{"cmd":"done"}',
    ]);
  });
  it("reports header errors before hello and body errors in place", () => {
    const { out } = run("platform p\nbogus 1\n---\nmap 0x1000\n", () => ({ ret: 0, errno: 0 }));
    expect(out[0]).toBe('{"cmd":"error","line":2,"text":"bogus 1","why":"unknown header line"}');
    expect(out[3]).toBe(
      '{"cmd":"error","line":4,"text":"map 0x1000","why":"usage: map IOVA SIZE PROT [vaddr=+OFF|vaddr=abs:ADDR]"}',
    );
  });
  it("with several devices lists them in hello and opens the other groups at setup", () => {
    const devs = [
      { bdf: "0000:00:01.0", group: 0 },
      { bdf: "0000:00:02.0", group: 1 },
    ];
    const { out } = run("devices 2\nmemlock 0x2000\n---\n", () => ({ ret: 0, errno: 0 }), devs);
    expect(out[0]).toContain(
      '"devices_requested":2,"devices":[{"dev":0,"device":"0000:00:01.0","group":0},{"dev":1,"device":"0000:00:02.0","group":1}],"memlock":"0x2000","base"',
    );
    expect(out[1]).toBe(
      '{"cmd":"setup","api_version":0,"group_status_ret":0,"group_flags":"0x1","iommu":"type1v2","other_groups":[{"dev":1,"device":"0000:00:02.0","group":1,"status_ret":0,"flags":"0x1"}],"memlock":"0x2000","cap_ipc_lock":0,"ret":0}',
    );
  });
});

describe("probe argument bytes", () => {
  it("MAP_DMA: 32-byte struct argsz, flags, vaddr, iova, size", () => {
    const { out, sys } = run("---\nmap 0x100000 0x2000 r vaddr=+0x10000\nmapv 0x5000 0x1000\n", (_f, req) =>
      req === U.VFIO_IOMMU_MAP_DMA ? { ret: -1, errno: 17 } : { ret: 0, errno: 0 },
    );
    const maps = sys.calls.filter((c) => c.req === U.VFIO_IOMMU_MAP_DMA).map((c) => c.bytes!);
    expect(maps[0]!.length).toBe(32);
    expect([u32(maps[0]!, 0), u32(maps[0]!, 4), u64(maps[0]!, 8), u64(maps[0]!, 16), u64(maps[0]!, 24)]).toEqual([
      32,
      1,
      0x100000010000n,
      0x100000n,
      0x2000n,
    ]);
    expect(u32(maps[1]!, 4)).toBe(4);
    expect(out[2]).toBe(
      '{"cmd":"map","iova":"0x100000","size":"0x2000","prot":"r","vaddr":"0x100000010000","ret":-1,"errno":"EEXIST"}',
    );
    expect(out[3]).toBe(
      '{"cmd":"mapv","iova":"0x5000","size":"0x1000","vaddr":"0x100000000000","ret":-1,"errno":"EEXIST"}',
    );
  });
  it("UNMAP_DMA with a dirty bitmap: 48 bytes with a user pointer; unmapped and bitmap read back", () => {
    const { out, sys } = run("---\nunmap 0x100000 0x4000 dirty 0x1000\n", (_f, req, arg, m) => {
      if (req !== U.VFIO_IOMMU_UNMAP_DMA) return { ret: 0, errno: 0 };
      const b = m.peek(arg, 48);
      m.poke(u64(b, 40), new Uint8Array([0x0f]));
      m.poke(arg + 16n, new Uint8Array([0x00, 0x40, 0, 0, 0, 0, 0, 0]));
      return { ret: 0, errno: 0 };
    });
    const b = sys.calls.find((c) => c.req === U.VFIO_IOMMU_UNMAP_DMA)!.bytes!;
    expect([u32(b, 0), u32(b, 4), u64(b, 8), u64(b, 16), u64(b, 24), u64(b, 32)]).toEqual([
      48,
      1,
      0x100000n,
      0x4000n,
      0x1000n,
      8n,
    ]);
    // line 22 of linux-6.1/x86/dirty.jsonl
    expect(out[2]).toBe(fixtureLines("x86/dirty.jsonl")[20]);
  });
  it("GET_INFO: decodes the chain and trims raw exactly as probe.c (fixture bytes in, fixture line out)", () => {
    for (const [file, idx] of [
      ["x86/basic.jsonl", 4],
      ["x86/basic.jsonl", 5],
      ["x86/info-argsz.jsonl", 2],
      ["x86/info-argsz.jsonl", 5],
      ["x86/info-argsz.jsonl", 11],
      ["arm64/info-argsz.jsonl", 14],
    ] as const) {
      const expected = fixtureLines(file)[idx]!;
      const rec = JSON.parse(expected) as { raw: string; ret: number; argsz_in: string; fill?: string };
      const raw = hexToBytes(rec.raw);
      const argsz = Number(rec.argsz_in);
      const scn = `---\ninfo argsz=${argsz}${rec.fill ? ` fill=${rec.fill}` : ""}\n`;
      const { out } = run(scn, (_f, req, arg, m) => {
        if (req !== U.VFIO_IOMMU_GET_INFO) return { ret: 0, errno: 0 };
        if (rec.ret < 0) return { ret: -1, errno: 22 };
        m.poke(arg, raw.subarray(0, argsz < 20 ? 16 : raw.length)); // what the kernel wrote
        return { ret: 0, errno: 0 };
      });
      expect(out[2], `${file}:${idx + 1}`).toBe(expected);
    }
  });
});

describe("bitmapBytes (probe.c bitmap_bytes)", () => {
  it("rounds bits up to u64 words, at least 8 bytes, at most 16 MiB, in u64 arithmetic", () => {
    expect(bitmapBytes(0x4000n, 0x1000n)).toBe(8);
    expect(bitmapBytes(0x102000n, 0x1000n)).toBe(0x28);
    expect(bitmapBytes(0n, 0x1000n)).toBe(8);
    expect(bitmapBytes(0x1000n, 0n)).toBe(8);
    expect(bitmapBytes(1n << 62n, 0x1000n)).toBe(16 << 20);
    // pages + 63 wraps past 2^64 in C: 62 / 64 = 0 → 8
    expect(bitmapBytes((1n << 64n) - 1n, 1n)).toBe(8);
  });
});
