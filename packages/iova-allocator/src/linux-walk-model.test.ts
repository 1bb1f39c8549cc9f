import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IovaDomain } from "./iova-domain.js";
import { ReferenceIovaDomain } from "./testing/linux-iova-reference.js";
import { compareRun, type ModelConfig, type ModelOp } from "./testing/op-runner.js";

// The engine against the linear reference walk (src/testing/linux-iova-reference.ts) over long random call
// sequences. Windows are small so ranges collide, fragment, hit the limits and exhaust the space often.

const WIDTH = 192;

const configArb: fc.Arbitrary<ModelConfig> = fc.record({
  granule: fc.constantFrom(2048, 4096, 65536),
  place: fc.constantFrom("low", "dma32", "dma32", "top"),
  startOffset: fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: 40 })),
  cpus: fc.integer({ min: 1, max: 3 }),
  width: fc.constant(WIDTH),
});

const sizeArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 8 }) },
  { weight: 2, arbitrary: fc.integer({ min: 9, max: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 41, max: 2 * WIDTH }) },
);
const limitArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: WIDTH + 8 }) },
  { weight: 1, arbitrary: fc.constant(WIDTH / 2 - 1) }, // dma32 window: the last pfn below 4 GiB
  { weight: 1, arbitrary: fc.constant(Number.MAX_SAFE_INTEGER) }, // clamped to maxPfn
);
const pfnArb = fc.integer({ min: -8, max: WIDTH + 8 });

const opArb: fc.Arbitrary<ModelOp> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ op: fc.constant("alloc" as const), size: sizeArb, limit: limitArb, aligned: fc.boolean() }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("allocFast" as const),
      size: sizeArb,
      limit: limitArb,
      flush: fc.boolean(),
      cpu: fc.nat(3),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("free" as const),
      pick: fc.nat(),
      offset: fc.nat(),
      random: pfnArb,
      useRandom: fc.constantFrom(false, false, true),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("freeFast" as const),
      pick: fc.nat(),
      sizeDelta: fc.oneof(
        { weight: 8, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: -3, max: 40 }) },
      ),
      cpu: fc.nat(3),
      random: pfnArb,
      useRandom: fc.constantFrom(false, false, false, true),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("reserve" as const), lo: pfnArb, len: fc.integer({ min: 0, max: 24 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("find" as const), at: pfnArb }) },
  { weight: 1, arbitrary: fc.constant({ op: "flush" as const }) },
);

describe("IovaDomain agrees with Linux's linear walk", () => {
  it("over random alloc/free/reserve/allocFast/freeFast sequences (≥ 5·10^4 operations across seeds)", {
    tags: ["slow"],
  }, () => {
    let total = 0;
    fc.assert(
      fc.property(configArb, fc.array(opArb, { minLength: 300, maxLength: 1500 }), (cfg, ops) => {
        total += ops.length;
        const diff = compareRun(cfg, ops, 4);
        expect(diff).toBeNull();
      }),
      { seed: 0x10a, numRuns: 120 },
    );
    expect(total).toBeGreaterThanOrEqual(50_000);
  });

  it("with a second seed and more CPUs-worth of cache churn", () => {
    const churnOp: fc.Arbitrary<ModelOp> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant("allocFast" as const),
          size: fc.integer({ min: 1, max: 33 }),
          limit: limitArb,
          flush: fc.boolean(),
          cpu: fc.nat(3),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant("freeFast" as const),
          pick: fc.nat(),
          sizeDelta: fc.constant(0),
          cpu: fc.nat(3),
          random: pfnArb,
          useRandom: fc.constant(false),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant("alloc" as const),
          size: sizeArb,
          limit: limitArb,
          aligned: fc.boolean(),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant("free" as const),
          pick: fc.nat(),
          offset: fc.nat(),
          random: pfnArb,
          useRandom: fc.constant(false),
        }),
      },
    );
    fc.assert(
      fc.property(configArb, fc.array(churnOp, { minLength: 100, maxLength: 600 }), (cfg, ops) => {
        const diff = compareRun(cfg, ops, 8);
        expect(diff).toBeNull();
      }),
      { seed: 0x2bad, numRuns: 60 },
    );
  });
});

describe("IovaDomain agrees with Linux's linear walk on deep trees", () => {
  it("builds hundreds of small ranges in a wide window, then frees, reserves and reallocates", () => {
    const width = 3000;
    const deepOp: fc.Arbitrary<ModelOp> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          op: fc.constant("alloc" as const),
          size: fc.integer({ min: 1, max: 6 }),
          limit: fc.oneof(fc.constant(width / 2 - 1), fc.integer({ min: 0, max: width })),
          aligned: fc.boolean(),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant("allocFast" as const),
          size: fc.integer({ min: 1, max: 40 }),
          limit: fc.integer({ min: 0, max: width }),
          flush: fc.boolean(),
          cpu: fc.nat(1),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant("free" as const),
          pick: fc.nat(),
          offset: fc.nat(),
          random: fc.integer({ min: 0, max: width }),
          useRandom: fc.constant(false),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant("reserve" as const),
          lo: fc.integer({ min: 0, max: width }),
          len: fc.integer({ min: 0, max: 60 }),
        }),
      },
    );
    fc.assert(
      fc.property(
        fc.record({
          granule: fc.constantFrom(2048, 4096),
          place: fc.constantFrom("low" as const, "dma32" as const),
          startOffset: fc.integer({ min: 0, max: 20 }),
          cpus: fc.constant(2),
          width: fc.constant(width),
        }),
        fc.array(deepOp, { minLength: 800, maxLength: 1500 }),
        (cfg, ops) => {
          const diff = compareRun(cfg, ops, 25);
          expect(diff).toBeNull();
        },
      ),
      { seed: 0xdee9, numRuns: 15 },
    );
  });
});

describe("IovaDomain agrees with Linux's linear walk for sizes of 2^32 granules and more", () => {
  it("gaps past the tree's saturated u32 gap words: the exact node-by-node search decides", () => {
    // A window of 2^44 pfns: gaps of 2^32 and more are common, and sizes straddle the saturation point.
    const width = 2 ** 44;
    const big = fc.oneof(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 2 ** 32 - 3, max: 2 ** 32 + 3 }),
      fc.integer({ min: 2 ** 31, max: 2 ** 41 }),
    );
    const limit = fc.oneof(fc.integer({ min: 0, max: width }), fc.constant(width - 1));
    const bigOp: fc.Arbitrary<ModelOp> = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({ op: fc.constant("alloc" as const), size: big, limit, aligned: fc.boolean() }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          op: fc.constant("allocFast" as const),
          size: big,
          limit,
          flush: fc.boolean(),
          cpu: fc.constant(0),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant("free" as const),
          pick: fc.nat(),
          offset: fc.nat(),
          random: fc.constant(0),
          useRandom: fc.constant(false),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant("reserve" as const),
          lo: fc.integer({ min: 0, max: width }),
          len: fc.integer({ min: 0, max: 2 ** 33 }),
        }),
      },
    );
    fc.assert(
      fc.property(
        fc.record({
          granule: fc.constantFrom(2048, 4096),
          place: fc.constant("low" as const),
          startOffset: fc.integer({ min: 0, max: 2 }),
          cpus: fc.constant(1),
          width: fc.constant(width),
        }),
        fc.array(bigOp, { minLength: 20, maxLength: 120 }),
        (cfg, ops) => {
          const diff = compareRun(cfg, ops, 1);
          expect(diff).toBeNull();
        },
      ),
      { seed: 0xb16, numRuns: 150 },
    );
  });
});

describe("IovaDomain agrees with the reference on both depot shapes, model time included", () => {
  it("bursts that fill loaded, prev and the depot, frees in random orders, ticks of 0-250 ms, flushes", () => {
    const burstArb = fc.record({
      size: fc.constantFrom(1, 2, 3, 4, 32),
      count: fc.integer({ min: 1, max: 700 }),
      order: fc.constantFrom("lifo", "fifo", "shuffled"),
      cpu: fc.nat(2),
      limitCut: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3000 })),
      tickMs: fc.oneof(fc.constantFrom(0, 1, 99, 100, 101, 200), fc.integer({ min: 1, max: 250 })),
      flush: fc.boolean(),
      freeAll: fc.boolean(),
      flushNow: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.constantFrom("array" as const, "list" as const),
        fc.integer({ min: 1, max: 3 }),
        fc.array(burstArb, { minLength: 2, maxLength: 10 }),
        fc.integer(),
        (rcacheDepot, cpus, bursts, seed) => {
          const opts = { granule: 4096, startPfn: 1, cpus, rcacheDepot };
          let x = seed >>> 0;
          const rnd = (n: number) => {
            x = (Math.imul(x, 1103515245) + 12345) >>> 0;
            return (x >>> 8) % n;
          };
          const live: number[] = [];
          const real = new IovaDomain(opts);
          const ref = new ReferenceIovaDomain(opts);
          const same = (a: unknown, b: unknown, what: string) => {
            expect(JSON.stringify(a), `${what}: engine vs reference`).toBe(JSON.stringify(b));
          };
          for (const b of bursts) {
            const cpu = b.cpu % cpus;
            const limit = 0xfffff - b.limitCut;
            for (let i = 0; i < b.count; i++) {
              const p = real.allocFast(b.size, limit, b.flush, cpu);
              same(p, ref.allocFast(b.size, limit, b.flush, cpu), "allocFast");
              if (p !== 0) live.push(p);
            }
            const n = b.freeAll ? live.length : rnd(live.length + 1);
            if (b.order === "fifo") live.reverse();
            for (let i = 0; i < n; i++) {
              const j = b.order === "shuffled" ? rnd(live.length) : live.length - 1;
              const [p] = live.splice(j, 1);
              real.freeFast(p!, b.size, cpu);
              ref.freeFast(p!, b.size, cpu);
            }
            if (b.flushNow) {
              // A flush with full depots (the order depot magazines go back in does not show in the hints).
              real.flushRangeCaches();
              ref.flushRangeCaches();
              same(real.hints(), ref.hints(), "hints after a flush");
            }
            real.tick(b.tickMs);
            ref.tick(b.tickMs);
            same([real.count, real.cachedCount], [ref.count, ref.cachedCount], "counts");
            real.tick(b.tickMs);
            ref.tick(b.tickMs);
            same([real.count, real.cachedCount], [ref.count, ref.cachedCount], "counts after a second tick");

            same(real.hints(), ref.hints(), "hints");
            same([...real.ranges()], ref.ranges(), "ranges");
          }
          // Long enough for every trim to finish.
          real.tick(100 * 1000);
          ref.tick(100 * 1000);
          same([real.count, real.cachedCount], [ref.count, ref.cachedCount], "counts after the trims");
          same([...real.ranges()], ref.ranges(), "ranges after the trims");
        },
      ),
      { seed: 0xde907, numRuns: 30 },
    );
  });
});
