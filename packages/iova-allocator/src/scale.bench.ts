import v8 from "node:v8";
import vm from "node:vm";
import { bench, describe } from "vitest";
import { IovaDomain } from "./iova-domain.js";

// Memory per live range and alloc latency with 1M live ranges, against the same engine at 1k live ranges (the
// reference walk cannot even build 1M ranges in reasonable time). Figures are recorded in README.md.

const G = 4096;

// ---- scale: 1M live ranges ---------------------------------------------------------------------------------

const SCALE = 1_000_000;

/** A real gc() without --expose-gc: flip the V8 flag at run time and fetch gc from a fresh context. */
function getGc(): () => void {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

function memory(gc: () => void): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function buildLive(n: number): IovaDomain {
  const d = new IovaDomain({ granule: G, startPfn: 1 });
  // Alternate sizes 1 and 2 at 64-bit limits so both hints and gaps vary; keep only the domain.
  for (let i = 0; i < n; i++) d.alloc(1 + (i & 1), 2 ** 40, false);
  return d;
}

const gc = getGc();
const before = memory(gc);
const big = buildLive(SCALE);
const after = memory(gc);
const small = buildLive(1000);
console.log(
  `[scale] ${SCALE} live ranges: ${((after - before) / SCALE).toFixed(1)} bytes per live range ` +
    `(heap + array buffers after gc; node arrays ${(big.treeBytes / SCALE).toFixed(1)} B/range, capacity included)`,
);

function allocFree(d: IovaDomain) {
  let k = 0;
  return () => {
    for (let i = 0; i < 1000; i++) {
      const r = d.alloc(1 + (k++ & 3), 2 ** 40, true)!;
      d.free(r.pfnLo);
    }
  };
}

describe("scale: alloc + free (1000 pairs per iteration) with 1M vs 1k live ranges", () => {
  bench("IovaDomain, 1M live", allocFree(big), { time: 1500 });
  bench("IovaDomain, 1k live", allocFree(small), { time: 1500 });
});
