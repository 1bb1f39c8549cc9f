/**
 * vfio_pin_pages_remote's batch (6.1): pin_user_pages_remote pins — and faults in — up to 512 pages before any of
 * them is charged to locked_vm, so an RLIMIT_MEMLOCK failure leaves its whole batch in the process.
 *
 * "A failed operation leaves no trace" holds for what the kernel keeps: mappings, pins, locked_vm and dma_avail
 * are exactly as before the failed MAP_DMA. The pages GUP faulted in are the process's own memory, and they stay,
 * as on Linux: that is what makes a later `r` map of the same range pin real, charged pages.
 */
import { PAGE_SIZE } from "@iommu/core";
import { encodeDmaMap, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_IOMMU_MAP_DMA } from "@vfio/uapi";
import { describe, expect, it } from "vitest";
import { BASE, makeHost, openContainer } from "./test-support/hosts.js";
import { snapshot } from "./testing.js";

const R = VFIO_DMA_MAP_FLAG_READ;
const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

function host(shape: "x86" | "arm64", memlockPages: bigint, params: { disableHugepages?: boolean } = {}) {
  const h = makeHost({ shape, capIpcLock: false, memlockBytes: memlockPages * PAGE_SIZE, params });
  const { container } = openContainer(h);
  const map = (iova: bigint, size: bigint, flags: number, off: bigint): number =>
    container.ioctl(VFIO_IOMMU_MAP_DMA, encodeDmaMap({ argsz: 32, flags, vaddr: BASE + off, iova, size }));
  const faulted = (): number => h.proc.vmaAt(BASE)!.pages.size;
  return { h, container, map, faulted };
}

describe("a pin that fails on RLIMIT_MEMLOCK still leaves its whole batch faulted in", () => {
  it.each(["x86", "arm64"] as const)(
    "%s: memlock 0x1000; map 0x100000 0x10000 rw → ENOMEM; map 0x200000 0x2000 r vaddr=+0x8000 → ENOMEM (as Linux)",
    (shape) => {
      const { h, container, map, faulted } = host(shape, 1n);
      const before = JSON.stringify(snapshot(container));
      expect(map(0x100000n, 0x10000n, RW, 0n)).toBe(-12);
      // The kernel's side is untouched; the process now owns 16 written-to pages (one batch, a write fault each).
      expect(JSON.stringify(snapshot(container))).toBe(before);
      expect(h.proc.lockedVm).toBe(0);
      expect(faulted()).toBe(16);
      // Pages +0x8000 and +0x9000 are real now: the `r` pin charges both, one over the 1-page limit.
      expect(map(0x200000n, 0x2000n, R, 0x8000n)).toBe(-12);
      expect(JSON.stringify(snapshot(container))).toBe(before);
      expect(h.proc.klog.filter((l) => l.includes("RLIMIT_MEMLOCK (4096) exceeded"))).toHaveLength(2);
    },
  );

  it("without the failed pin the same `r` map pins the zero page and succeeds uncharged", () => {
    const { h, map, faulted } = host("x86", 1n);
    expect(map(0x200000n, 0x2000n, R, 0x8000n)).toBe(0);
    expect(h.proc.lockedVm).toBe(0);
    expect(faulted()).toBe(0);
  });

  it("the batch is 512 pages: a failure in the first batch faults in 512 pages, in the second the second too", () => {
    const first = host("x86", 10n);
    expect(first.map(0x100000n, 600n * PAGE_SIZE, RW, 0n)).toBe(-12);
    expect(first.faulted()).toBe(512);
    const second = host("x86", 520n);
    expect(second.map(0x100000n, 600n * PAGE_SIZE, RW, 0n)).toBe(-12);
    expect(second.faulted()).toBe(600);
    expect(second.h.proc.lockedVm).toBe(0);
  });

  it("the batch carries over runs: a later run's failure inside it faults nothing more", () => {
    // Page 300 is touched first, so the batch's fresh frames break contiguity around it: runs 0-299, 300, 301-…
    for (const [limit, faultedAfter] of [
      [500n, 512], // run 3 fails at page 500, still in the first batch
      [600n, 1024], // run 3 fails at page 600: the second batch (512-1023) was pinned before it
    ] as const) {
      const { h, map, faulted } = host("x86", limit);
      h.proc.touch(BASE + 300n * PAGE_SIZE, PAGE_SIZE);
      expect(map(0x100000n, 1024n * PAGE_SIZE, RW, 0n)).toBe(-12);
      expect({ limit, faulted: faulted() }).toEqual({ limit, faulted: faultedAfter });
      expect(h.proc.lockedVm).toBe(0);
    }
  });

  it("disable_hugepages: batches of one page, so only the failing page is faulted in past the limit", () => {
    const { map, faulted } = host("x86", 2n, { disableHugepages: true });
    expect(map(0x100000n, 0x10000n, RW, 0n)).toBe(-12);
    expect(faulted()).toBe(3);
  });
});
