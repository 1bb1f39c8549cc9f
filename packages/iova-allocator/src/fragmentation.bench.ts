import { bench, describe } from "vitest";
import { IovaDomain } from "./iova-domain.js";
import { ReferenceIovaDomain } from "./testing/linux-iova-reference.js";

// The same workload on the engine and on the linear reference walk (Linux's algorithm) in this process; vitest
// prints "N times faster than" between the two. Figures are recorded in README.md.

type Domain = IovaDomain | ReferenceIovaDomain;
const G = 4096;
const TOP32 = 2 ** 20 - 1;

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
