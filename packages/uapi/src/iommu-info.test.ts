/** decodeIommuInfo on the bytes Linux 6.1 wrote (the x86 conformance transcript's GET_INFO) and on edges. */
import { describe, expect, it } from "vitest";
import { CapChain } from "./cap-chain.js";
import { decodeIommuInfo } from "./iommu-info.js";
import { INFO_SIZE, VFIO_IOMMU_INFO_CAPS, VFIO_IOMMU_INFO_PGSIZES, view } from "./vfio.js";

/** linux-6.1/x86: `info 4096`'s first 116 bytes (MIGRATION@24, DMA_AVAIL@56, IOVA_RANGE@68). */
const X86_INFO_4096 =
  "00100000030000000010204000000000180000000000000002000100380000000000000000000000001000000000000000000010000000000300010044000000ffff0000010001000000000002000000000000000000000000000000ffffdffe000000000000f0fe00000000ffffffff7f000000";

const fromHex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g)!, (x) => Number.parseInt(x, 16));

describe("decodeIommuInfo", () => {
  it("reads 6.1's x86 answer: the fixed part, the three caps, the usable ranges", () => {
    const buf = new Uint8Array(4096);
    buf.set(fromHex(X86_INFO_4096));
    const info = decodeIommuInfo(buf);
    expect({ ...info, raw: info.raw.length }).toEqual({
      argsz: 4096,
      flags: VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
      iovaPgsizes: 0x40201000n,
      capOffset: 24,
      caps: [
        { id: 2, version: 1, offset: 24, next: 56 },
        { id: 3, version: 1, offset: 56, next: 68 },
        { id: 1, version: 1, offset: 68, next: 0 },
      ],
      migration: { flags: 0, pgsizeBitmap: 0x1000n, maxDirtyBitmapSize: 0x1000_0000n },
      dmaAvail: 65535,
      iovaRanges: [
        { start: 0n, end: 0xfedfffffn },
        { start: 0xfef00000n, end: 0x7f_ffff_ffffn },
      ],
      reservedRanges: [],
      raw: 116,
    });
  });

  it("does not follow cap_offset without VFIO_IOMMU_INFO_CAPS, and reads absent caps as null", () => {
    const buf = new Uint8Array(INFO_SIZE);
    const v = view(buf);
    v.setUint32(0, INFO_SIZE, true);
    v.setUint32(4, VFIO_IOMMU_INFO_PGSIZES, true);
    v.setUint32(16, 0xdead, true);
    const info = decodeIommuInfo(buf);
    expect([info.caps, info.migration, info.dmaAvail, info.iovaRanges, info.capOffset]).toEqual([
      [],
      null,
      null,
      [],
      0xdead,
    ]);
  });

  it("throws RangeError when a capability's body runs past the buffer", () => {
    const c = new CapChain();
    c.add(16, 1, 1).setUint32(8, 4, true); // IOVA_RANGE claiming 4 ranges, with none behind it
    c.shift(INFO_SIZE);
    const buf = new Uint8Array(INFO_SIZE + c.size);
    buf.set(c.bytes, INFO_SIZE);
    view(buf).setUint32(4, VFIO_IOMMU_INFO_CAPS, true);
    view(buf).setUint32(16, INFO_SIZE, true);
    expect(() => decodeIommuInfo(buf)).toThrow(RangeError);
  });

  it("throws RangeError below minsz", () => {
    expect(() => decodeIommuInfo(new Uint8Array(12))).toThrow(/below minsz/);
  });
});
