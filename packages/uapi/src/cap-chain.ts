/**
 * The capability chain of an info ioctl (`struct vfio_info_cap`, vfio_main.c 6.1 `vfio_info_cap_add` /
 * `vfio_info_cap_shift`): a byte buffer of `{id u16, version u16, next u32}` headers, each followed by its
 * body. While built, `next` is an offset from the buffer start (0 ends the chain; the first cap sits at 0);
 * `shift(sizeof(info))` turns them into offsets from the start of the info struct. 6.1 does not pad caps to
 * 8 bytes, so a 12-byte DMA_AVAIL leaves the next cap 4-byte aligned; with `align8` (6.6's "vfio: align
 * capability structures") every cap is zero-padded to a multiple of 8. Reference §6.2.
 * `CapChain` is the kernel side's builder; `walkCaps` is the one user-side walker every reader goes through.
 */
import { readStruct, writeStruct } from "./struct.js";
import { CAP_HEADER_LAYOUT, CAP_HEADER_SIZE, view } from "./vfio.js";

export class CapChain {
  private buf = new Uint8Array(0);

  /** `align8`: pad each cap to 8 bytes (Linux 6.6+). */
  constructor(private readonly opts: { readonly align8?: boolean } = {}) {}

  /** Bytes of the chain so far (`caps->size`). */
  get size(): number {
    return this.buf.length;
  }

  /** The chain's bytes (a view; copy before keeping). */
  get bytes(): Uint8Array {
    return this.buf;
  }

  /**
   * `vfio_info_cap_add`: append a zeroed cap of `size` bytes with its header set, link it from the last
   * cap, and return a DataView of the new cap for its body.
   */
  add(size: number, id: number, version: number): DataView {
    if (size < CAP_HEADER_SIZE) throw new RangeError(`capability of ${size} bytes is smaller than its header`);
    const at = this.buf.length;
    const padded = this.opts.align8 ? (size + 7) & ~7 : size;
    const grown = new Uint8Array(at + padded);
    grown.set(this.buf);
    this.buf = grown;
    writeStruct(CAP_HEADER_LAYOUT, this.buf, { id, version }, at);
    const v = view(this.buf);
    // Walk from the buffer start following buffer-relative offsets (the 4.10 fix; 4.9 stepped header-relative).
    let tmp = 0;
    while (v.getUint32(tmp + 4, true) !== 0) tmp = v.getUint32(tmp + 4, true);
    v.setUint32(tmp + 4, at, true);
    return new DataView(this.buf.buffer, this.buf.byteOffset + at, size);
  }

  /** `vfio_info_cap_shift`: add `offset` to every non-zero `next`, so they count from the info struct. */
  shift(offset: number): void {
    const v = view(this.buf);
    if (this.buf.length === 0) return;
    let tmp = 0;
    for (;;) {
      const next = v.getUint32(tmp + 4, true);
      if (next === 0) break;
      v.setUint32(tmp + 4, next + offset, true);
      tmp = next; // buffer-relative: (buf + next + offset) - offset
    }
  }
}

/** One decoded capability header. */
export interface CapHeader {
  readonly id: number;
  readonly version: number;
  /** Offset of the header from the start of the info struct. */
  readonly offset: number;
  readonly next: number;
}

/** The `struct vfio_info_cap_header` at `at` (the caller checks that its 8 bytes are in the buffer). */
export function readCapHeader(info: Uint8Array, at: number): CapHeader {
  return { ...readStruct(CAP_HEADER_LAYOUT, info, at), offset: at };
}

/**
 * Walk a chain the way userspace does (from `capOffset`, following info-relative `next`), stopping at 0.
 * Throws RangeError when a `next` points outside the buffer or back into visited caps (a corrupted chain).
 */
export function walkCaps(info: Uint8Array, capOffset: number): CapHeader[] {
  const out: CapHeader[] = [];
  const seen = new Set<number>();
  let at = capOffset;
  while (at !== 0) {
    if (at + CAP_HEADER_SIZE > info.length) throw new RangeError(`capability at ${at} runs past the buffer`);
    if (seen.has(at)) throw new RangeError(`capability chain loops at ${at}`);
    seen.add(at);
    const h = readCapHeader(info, at);
    out.push(h);
    at = h.next;
  }
  return out;
}
