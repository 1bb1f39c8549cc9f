import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FlushQueue, IOVA_FQ_SIZE } from "./flush-queue.js";

function harness(cpus = 1) {
  const freed: { pfn: number; pages: number; cpu: number; flushesBefore: number }[] = [];
  let flushes = 0;
  const fq = new FlushQueue(cpus, {
    flushIotlbAll: () => {
      flushes++;
    },
    freeIova: (pfn, pages, cpu) => freed.push({ pfn, pages, cpu, flushesBefore: flushes }),
  });
  return { fq, freed, flushes: () => flushes };
}

describe("FlushQueue (dma-iommu 6.1 per-CPU flush queue)", () => {
  it("holds unmapped IOVAs until a flush that started after they were queued has finished", () => {
    const h = harness();
    h.fq.queue(100, 1);
    h.fq.queue(200, 2);
    expect(h.freed).toEqual([]);
    expect(h.fq.timerPending).toBe(true);
    expect(h.fq.pendingPages()).toBe(3);
    h.fq.timeout();
    expect(h.flushes()).toBe(1);
    expect(h.fq.timerPending).toBe(false);
    expect(h.freed.map((f) => [f.pfn, f.pages, f.flushesBefore])).toEqual([
      [100, 1, 1],
      [200, 2, 1],
    ]);
    expect(h.fq.pending()).toEqual([]);
  });

  it("a full ring (255 entries: one slot stays free) forces one IOTLB flush and recycles the flushed entries", () => {
    const h = harness();
    for (let i = 0; i < IOVA_FQ_SIZE - 1; i++) h.fq.queue(1000 + i, 1);
    expect(h.flushes()).toBe(0);
    expect(h.fq.pending()).toHaveLength(255);
    h.fq.queue(5000, 1);
    expect(h.flushes()).toBe(1);
    expect(h.freed).toHaveLength(255);
    expect(h.fq.pending().map((e) => e.pfn)).toEqual([5000]);
    expect(h.fq.flushStartCount).toBe(1);
    expect(h.fq.flushFinishCount).toBe(1);
  });

  it("entries queued after a flush started wait for the next one (counter = start count at queue time)", () => {
    const h = harness();
    h.fq.queue(1, 1);
    h.fq.timeout();
    h.fq.queue(2, 1);
    expect(h.fq.pending()).toEqual([{ pfn: 2, pages: 1, counter: 1 }]);
    // A later queue on the same CPU frees nothing new: no flush finished since pfn 2 was queued.
    h.fq.queue(3, 1);
    expect(h.freed.map((f) => f.pfn)).toEqual([1]);
  });

  it("a flush triggered on one CPU lets another CPU's next queue recycle its own entries", () => {
    const h = harness(2);
    h.fq.queue(10, 1, 1);
    for (let i = 0; i < IOVA_FQ_SIZE; i++) h.fq.queue(100 + i, 1, 0); // CPU 0 fills and flushes
    expect(h.flushes()).toBe(1);
    expect(h.freed.some((f) => f.pfn === 10)).toBe(false);
    h.fq.queue(11, 1, 1);
    expect(h.freed.find((f) => f.pfn === 10)?.cpu).toBe(1);
  });

  it("destroy drops every entry without freeing (the allocator goes away with the cookie)", () => {
    const h = harness();
    h.fq.queue(1, 1);
    h.fq.destroy();
    expect(h.fq.pending()).toEqual([]);
    expect(h.freed).toEqual([]);
    expect(h.fq.timerPending).toBe(false);
  });

  it("rejects bad cpu counts and cpu numbers", () => {
    expect(() => harness(0)).toThrow(RangeError);
    expect(() => harness(1).fq.queue(1, 1, 1)).toThrow(RangeError);
  });

  it("property: every queued range is recycled exactly once, never before a flush that started after it was queued", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.oneof(fc.tuple(fc.constant("q" as const), fc.nat(2)), fc.constant(["t" as const, 0] as const)), {
          maxLength: 700,
        }),
        (cpus, ops) => {
          const h = harness(cpus);
          const queuedAtFlush = new Map<number, number>();
          let pfn = 1;
          for (const [kind, cpu] of ops) {
            if (kind === "t") h.fq.timeout();
            else {
              queuedAtFlush.set(pfn, h.flushes());
              h.fq.queue(pfn++, 1, cpu % cpus);
            }
          }
          h.fq.timeout();
          const seen = new Set<number>();
          for (const f of h.freed) {
            expect(seen.has(f.pfn)).toBe(false);
            seen.add(f.pfn);
            expect(f.flushesBefore).toBeGreaterThan(queuedAtFlush.get(f.pfn) ?? Number.POSITIVE_INFINITY);
          }
          expect(seen.size).toBe(pfn - 1);
          expect(h.fq.pendingPages()).toBe(0);
        },
      ),
      { seed: 11, numRuns: 80 },
    );
  });
});
