/** The process model: vmas, lazy faults, the zero page and CoW, user copies, hugetlb backing, page sources. */
import { isErrno, PAGE_SIZE, PageAllocator, PhysicalMemory, SZ_2M } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { lazyPageSource, Process, pageAllocatorSource } from "./process.js";

function proc(): Process {
  const memory = new PhysicalMemory();
  memory.addRam(0n, 1n << 36n);
  return new Process({ pages: lazyPageSource(1n << 30n, 1n << 34n), memory });
}

const errno = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    if (isErrno(e)) return e.code;
    throw e;
  }
  return undefined;
};

describe("Process", () => {
  it("mmap: EINVAL for unaligned or empty ranges, EEXIST for overlaps (MAP_FIXED_NOREPLACE)", () => {
    const p = proc();
    p.mmap({ start: 0x10000n, size: 0x4000n });
    expect(errno(() => p.mmap({ start: 0x12000n, size: 0x4000n }))).toBe("EEXIST");
    expect(errno(() => p.mmap({ start: 0x20800n, size: 0x1000n }))).toBe("EINVAL");
    expect(errno(() => p.mmap({ start: 0x20000n, size: 0n }))).toBe("EINVAL");
    expect(errno(() => p.mmap({ start: 0x20_1000n, size: SZ_2M, kind: "hugetlb-2M" }))).toBe("EINVAL");
    expect(p.vmaAt(0x13fffn)?.start).toBe(0x10000n);
    expect(p.vmaAt(0x14000n)).toBeUndefined();
  });

  it("a read of untouched anonymous memory is the zero page; a write faults a private page in (CoW)", () => {
    const p = proc();
    p.mmap({ start: 0x10000n, size: 0x2000n });
    expect(p.faultIn(0x10000n, false, 2)).toEqual({ phys: p.zeroPage, pages: 1, reserved: true });
    const w = p.faultIn(0x10000n, true, 2);
    expect(w.reserved).toBe(false);
    expect(w.phys).not.toBe(p.zeroPage);
    expect(p.faultIn(0x10000n, false, 1).phys).toBe(w.phys);
  });

  it("hugetlb pages are faulted in whole and give runs up to the end of the huge page", () => {
    const p = proc();
    p.mmap({ start: 0x4000_0000n, size: 2n * SZ_2M, kind: "hugetlb-2M" });
    const seg = p.faultIn(0x4000_0000n + 0x1000n, false, 10_000);
    expect(seg.pages).toBe(511);
    expect(seg.phys % PAGE_SIZE).toBe(0n);
    expect((seg.phys - 0x1000n) % SZ_2M).toBe(0n);
  });

  it("readUser/writeUser round-trip across pages; EFAULT for holes and read-only vmas, nothing written", () => {
    fc.assert(
      fc.property(fc.nat(0x2fff), fc.uint8Array({ minLength: 1, maxLength: 0x1800 }), (off, bytes) => {
        const p = proc();
        p.mmap({ start: 0x10000n, size: 0x4000n });
        const at = 0x10000n + BigInt(off);
        if (off + bytes.length > 0x4000) {
          expect(errno(() => p.writeUser(at, bytes))).toBe("EFAULT");
          return;
        }
        p.writeUser(at, bytes);
        expect(p.readUser(at, bytes.length)).toEqual(bytes);
      }),
      { numRuns: 50, seed: 3 },
    );
    const p = proc();
    p.mmap({ start: 0x10000n, size: 0x1000n, writable: false });
    expect(errno(() => p.writeUser(0x10000n, new Uint8Array(4)))).toBe("EFAULT");
    expect(p.readUser(0x10000n, 4)).toEqual(new Uint8Array(4));
  });

  it("core's PageAllocator works as a page source (zeroed frames)", () => {
    const memory = new PhysicalMemory();
    memory.addRam(0n, 1n << 30n);
    const pa = new PageAllocator(memory, 1n << 24n, 1n << 24n);
    const p = new Process({ pages: pageAllocatorSource(pa), memory });
    p.mmap({ start: 0x4000_0000n, size: SZ_2M, kind: "hugetlb-2M" });
    expect(p.faultIn(0x4000_0000n, true, 512).pages).toBe(512);
    expect(pa.framesInUse).toBe(1 + 512);
  });
});
