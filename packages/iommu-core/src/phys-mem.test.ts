import { describe, expect, it } from "vitest";
import { PageAllocator, PhysicalMemory } from "./phys-mem.js";

describe("PhysicalMemory", () => {
  it("reads zeros from untouched RAM and keeps what was written, across frames", () => {
    const m = new PhysicalMemory();
    m.addRam(0x4000_0000n, 0x10_0000n);
    expect([...m.read(0x4000_0ffen, 4)]).toEqual([0, 0, 0, 0]);
    m.write(0x4000_0ffen, Uint8Array.of(1, 2, 3, 4));
    expect([...m.read(0x4000_0ffcn, 8)]).toEqual([0, 0, 1, 2, 3, 4, 0, 0]);
    expect(m.residentFrames).toBe(2);
  });

  it("reads all-ones and drops writes where nothing is mapped", () => {
    const m = new PhysicalMemory();
    m.addRam(0x1000n, 0x1000n);
    m.write(0x0n, Uint8Array.of(9, 9));
    expect([...m.read(0xffen, 4)]).toEqual([0xff, 0xff, 0, 0]);
    expect(m.classify(0xffen, 4)).toBe("none");
    expect(m.classify(0x1000n, 0x1000)).toBe("ram");
  });

  it("holds 64-bit values without precision loss", () => {
    const m = new PhysicalMemory();
    m.addRam(0xffff_ffff_f000n, 0x1000n);
    m.write64(0xffff_ffff_f008n, (1n << 64n) - 2n);
    expect(m.read64(0xffff_ffff_f008n)).toBe((1n << 64n) - 2n);
  });

  it("read64/write64 fast paths: wrap values mod 2^64, follow byte writes and removal, skip unaligned and MMIO", () => {
    const m = new PhysicalMemory();
    const ram = m.addRam(0x1000n, 0x2000n);
    m.write64(0x1008n, -1n);
    expect(m.read64(0x1008n)).toBe((1n << 64n) - 1n);
    m.write64(0x1010n, (1n << 64n) + 5n);
    expect(m.read64(0x1010n)).toBe(5n);
    // Same frame, written bytewise: the remembered frame is the one the bytes land in.
    m.write(0x1008n, Uint8Array.of(7, 0, 0, 0, 0, 0, 0, 0));
    expect(m.read64(0x1008n)).toBe(7n);
    // An untouched frame reads 0 and stays untouched; then a write creates it.
    expect(m.read64(0x2000n)).toBe(0n);
    expect(m.residentFrames).toBe(1);
    m.write64(0x2000n, 3n);
    expect(m.read64(0x2000n)).toBe(3n);
    // Unaligned 64-bit accesses take the bytewise path.
    m.write64(0x1004n, 0x1122334455667788n);
    expect(m.read64(0x1004n)).toBe(0x1122334455667788n);
    // Removing the range drops its frames, including the remembered one; a new range reads zeros.
    m.remove(ram);
    expect(m.read64(0x2000n)).toBe((1n << 64n) - 1n);
    m.addRam(0x1000n, 0x2000n);
    expect(m.read64(0x2000n)).toBe(0n);
    // Outside RAM: an MMIO range next door gets the access, not the last RAM range.
    const seen: bigint[] = [];
    m.addMmio(0x3000n, 0x1000n, {
      read: (o) => o,
      write: (o, _s, v) => {
        seen.push(o, v);
      },
    });
    m.write64(0x2ff8n, 1n);
    m.write64(0x3008n, -2n);
    expect(seen).toEqual([8n, (1n << 64n) - 2n]);
    expect(m.read64(0x3010n)).toBe(0x10n);
    expect(m.read64(0x2ff8n)).toBe(1n);
  });

  it("read32/write32 on RAM touch exactly four bytes; the remembered MMIO range is dropped with it", () => {
    const m = new PhysicalMemory();
    m.addRam(0x1000n, 0x1000n);
    m.write64(0x1000n, 0x1111_1111_2222_2222n);
    m.write32(0x1004n, 0xdead_beef);
    m.write32(0x1008n, -1);
    expect(m.read64(0x1000n)).toBe(0xdead_beef_2222_2222n);
    expect(m.read32(0x1004n)).toBe(0xdead_beef);
    expect(m.read32(0x1008n)).toBe(0xffff_ffff);
    expect(m.read32(0x1800n)).toBe(0);
    // Unaligned: bytewise, across the frame end into nothing.
    m.write32(0x1ffen, 0x0403_0201);
    expect([...m.read(0x1ffen, 2)]).toEqual([1, 2]);
    expect(m.read32(0x1ffen)).toBe(0xffff_0201);
    const hits: string[] = [];
    const mmio = m.addMmio(0x4000n, 0xcn, {
      read: (o, s) => {
        hits.push(`r${o}/${s}`);
        return 0x55n;
      },
      write: (o, s, v) => {
        hits.push(`w${o}/${s}=${v}`);
      },
    });
    m.write64(0x4000n, 9n);
    expect(m.read32(0x4008n)).toBe(0x55);
    // With the range remembered, an 8-byte access running past its end still splits: 4 bytes, then nothing.
    expect(m.read64(0x4008n)).toBe(0xffff_ffff_0000_0055n);
    m.remove(mmio);
    expect(m.read64(0x4000n)).toBe((1n << 64n) - 1n);
    m.write32(0x4008n, 1);
    expect(hits).toEqual(["w0/8=9", "r8/4", "r8/4"]);
  });

  it("splits MMIO accesses into naturally aligned pieces and passes the requester id", () => {
    const m = new PhysicalMemory();
    const seen: [bigint, number, bigint, number | undefined][] = [];
    m.addMmio(0x800_0000n, 0x1_0000n, {
      read: (off, size) => BigInt(size) * 0x11n + off,
      write: (off, size, v, attrs) => void seen.push([off, size, v, attrs.requesterId]),
    });
    m.write(0x800_0040n, Uint8Array.of(0x2a, 0, 0, 0), { requesterId: 8 });
    expect(seen).toEqual([[0x40n, 4, 0x2an, 8]]);
    m.write(0x800_0003n, Uint8Array.of(1, 2));
    expect(seen.slice(1).map((s) => s[1])).toEqual([1, 1]);
    expect(m.read32(0x800_0000n)).toBe(0x44);
  });

  it("refuses overlapping ranges", () => {
    const m = new PhysicalMemory();
    m.addRam(0n, 0x2000n);
    expect(() => m.addRam(0x1000n, 0x1000n)).toThrow(RangeError);
  });
});

describe("PageAllocator", () => {
  it("hands out zeroed, aligned frames and reuses freed ones", () => {
    const m = new PhysicalMemory();
    m.addRam(0x10_0000n, 0x10_0000n);
    const pa = new PageAllocator(m, 0x10_0000n, 0x10_0000n);
    const a = pa.alloc();
    m.write64(a, 123n);
    pa.freeFrame(a);
    expect(pa.alloc()).toBe(a);
    expect(m.read64(a)).toBe(0n);
    const four = pa.alloc(4);
    expect(four % 0x4000n).toBe(0n);
    expect(pa.framesInUse).toBe(5);
  });

  it("page_pool_exhaustion_is_enomem: an allocation that does not fit is ENOMEM and changes nothing", () => {
    const m = new PhysicalMemory();
    m.addRam(0x10_0000n, 0x4000n);
    const pa = new PageAllocator(m, 0x10_0000n, 0x4000n);
    const a = pa.alloc(2);
    expect(() => pa.alloc(4)).toThrow(
      expect.objectContaining({ name: "ErrnoError", code: "ENOMEM", op: "alloc_pages" }),
    );
    expect(pa.framesInUse).toBe(2);
    // The failed call kept nothing: the remaining two frames are still there.
    expect(pa.alloc(2)).toBe(a + 0x2000n);
    expect(() => pa.alloc()).toThrow(expect.objectContaining({ code: "ENOMEM" }));
  });
});

describe("PhysicalMemory register fast paths", () => {
  it("serves aligned 32- and 64-bit MMIO accesses as one handler call, unaligned ones in pieces", () => {
    const m = new PhysicalMemory();
    const calls: [string, bigint, number, bigint][] = [];
    m.addMmio(0xfed9_0000n, 0x1000n, {
      read: (off, size) => {
        calls.push(["r", off, size, 0n]);
        return 0x1122_3344_5566_7788n & ((1n << BigInt(8 * size)) - 1n);
      },
      write: (off, size, v) => void calls.push(["w", off, size, v]),
    });
    expect(m.read32(0xfed9_0008n)).toBe(0x5566_7788);
    expect(m.read64(0xfed9_0010n)).toBe(0x1122_3344_5566_7788n);
    m.write32(0xfed9_0018n, 0xdead_beef);
    m.write64(0xfed9_0020n, (1n << 64n) - 1n);
    expect(calls).toEqual([
      ["r", 8n, 4, 0n],
      ["r", 0x10n, 8, 0n],
      ["w", 0x18n, 4, 0xdead_beefn],
      ["w", 0x20n, 8, (1n << 64n) - 1n],
    ]);
    calls.length = 0;
    m.write32(0xfed9_0002n, 0x0102_0304);
    expect(calls.map((c) => c[2])).toEqual([2, 2]);
  });
});
