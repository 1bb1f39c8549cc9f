/**
 * The capability chain helpers, and the regression the seed RFC fixed: Linux 4.9's vfio_info_cap_add/shift
 * stepped through the chain header-relatively although `next` is buffer-relative. With ≤2 caps that works
 * by accident (the first cap sits at offset 0); with ≥3 (one reserved-range cap per range) it corrupts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CapChain, walkCaps } from "./cap-chain.js";
import { CAP_HEADER_SIZE, INFO_SIZE, view } from "./vfio.js";

/** Linux 4.9's helpers, kept here only to show the ≥3-cap test catches them. */
class BuggyCapChain4_9 {
  buf = new Uint8Array(0);
  add(size: number, id: number, version: number): void {
    const at = this.buf.length;
    const grown = new Uint8Array(at + size);
    grown.set(this.buf);
    this.buf = grown;
    const v = view(this.buf);
    v.setUint16(at, id, true);
    v.setUint16(at + 2, version, true);
    let tmp = 0;
    // header-relative stepping: tmp = tmp + tmp->next (the bug)
    for (let guard = 0; v.getUint32(tmp + 4, true) !== 0 && guard < 64; guard++) {
      tmp = tmp + v.getUint32(tmp + 4, true);
      if (tmp + CAP_HEADER_SIZE > this.buf.length) throw new RangeError("slab-out-of-bounds read in vfio_info_cap_add");
    }
    v.setUint32(tmp + 4, at, true);
  }
  shift(offset: number): void {
    const v = view(this.buf);
    let tmp = 0;
    for (let guard = 0; guard < 64; guard++) {
      if (tmp + CAP_HEADER_SIZE > this.buf.length)
        throw new RangeError("slab-out-of-bounds read in vfio_info_cap_shift");
      const next = v.getUint32(tmp + 4, true);
      if (next === 0) return;
      v.setUint32(tmp + 4, next + offset, true);
      tmp = tmp + next + offset - offset; // (void *)tmp + tmp->next - offset, after the add
    }
  }
}

/** The chain as userspace sees it after `shift(24)` behind a 24-byte info header. */
function asInfo(chain: Uint8Array): Uint8Array {
  const info = new Uint8Array(INFO_SIZE + chain.length);
  info.set(chain, INFO_SIZE);
  return info;
}

/** Cap bodies carry data (ranges, counters): fill them so a walk that lands inside a body reads garbage. */
function fillBodies(buf: Uint8Array, sizes: number[]): void {
  let at = 0;
  sizes.forEach((s, i) => {
    buf.fill(0x11 * ((i % 14) + 1), at + CAP_HEADER_SIZE, at + s);
    at += s;
  });
}

function expectWellFormed(info: Uint8Array, sizes: number[]): void {
  const caps = walkCaps(info, INFO_SIZE);
  expect(caps.map((c) => c.id)).toEqual(sizes.map((_, i) => i + 1));
  let at = INFO_SIZE;
  caps.forEach((c, i) => {
    expect(c.offset).toBe(at);
    expect([...info.subarray(at + CAP_HEADER_SIZE, at + sizes[i]!)].every((x) => x === 0x11 * ((i % 14) + 1))).toBe(
      true,
    );
    at += sizes[i]!;
    expect(c.next).toBe(i === caps.length - 1 ? 0 : at);
  });
}

describe("CapChain (fixed helpers, 4.10+)", () => {
  it("links caps buffer-relative and shifts them info-relative (any count, any sizes)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 12, max: 64 }), { minLength: 1, maxLength: 12 }), (sizes) => {
        const c = new CapChain();
        sizes.forEach((s, i) => {
          c.add(s, i + 1, 1);
          fillBodies(c.bytes, sizes.slice(0, i + 1));
        });
        c.shift(INFO_SIZE);
        expectWellFormed(asInfo(c.bytes), sizes);
      }),
      { numRuns: 200, seed: 8 },
    );
  });

  it("does not pad: a 12-byte cap leaves the next one 4-byte aligned (6.1, not 6.6)", () => {
    const c = new CapChain();
    c.add(32, 2, 1);
    c.add(12, 3, 1);
    c.add(48, 1, 1);
    c.shift(INFO_SIZE);
    expect(walkCaps(asInfo(c.bytes), INFO_SIZE).map((h) => [h.offset, h.next])).toEqual([
      [24, 56],
      [56, 68],
      [68, 0],
    ]);
  });
});

describe("regression: vfio_info_cap_add/shift 4.9 (the seed RFC's first fix)", () => {
  const build = (sizes: number[]): Uint8Array => {
    const b = new BuggyCapChain4_9();
    sizes.forEach((s, i) => {
      b.add(s, i + 1, 1);
      fillBodies(b.buf, sizes.slice(0, i + 1));
    });
    b.shift(INFO_SIZE);
    return asInfo(b.buf);
  };

  it("works by accident with one or two caps", () => {
    expectWellFormed(build([32]), [32]);
    expectWellFormed(build([32, 12]), [32, 12]);
    // ... and the 6.1 chain MIGRATION(32) → DMA_AVAIL(12) → IOVA_RANGE(48) is already one cap too many.
    expect(() => expectWellFormed(build([32, 12, 48]), [32, 12, 48])).toThrow();
  });

  it("is caught by a chain of three or more caps", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 12, max: 64 }), { minLength: 3, maxLength: 8 }), (sizes) => {
        let ok = true;
        try {
          expectWellFormed(build(sizes), sizes);
        } catch {
          ok = false;
        }
        expect(ok).toBe(false);
      }),
      { numRuns: 100, seed: 49 },
    );
  });
});

describe("walkCaps on a corrupted chain", () => {
  it("throws RangeError when a next points past the buffer or back into the chain", () => {
    const c = new CapChain();
    c.add(16, 1, 1);
    c.add(16, 2, 1);
    c.shift(INFO_SIZE);
    const info = asInfo(c.bytes);
    expect(walkCaps(info, INFO_SIZE).map((h) => h.id)).toEqual([1, 2]);
    view(info).setUint32(INFO_SIZE + 16 + 4, info.length - 4, true);
    expect(() => walkCaps(info, INFO_SIZE)).toThrow(/runs past the buffer/);
    view(info).setUint32(INFO_SIZE + 16 + 4, INFO_SIZE, true);
    expect(() => walkCaps(info, INFO_SIZE)).toThrow(/loops at 24/);
  });
});
