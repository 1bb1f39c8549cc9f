/**
 * MAP_DMA / UNMAP_DMA through the byte ioctls, on the IOMMU core with the fake arm64-shaped driver (one
 * page-table record per map_pages call, so the driver's cost is per call):
 *  - 1 TiB of guest RAM backed by 1 GiB pages (target ≤ 10 ms), 64 GiB by 2 MiB pages (≤ 100 ms);
 *  - 65,535 MAP_DMA of 4 KiB, then one UNMAP_ALL (≤ 1 s together);
 *  - the reference: the same memory pinned and mapped 4 KiB at a time (disable_hugepages), measured on
 *    256 MiB and scaled per page, printed as a ratio after the run.
 * Cost follows mappings and pinned runs (and backing pages walked), not bytes.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { SZ_1G } from "@iommu/core";
import { encodeDmaMap, encodeDmaUnmap, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA } from "@vfio/uapi";
import { afterAll, bench, describe } from "vitest";
import type { Container } from "./container.js";
import { makeHost, openContainer } from "./test-support/hosts.js";
import { type1State } from "./testing.js";

const TIB = 1n << 40n;
const VA = 0x4000_0000_0000n;
const IOVA = 1n << 40n;

interface Rig {
  container: Container;
  /** Pinned runs and driver page-table records of the current mappings. */
  shape(): string;
  map(size: bigint): void;
  unmapAll(): void;
}

function rig(kind: "hugetlb-1G" | "hugetlb-2M" | "anon", size: bigint, disableHugepages = false): Rig {
  const h = makeHost({ shape: "arm64", params: { disableHugepages } });
  h.proc.mmap({ start: VA, size, kind });
  const { container } = openContainer(h);
  return {
    container,
    shape() {
      const runs = type1State(container.backend!)
        .dmas.all()
        .reduce((n, d) => n + d.runs.length, 0);
      const recs = [...h.fake!.domains].reduce((n, d) => n + d.recs.length, 0);
      return `${runs} pinned run(s), ${recs} map_pages record(s)`;
    },
    map(sz: bigint) {
      const r = container.ioctl(
        VFIO_IOMMU_MAP_DMA,
        encodeDmaMap({ argsz: 32, flags: 3, vaddr: VA, iova: IOVA, size: sz }),
      );
      if (r !== 0) throw new Error(`MAP_DMA failed: ${r}`);
    },
    unmapAll() {
      const r = container.ioctl(VFIO_IOMMU_UNMAP_DMA, encodeDmaUnmap({ flags: 2 }));
      if (r !== 0) throw new Error(`UNMAP_DMA failed: ${r}`);
    },
  };
}

// A collectable heap for the memory figures (the flag takes effect for contexts created after it).
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const heapUsed = (): number => {
  gc();
  return process.memoryUsage().heapUsed;
};

const samples = new Map<string, number[]>();
const heap = new Map<string, number>();
/** Time spent in the forced GC inside a timed section (subtracted from it). */
let gcPause = 0;
const shapes = new Map<string, string>();
function timed(name: string, fn: () => void): void {
  gcPause = 0;
  const t0 = performance.now();
  fn();
  const dt = performance.now() - t0 - gcPause;
  const l = samples.get(name) ?? [];
  l.push(dt);
  samples.set(name, l);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;

const tib1g = rig("hugetlb-1G", TIB);
const g64 = rig("hugetlb-2M", 64n * SZ_1G);
const small = rig("anon", 65_535n * 4096n);
const ref = rig("hugetlb-2M", 256n << 20n, true);

describe("type1 MAP_DMA / UNMAP_DMA", () => {
  bench(
    "MAP_DMA 1 TiB (1 GiB pages) + UNMAP_ALL",
    () => {
      timed("1TiB/1G map", () => tib1g.map(TIB));
      shapes.set("1TiB/1G", tib1g.shape());
      timed("1TiB/1G unmap", () => tib1g.unmapAll());
    },
    { iterations: 20, time: 0 },
  );

  bench(
    "MAP_DMA 64 GiB (2 MiB pages) + UNMAP_ALL",
    () => {
      timed("64GiB/2M map", () => g64.map(64n * SZ_1G));
      shapes.set("64GiB/2M", g64.shape());
      timed("64GiB/2M unmap", () => g64.unmapAll());
    },
    { iterations: 10, time: 0 },
  );

  bench(
    "65,535 × MAP_DMA 4 KiB + UNMAP_ALL",
    () => {
      const before = heapUsed();
      timed("65535x4K map+unmap", () => {
        const c = small.container;
        // One argument struct, rewritten per call, as a VMM does.
        const b = encodeDmaMap({ argsz: 32, flags: 3, vaddr: VA, iova: IOVA, size: 4096n });
        const v = new DataView(b.buffer);
        for (let i = 0n; i < 65_535n; i++) {
          v.setBigUint64(8, VA + i * 4096n, true);
          v.setBigUint64(16, IOVA + i * 4096n, true);
          if (c.ioctl(VFIO_IOMMU_MAP_DMA, b) !== 0) throw new Error("map");
        }
        const after = performance.now();
        heap.set("65535x4K", heapUsed() - before);
        gcPause += performance.now() - after;
        small.unmapAll();
      });
    },
    { iterations: 5, warmupIterations: 1, time: 0 },
  );

  bench(
    "reference: 256 MiB pinned and mapped 4 KiB at a time + UNMAP_ALL",
    () => {
      timed("ref 256MiB/4K map", () => ref.map(256n << 20n));
      ref.unmapAll();
    },
    { iterations: 5, time: 0 },
  );
});

afterAll(() => {
  const m = (k: string): number => median(samples.get(k) ?? []);
  const refPerPage = m("ref 256MiB/4K map") / 65_536;
  const refFor = (bytes: bigint): number => refPerPage * Number(bytes / 4096n);
  const row = (name: string, key: string, bytes: bigint, target: number, shapeKey: string): string =>
    `${name.padEnd(28)} ${m(key).toFixed(2).padStart(9)} ms (target ≤ ${target} ms; ${(1000 / m(key)).toFixed(0)} ops/s; ${shapes.get(shapeKey)}) — 4 KiB-at-a-time reference ≈ ${refFor(bytes).toFixed(0)} ms, ratio ×${(refFor(bytes) / m(key)).toFixed(0)}`;
  console.log(
    [
      "",
      "type1 MAP_DMA figures (median; fake arm64 driver on the real IOMMU core):",
      row("MAP_DMA 1 TiB / 1 GiB pages", "1TiB/1G map", TIB, 10, "1TiB/1G"),
      `${"  UNMAP_ALL of it".padEnd(28)} ${m("1TiB/1G unmap").toFixed(2).padStart(9)} ms`,
      row("MAP_DMA 64 GiB / 2 MiB pages", "64GiB/2M map", 64n * SZ_1G, 100, "64GiB/2M"),
      `${"  UNMAP_ALL of it".padEnd(28)} ${m("64GiB/2M unmap").toFixed(2).padStart(9)} ms`,
      `${"65,535 × 4 KiB + UNMAP_ALL".padEnd(28)} ${m("65535x4K map+unmap").toFixed(1).padStart(9)} ms (target ≤ 1000 ms; heap +${((heap.get("65535x4K") ?? 0) / 1048576).toFixed(1)} MiB while mapped, ≈${((heap.get("65535x4K") ?? 0) / 65_535).toFixed(0)} B per mapping)`,
      `${"reference 4 KiB at a time".padEnd(28)} ${(refPerPage * 1000).toFixed(2).padStart(9)} µs per page (256 MiB: ${m("ref 256MiB/4K map").toFixed(1)} ms)`,
      "",
    ].join("\n"),
  );
});
