import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ABSENT, PfnIndex } from "./pfn-index.js";

describe("PfnIndex (open addressing, backward-shift deletion)", () => {
  it("agrees with a Map over random sets, gets and deletes, through growth and long probe runs", () => {
    // Keys from a few clusters (shared low 32 bits force collisions) and the edges of the pfn range.
    const key = fc.oneof(
      fc.integer({ min: 0, max: 100 }),
      fc.integer({ min: 0, max: 40 }).map((k) => k * 2 ** 32 + 7),
      fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, 2 ** 52 - 1, 2 ** 53 - 1),
    );
    const op = fc.oneof(
      fc.record({ k: fc.constant("set" as const), pfn: key, node: fc.nat(1 << 30) }),
      fc.record({ k: fc.constant("delete" as const), pfn: key }),
      fc.record({ k: fc.constant("get" as const), pfn: key }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 200, maxLength: 500 }), (ops) => {
        const idx = new PfnIndex();
        const ref = new Map<number, number>();
        for (const o of ops) {
          if (o.k === "set" && !ref.has(o.pfn)) {
            idx.set(o.pfn, o.node);
            ref.set(o.pfn, o.node);
          } else if (o.k === "delete" && ref.has(o.pfn)) {
            idx.delete(o.pfn);
            ref.delete(o.pfn);
          }
          expect(idx.get(o.pfn)).toBe(ref.get(o.pfn) ?? ABSENT);
          expect(idx.count).toBe(ref.size);
        }
        for (const [pfn, node] of ref) expect(idx.get(pfn)).toBe(node);
      }),
      { seed: 0x1d3, numRuns: 40 },
    );
  });
});
