/**
 * MAP_DMA / UNMAP_DMA through the byte ioctls, on the IOMMU core with the fake arm64-shaped driver (one
 * page-table record per map_pages call, so the driver's cost is per call):
 *  - 1 TiB of guest RAM backed by 1 GiB pages (target ≤ 10 ms), 64 GiB by 2 MiB pages (≤ 100 ms);
 *  - 65,535 MAP_DMA of 4 KiB, then one UNMAP_ALL (≤ 1 s together);
 *  - the reference: the same memory pinned and mapped 4 KiB at a time (disable_hugepages), measured on
 *    256 MiB and scaled per page, printed as a ratio after the run.
 * Cost follows mappings and pinned runs (and backing pages walked), not bytes.
 */
import { afterAll, bench, describe } from "vitest";
import type { Container } from "./container.js";
import { SZ_1G, SZ_2M } from "./process.js";
import { makeHost, openContainer } from "./test-support/hosts.js";
import { encodeDmaMap, encodeDmaUnmap, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA } from "./uapi.js";

const TIB = 1n << 40n;
const VA = 0x4000_0000_0000n;
const IOVA = 1n << 40n;

interface Rig {
  container: Container;
  map(size: bigint): void;
  unmapAll(): void;
}

function rig(kind: "hugetlb-1G" | "hugetlb-2M" | "anon", size: bigint, disableHugepages = false): Rig {
  const h = makeHost({ shape: "arm64", params: { disableHugepages } });
  h.proc.mmap({ start: VA, size, kind });
  const { container } = openContainer(h);
  return {
    container,
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

const samples = new Map<string, number[]>();
const heap = new Map<string, number>();
function timed(name: string, fn: () => void): void {
  const t0 = performance.now();
  fn();
  const dt = performance.now() - t0;
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
      const before = process.memoryUsage().heapUsed;
      timed("1TiB/1G map", () => tib1g.map(TIB));
      heap.set("1TiB/1G", process.memoryUsage().heapUsed - before);
      timed("1TiB/1G unmap", () => tib1g.unmapAll());
    },
    { iterations: 20, time: 0 },
  );

  bench(
    "MAP_DMA 64 GiB (2 MiB pages) + UNMAP_ALL",
    () => {
      const before = process.memoryUsage().heapUsed;
      timed("64GiB/2M map", () => g64.map(64n * SZ_1G));
      heap.set("64GiB/2M", process.memoryUsage().heapUsed - before);
      timed("64GiB/2M unmap", () => g64.unmapAll());
    },
    { iterations: 10, time: 0 },
  );

  bench(
    "65,535 × MAP_DMA 4 KiB + UNMAP_ALL",
    () => {
      const before = process.memoryUsage().heapUsed;
      timed("65535x4K map+unmap", () => {
        const c = small.container;
        for (let i = 0n; i < 65_535n; i++) {
          const b = encodeDmaMap({ argsz: 32, flags: 3, vaddr: VA + i * 4096n, iova: IOVA + i * 4096n, size: 4096n });
          if (c.ioctl(VFIO_IOMMU_MAP_DMA, b) !== 0) throw new Error("map");
        }
        heap.set("65535x4K", process.memoryUsage().heapUsed - before);
        small.unmapAll();
      });
    },
    { iterations: 3, time: 0 },
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
  const row = (name: string, key: string, bytes: bigint, target: number, heapKey: string): string =>
    `${name.padEnd(28)} ${m(key).toFixed(2).padStart(9)} ms (target ≤ ${target} ms; ${(1000 / m(key)).toFixed(0)} ops/s; heap +${((heap.get(heapKey) ?? 0) / 1024).toFixed(0)} KiB) — 4 KiB-at-a-time reference ≈ ${refFor(bytes).toFixed(0)} ms, ratio ×${(refFor(bytes) / m(key)).toFixed(0)}`;
  console.log(
    [
      "",
      "type1 MAP_DMA figures (median; fake arm64 driver on the real IOMMU core):",
      row("MAP_DMA 1 TiB / 1 GiB pages", "1TiB/1G map", TIB, 10, "1TiB/1G"),
      `${"  UNMAP_ALL of it".padEnd(28)} ${m("1TiB/1G unmap").toFixed(2).padStart(9)} ms`,
      row("MAP_DMA 64 GiB / 2 MiB pages", "64GiB/2M map", 64n * SZ_1G, 100, "64GiB/2M"),
      `${"  UNMAP_ALL of it".padEnd(28)} ${m("64GiB/2M unmap").toFixed(2).padStart(9)} ms`,
      `${"65,535 × 4 KiB + UNMAP_ALL".padEnd(28)} ${m("65535x4K map+unmap").toFixed(1).padStart(9)} ms (target ≤ 1000 ms; heap +${((heap.get("65535x4K") ?? 0) / 1048576).toFixed(1)} MiB for the mappings)`,
      `${"reference 4 KiB at a time".padEnd(28)} ${(refPerPage * 1000).toFixed(2).padStart(9)} µs per page (256 MiB: ${m("ref 256MiB/4K map").toFixed(1)} ms)`,
      "",
    ].join("\n"),
  );
});
