import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fitLayout, flatLayout, holesOf, type IovaRange, q35Layout, virtLayout } from "./layout.js";

const X86_VALID: IovaRange[] = [
  { start: 0n, end: 0xfedfffffn },
  { start: 0xfef00000n, end: 0x7fffffffffn },
];
const ARM_VALID: IovaRange[] = [
  { start: 0n, end: 0x7ffffffn },
  { start: 0x8100000n, end: 0xffffffffffffn },
];
const GiB = 1n << 30n;

describe("default guest layouts", () => {
  it("q35 keeps RAM below 4 GiB up to 0xb0000000, else 2 GiB below and the rest at 4 GiB", () => {
    expect(q35Layout(2n * GiB)).toEqual([{ gpa: 0n, size: 2n * GiB, offset: 0n, name: "below-4g" }]);
    expect(q35Layout(4n * GiB)).toEqual([
      { gpa: 0n, size: 2n * GiB, offset: 0n, name: "below-4g" },
      { gpa: 4n * GiB, size: 2n * GiB, offset: 2n * GiB, name: "above-4g" },
    ]);
  });
  it("virt puts RAM at 0x40000000", () => {
    expect(virtLayout(GiB)[0]?.gpa).toBe(0x40000000n);
  });
  it("machine layouts fit the Linux 6.1 valid ranges of their own board without a reaction", () => {
    expect(fitLayout(q35Layout(8n * GiB), X86_VALID).reactions.every((r) => r.kind === "fits")).toBe(true);
    expect(fitLayout(virtLayout(4n * GiB), ARM_VALID).reactions.every((r) => r.kind === "fits")).toBe(true);
  });
});

describe("reacting to reserved regions", () => {
  it("arm64: a flat 1 GiB layout gets a hole at the sw-msi window and the 1 MiB it held moves up", () => {
    const f = fitLayout(flatLayout(GiB), ARM_VALID);
    expect(f.conflicts).toEqual([{ start: 0x8000000n, end: 0x80fffffn }]);
    expect(f.blocks).toEqual([
      { gpa: 0n, size: 0x8000000n, offset: 0n, name: "flat.0" },
      { gpa: 0x8100000n, size: GiB - 0x8100000n, offset: 0x8000000n, name: "flat.1" },
      { gpa: GiB, size: 0x100000n, offset: GiB - 0x100000n, name: "flat.moved" },
    ]);
  });
  it("x86: a flat 8 GiB layout is carved at the interrupt window", () => {
    const f = fitLayout(flatLayout(8n * GiB), X86_VALID);
    expect(f.conflicts[0]).toEqual({ start: 0xfee00000n, end: 0xfeefffffn });
    expect(f.blocks.map((b) => b.gpa)).toEqual([0n, 0xfef00000n, 8n * GiB]);
    expect(f.blocks.reduce((a, b) => a + b.size, 0n)).toBe(8n * GiB);
  });
  it("holes are the complement of the valid ranges", () => {
    expect(holesOf(ARM_VALID)).toEqual([{ start: 0x8000000n, end: 0x80fffffn }]);
  });

  it("property: fitted blocks lie in valid ranges, never overlap, and partition the guest RAM", () => {
    const arb = fc.record({
      holes: fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 4 }),
      ramPages: fc.integer({ min: 1, max: 4096 }),
      start: fc.integer({ min: 0, max: 64 }),
    });
    fc.assert(
      fc.property(arb, ({ holes, ramPages, start }) => {
        // Valid ranges: 64 MiB slots, some slots are 1 MiB holes at their start.
        const valid: IovaRange[] = [];
        let cur = 0n;
        for (const h of [...holes].sort((a, b) => a - b)) {
          const hs = BigInt(h) << 26n;
          if (hs > cur) valid.push({ start: cur, end: hs - 1n });
          cur = hs + (1n << 20n);
        }
        valid.push({ start: cur, end: (1n << 40n) - 1n });
        const size = BigInt(ramPages) << 20n;
        const f = fitLayout([{ gpa: BigInt(start) << 24n, size, offset: 0n, name: "r" }], valid);
        const sorted = [...f.blocks].sort((a, b) => (a.offset < b.offset ? -1 : 1));
        let off = 0n;
        for (const b of sorted) {
          expect(b.offset).toBe(off);
          off += b.size;
          expect(valid.some((r) => r.start <= b.gpa && b.gpa + b.size - 1n <= r.end)).toBe(true);
        }
        expect(off).toBe(size);
        for (let i = 1; i < f.blocks.length; i++) {
          const p = f.blocks[i - 1]!;
          expect(p.gpa + p.size <= f.blocks[i]!.gpa).toBe(true);
        }
      }),
      { numRuns: 200, seed: 42 },
    );
  });
});
