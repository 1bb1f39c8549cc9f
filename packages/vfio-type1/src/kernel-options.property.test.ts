/**
 * Property: the kernel options change exactly what their rule says and nothing else. Random ioctl sequences run on
 * a host with the default options, with every option spelled out at its 6.1 value (identical in every byte), and
 * with one option flipped (differences only on the calls that option's rule covers).
 */
import { U64_MAX } from "@iommu/core";
import {
  encodeDirtyPages,
  encodeDmaMap,
  encodeDmaUnmap,
  infoBuffer,
  toHex,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
} from "@vfio/uapi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Container } from "./container.js";
import { TYPE1_KERNEL_DEFAULTS, type Type1KernelOptions } from "./kernel-options.js";
import { BASE, makeHost, openContainer } from "./test-support/hosts.js";

const BITMAP = 0x7000_0000_0000n;
const TOP = 0xfffffffffffff000n;

type Call =
  | { k: "map"; iova: bigint; size: bigint; vaddr: bigint; flags: number }
  | { k: "unmap"; iova: bigint; size: bigint; all: boolean }
  | { k: "info"; argsz: number }
  | { k: "ext"; ext: number }
  | { k: "dirty"; op: "start" | "stop" }
  | { k: "get"; iova: bigint; size: bigint }
  | { k: "touch"; off: bigint };

const iova = fc.oneof(
  fc.integer({ min: 0, max: 63 }).map((i) => 0x100000n + BigInt(i) * 0x1000n),
  fc.constantFrom(0n, 0x800n, TOP, 0xfffffffffffff800n, 0x7ffffff000n, 0xfee00000n),
);
const size = fc.oneof(
  fc.integer({ min: 1, max: 16 }).map((n) => BigInt(n) * 0x1000n),
  fc.constantFrom(0n, 0x800n, 0x2000n, TOP, 0x10000n),
);
const call: fc.Arbitrary<Call> = fc.oneof(
  fc.record({
    k: fc.constant("map" as const),
    iova,
    size,
    vaddr: fc.oneof(
      fc.integer({ min: 0, max: 255 }).map((i) => BASE + BigInt(i) * 0x1000n),
      fc.constantFrom(BASE + 0x800n, TOP),
    ),
    flags: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({ k: fc.constant("unmap" as const), iova, size, all: fc.boolean() }),
  fc.record({ k: fc.constant("info" as const), argsz: fc.constantFrom(16, 20, 23, 24, 115, 116, 117, 119, 120, 4096) }),
  fc.record({ k: fc.constant("ext" as const), ext: fc.integer({ min: 1, max: 10 }) }),
  fc.record({ k: fc.constant("dirty" as const), op: fc.constantFrom("start" as const, "stop" as const) }),
  fc.record({ k: fc.constant("get" as const), iova, size }),
  fc.record({
    k: fc.constant("touch" as const),
    off: fc.integer({ min: 0, max: 255 }).map((i) => BigInt(i) * 0x1000n),
  }),
);

interface Rec {
  readonly ret: number;
  readonly bytes: string;
}

/** Run the calls through the container's byte interface; one record per call, and VmLck at the end. */
function run(kernel: Partial<Type1KernelOptions> | undefined, calls: readonly Call[]): { recs: Rec[]; vmLck: number } {
  const h = makeHost({ shape: "x86", ...(kernel ? { kernel } : {}) });
  h.proc.mmap({ start: BITMAP, size: 0x10000n, name: "bitmap" });
  const { container } = openContainer(h);
  const recs = calls.map((c) => one(container, h.proc, c));
  return { recs, vmLck: h.proc.vmLckKb };
}

function one(container: Container, proc: { touch(v: bigint, s: bigint): void }, c: Call): Rec {
  let arg: Uint8Array | number;
  let req: number;
  switch (c.k) {
    case "map":
      req = VFIO_IOMMU_MAP_DMA;
      arg = encodeDmaMap({ argsz: 32, flags: c.flags, vaddr: c.vaddr, iova: c.iova, size: c.size });
      break;
    case "unmap":
      req = VFIO_IOMMU_UNMAP_DMA;
      arg = c.all ? encodeDmaUnmap({ flags: VFIO_DMA_UNMAP_FLAG_ALL }) : encodeDmaUnmap({ iova: c.iova, size: c.size });
      break;
    case "info":
      req = VFIO_IOMMU_GET_INFO;
      arg = infoBuffer(c.argsz, 0xa5);
      break;
    case "ext":
      req = VFIO_CHECK_EXTENSION;
      arg = c.ext;
      break;
    case "dirty":
      req = VFIO_IOMMU_DIRTY_PAGES;
      arg = encodeDirtyPages(c.op === "start" ? VFIO_IOMMU_DIRTY_PAGES_FLAG_START : VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
      break;
    case "get":
      req = VFIO_IOMMU_DIRTY_PAGES;
      arg = encodeDirtyPages(VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, {
        iova: c.iova,
        size: c.size,
        bitmap: { pgsize: 0x1000n, size: 0x100n, data: BITMAP },
      });
      break;
    case "touch":
      proc.touch(BASE + c.off, 0x1000n);
      return { ret: 0, bytes: "" };
  }
  const ret = container.ioctl(req, arg);
  return { ret, bytes: arg instanceof Uint8Array ? toHex(arg) : "" };
}

const wraps = (a: bigint, s: bigint): boolean => s > 0n && a + s - 1n > U64_MAX;

/** Which calls each flipped option may answer differently. */
const COVERS: Record<keyof Type1KernelOptions, (c: Call) => boolean> = {
  alignCapabilities: (c) => c.k === "info",
  longtermPinUnshare: () => false, // with CAP_IPC_LOCK only VmLck moves
  nestingIommu: (c) => c.k === "ext" && c.ext === 6,
  sanitizeOverflow: (c) =>
    (c.k === "map" && (wraps(c.iova, c.size) || wraps(c.vaddr, c.size))) ||
    (c.k === "unmap" && !c.all && wraps(c.iova, c.size)) ||
    (c.k === "get" && c.iova + c.size > U64_MAX),
  unmapToAddressLimit: (c) => c.k === "unmap" && !c.all && c.size > 0n && c.iova + c.size === U64_MAX + 1n,
};

const FLIPPED: Record<keyof Type1KernelOptions, Partial<Type1KernelOptions>> = {
  alignCapabilities: { alignCapabilities: true },
  longtermPinUnshare: { longtermPinUnshare: true },
  nestingIommu: { nestingIommu: false },
  sanitizeOverflow: { sanitizeOverflow: true },
  unmapToAddressLimit: { unmapToAddressLimit: true },
};

const calls = fc.array(call, { minLength: 10, maxLength: 40 });

describe("kernel options (fast-check)", () => {
  it("the default options are 6.1's: no options, {} and every option spelled out answer byte for byte alike", () => {
    fc.assert(
      fc.property(calls, (cs) => {
        const base = run(undefined, cs);
        expect(run({}, cs)).toEqual(base);
        expect(run({ ...TYPE1_KERNEL_DEFAULTS }, cs)).toEqual(base);
      }),
      { numRuns: 40, seed: 0x61 },
    );
  });

  it.each(Object.keys(FLIPPED) as (keyof Type1KernelOptions)[])(
    "%s flipped changes only the calls its rule covers",
    (name) => {
      fc.assert(
        fc.property(calls, (cs) => {
          const old = run(undefined, cs);
          const now = run(FLIPPED[name], cs);
          cs.forEach((c, i) => {
            if (!COVERS[name](c)) expect({ i, c: c.k, ...now.recs[i] }).toEqual({ i, c: c.k, ...old.recs[i] });
          });
          if (name === "longtermPinUnshare") expect(now.vmLck).toBeGreaterThanOrEqual(old.vmLck);
          else expect(now.vmLck).toBe(old.vmLck);
        }),
        { numRuns: 40, seed: 0x612 },
      );
    },
  );
});
