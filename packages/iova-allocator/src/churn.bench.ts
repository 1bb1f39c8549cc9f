import { bench, describe } from "vitest";
import { IovaDomain } from "./iova-domain.js";
import { ReferenceIovaDomain } from "./testing/linux-iova-reference.js";

// The same workload on the engine and on the linear reference walk (Linux's algorithm) in this process; vitest
// prints "N times faster than" between the two. Figures are recorded in README.md.

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

/**
 * One churn loop per implementation (generated from the same source text), so each call site stays monomorphic:
 * a shared closure would make V8 see both classes at `d.freeFast` and slow both down.
 */
const loopSource = `
  const ring = new Float64Array(256);
  const ringSize = new Uint8Array(256);
  let k = 0;
  for (let i = 0; i < 256; i++) {
    ring[i] = d.allocFast(sizes[i], top, true);
    ringSize[i] = sizes[i];
  }
  return () => {
    for (let i = 0; i < ops; i++) {
      const slot = k & 255;
      d.freeFast(ring[slot], ringSize[slot]);
      const s = sizes[k & 4095];
      ring[slot] = d.allocFast(s, top, true);
      ringSize[slot] = s;
      k++;
    }
  };`;

function churner(d: Domain): () => void {
  return new Function("d", "sizes", "top", "ops", loopSource)(d, churnSizes, TOP32, CHURN_OPS);
}

describe(`churn: allocFast/freeFast, 1-32 granules, 256 live (${2 * CHURN_OPS} ops per iteration)`, () => {
  bench("IovaDomain", churner(new IovaDomain({ granule: G, startPfn: 1 })), { time: 1500 });
  bench("reference walk", churner(new ReferenceIovaDomain({ granule: G, startPfn: 1 })), { time: 1500 });
});
