import v8 from "node:v8";
import vm from "node:vm";
import { bench, describe } from "vitest";
import { IovaDomain } from "./iova-domain.js";
import { ReferenceIovaDomain } from "./testing/linux-iova-reference.js";

// Each group runs the same workload on the engine and on the linear reference walk (Linux's algorithm) in this
// process; vitest prints "N times faster than" between the two. Figures are recorded in README.md.

type Domain = IovaDomain | ReferenceIovaDomain;
const G = 4096;
const TOP32 = 2 ** 20 - 1;

/** Deterministic sizes 1..32 (a small LCG; no Math.random). */
function sizes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = 1 + ((x >>> 16) % 32);
  }
  return out;
}

// ---- churn: allocFast/freeFast of 1-32 granule ranges with 256 in flight (a network driver's pattern) --------

const CHURN_OPS = 20_000; // alloc + free pairs per bench iteration
const churnSizes = sizes(4096);

function churner(make: () => Domain) {
  const d = make();
  const ring = new Float64Array(256);
  const ringSize = new Uint8Array(256);
  let k = 0;
  for (let i = 0; i < 256; i++) {
    ring[i] = d.allocFast(churnSizes[i]!, TOP32, true);
    ringSize[i] = churnSizes[i]!;
  }
  return () => {
    for (let i = 0; i < CHURN_OPS; i++) {
      const slot = k & 255;
      d.freeFast(ring[slot]!, ringSize[slot]!);
      const s = churnSizes[k & 4095]!;
      ring[slot] = d.allocFast(s, TOP32, true);
      ringSize[slot] = s;
      k++;
    }
  };
}

describe(`churn: allocFast/freeFast, 1-32 granules, 256 live (${2 * CHURN_OPS} ops per iteration)`, () => {
  bench(
    "IovaDomain",
    churner(() => new IovaDomain({ granule: G, startPfn: 1 })),
    { time: 1500 },
  );
  bench(
    "reference walk",
    churner(() => new ReferenceIovaDomain({ granule: G, startPfn: 1 })),
    { time: 1500 },
  );
});

// ---- fragmentation: 100k long-lived 1-granule ranges with 1-granule holes below the hint ----------------------

const FRAG_LIVE = 100_000;
const fragOpts = { granule: G, startPfn: 1 };

/** 200k single pfns top-down, every other one freed: 100k live ranges, 100k one-pfn holes, hints on the anchor. */
function fragmentedEngine(): IovaDomain {
  const d = new IovaDomain(fragOpts);
  for (let i = 0; i < 2 * FRAG_LIVE; i++) d.alloc(1, TOP32, false);
  for (let i = 0; i < 2 * FRAG_LIVE; i += 2) d.free(TOP32 - i);
  return d;
}

function fragmentedReference(engine: IovaDomain): ReferenceIovaDomain {
  const h = engine.hints();
  if (h.cached !== null || h.cached32 !== null || h.max32AllocSize !== engine.dma32bitPfn)
    throw new Error("fragmentation setup: expected both hints on the anchor");
  return ReferenceIovaDomain.withRanges(fragOpts, [...engine]);
}

function fragmentation(d: Domain) {
  return () => {
    // The top pfn is free: this lands there and becomes the 32-bit hint.
    const t = d.alloc(1, TOP32, false)!;
    // A 2-granule request fits none of the holes: Linux walks from the hint past all 100k ranges.
    const r = d.alloc(2, TOP32, false)!;
    d.free(r.pfnLo);
    d.free(t.pfnLo); // the hint goes back to the anchor: the next iteration searches again
  };
}

const fragEngine = fragmentedEngine();
const fragRef = fragmentedReference(fragEngine);

describe(`fragmentation: alloc that must search past ${FRAG_LIVE} live ranges`, () => {
  bench("IovaDomain", fragmentation(fragEngine), { time: 1500 });
  bench("reference walk", fragmentation(fragRef), { time: 1500, iterations: 5 });
});

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
    `(heap + array buffers after gc; node arrays ${(big.treeBytes / SCALE).toFixed(1)} B/range at capacity ${big.treeBytes / 58})`,
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
