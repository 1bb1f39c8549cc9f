import { ERRNO } from "@iommu/core";
import {
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
} from "@vfio/uapi";
import * as U from "@vfio/uapi/iommufd";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IommufdCtx } from "./iommufd-ctx.js";
import { iommufdIoctl } from "./iommufd-ioctl.js";
import { BASE, testHost, X86 } from "./test-support/hosts.js";
import { userOf } from "./user-memory.js";

const CMDS = [...U.IOCTL_SIZES.keys()];
const KNOWN = new Set(Object.values(ERRNO).map((n) => -n));

const u32Pool = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 999, 0xffff_ffff, 16, 24, 40),
  fc.nat({ max: 0xffff_ffff }),
);
const u64Pool = fc.oneof(
  fc.constantFrom(
    0n,
    0x1000n,
    0x4000n,
    0x100000n,
    0x200000n,
    0xfee0_0000n,
    BASE,
    BASE + 0x800n,
    BASE + 0x1000_0000n,
    (1n << 64n) - 1n,
    0xffff_ffff_ffff_f000n,
  ),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);
/** One 8-byte word of a struct: a u64, or two u32s. */
const wordArb = fc.oneof(
  u64Pool.map((v) => ({ lo: Number(v & 0xffff_ffffn), hi: Number(v >> 32n) })),
  fc.record({ lo: u32Pool, hi: u32Pool }),
);

const callArb = fc.record({
  cmd: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...CMDS) }, { weight: 1, arbitrary: fc.nat(0xffff) }),
  sizeKind: fc.constantFrom("exact", "exact", "exact", "min", "small", "big", "huge"),
  words: fc.array(wordArb, { minLength: 8, maxLength: 8 }),
  tail: fc.constantFrom(0, 0, 0xff),
});

function setup() {
  const host = testHost(X86);
  host.proc.capIpcLock = false;
  host.proc.rlimitMemlock = 0x20000n;
  const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
  const a = ctx.ioasAlloc();
  const b = ctx.ioasAlloc();
  const idev = ctx.bindDevice(host.device(1));
  ctx.attachDevice(idev, a);
  const rw = { fixed: true, read: true, write: true };
  ctx.ioasMap(a, BASE, 0x4000n, 0x100000n, rw);
  ctx.ioasMap(a, BASE + 0x4000n, 0x1000n, 0x104000n, rw);
  ctx.ioasMap(b, BASE, 0x2000n, 0x200000n, rw);
  return { host, ctx };
}

function state(s: ReturnType<typeof setup>): string {
  const { ctx, host } = s;
  const out = {
    objects: ctx.objects.all().map((o) => [o.id, o.type, o.users]),
    ioas: ctx.objects
      .all()
      .filter((o) => o.type === "ioas")
      .map((o) => {
        const io = ctx.ioas(o.id).iopt;
        return [
          io.areas.all().map((x) => [x.start, x.last]),
          io.allowed.all().map((x) => [x.start, x.last]),
          io.reserved.all().map((x) => [x.start, x.last]),
          io.iovaAlignment,
          io.disableLargePages,
        ];
      }),
    vm: [host.proc.pinnedVm, host.proc.lockedVm, userOf(host.proc).lockedVm],
    mode: ctx.accountMode,
    vfio: ctx.vfioIoas?.id ?? null,
    ptes: [...host.driver.domains].map((d) => d.ptes.size),
  };
  return JSON.stringify(out, (_k, v) => (typeof v === "bigint" ? v.toString(16) : v));
}

describe("fuzz of the /dev/iommu byte interface", () => {
  it("answers only 0 or a known -errno, and a failure changes no state and (but for the answering ones) no byte", () => {
    const seen = new Map<number, number>();
    fc.assert(
      fc.property(fc.array(callArb, { minLength: 1, maxLength: 25 }), (calls) => {
        const s = setup();
        for (const c of calls) {
          const sz = U.IOCTL_SIZES.get(c.cmd) ?? { size: 16, minSize: 16 };
          const size =
            c.sizeKind === "exact"
              ? sz.size
              : c.sizeKind === "min"
                ? sz.minSize
                : c.sizeKind === "small"
                  ? sz.minSize - 4
                  : c.sizeKind === "big"
                    ? sz.size + 8
                    : 0x1008;
          const buf = new Uint8Array(Math.max(size, 72) + 8);
          c.words.forEach((w, i) => {
            U.wr32(buf, i * 8, w.lo);
            U.wr32(buf, i * 8 + 4, w.hi);
          });
          U.wr32(buf, 0, size);
          buf.fill(c.tail, Math.min(sz.size, buf.length));
          const before = state(s);
          const bytes = buf.slice();
          const rc = iommufdIoctl(s.ctx, c.cmd, buf);
          seen.set(rc, (seen.get(rc) ?? 0) + 1);
          expect(rc === 0 || KNOWN.has(rc)).toBe(true);
          if (rc === 0) continue;
          // IOVA_RANGES answers before EMSGSIZE, HWPT_INVALIDATE writes entry_num, the compat UNMAP_DMA its size.
          const answers =
            (c.cmd === U.IOMMU_IOAS_IOVA_RANGES && rc === -ERRNO.EMSGSIZE) ||
            c.cmd === U.IOMMU_HWPT_INVALIDATE ||
            c.cmd === VFIO_IOMMU_UNMAP_DMA;
          if (!answers) expect(Buffer.from(buf).equals(Buffer.from(bytes))).toBe(true);
          // UNMAP's partial ENOENT (whole areas removed lowest-first) is the one failure that may change state.
          const partialUnmap = (c.cmd === U.IOMMU_IOAS_UNMAP || c.cmd === VFIO_IOMMU_UNMAP_DMA) && rc === -ERRNO.ENOENT;
          if (!partialUnmap) expect(state(s)).toBe(before);
        }
      }),
      { seed: 0xf22, numRuns: 120 },
    );
    // The fuzz reached successes and the common refusals.
    for (const rc of [0, -ERRNO.EINVAL, -ERRNO.ENOENT, -ERRNO.E2BIG, -ERRNO.EOPNOTSUPP, -ERRNO.ENOTTY]) {
      expect(seen.get(rc) ?? 0).toBeGreaterThan(0);
    }
  });
});

describe("fuzz of the VFIO container compat (an iommufd file as /dev/vfio/vfio)", () => {
  const compatCmds = [
    VFIO_GET_API_VERSION,
    VFIO_CHECK_EXTENSION,
    VFIO_SET_IOMMU,
    VFIO_IOMMU_GET_INFO,
    VFIO_IOMMU_MAP_DMA,
    VFIO_IOMMU_UNMAP_DMA,
    VFIO_IOMMU_DIRTY_PAGES,
  ];
  const compatCall = fc.record({
    cmd: fc.constantFrom(...compatCmds),
    int: fc.oneof(fc.constantFrom(0, 1, 3, 4, 6, 8, 9, 10), fc.nat()),
    argsz: fc.constantFrom(0, 15, 16, 20, 24, 31, 32, 50, 72, 88, 4096),
    words: fc.array(wordArb, { minLength: 4, maxLength: 4 }),
    len: fc.constantFrom(8, 24, 32, 64, 4096),
    device: fc.boolean(),
  });

  it("answers only values or known -errnos; a failure changes no state (but UNMAP's partial ENOENT)", () => {
    fc.assert(
      fc.property(fc.array(compatCall, { minLength: 1, maxLength: 25 }), (calls) => {
        const host = testHost(X86);
        const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc, vfioCompat: true });
        ctx.vfioCompatIoasCreate();
        const s = { host, ctx };
        for (const c of calls) {
          if (c.device && !ctx.groups.size) {
            try {
              ctx.attachDevice(ctx.bindDevice(host.device(1)), ctx.vfioIoasGet());
            } catch {}
          }
          const buf = new Uint8Array(c.len);
          c.words.forEach((w, i) => {
            if (i * 8 + 8 <= buf.length) {
              U.wr32(buf, i * 8, w.lo);
              U.wr32(buf, i * 8 + 4, w.hi);
            }
          });
          U.wr32(buf, 0, c.argsz);
          const arg = c.cmd === VFIO_SET_IOMMU || c.cmd === VFIO_CHECK_EXTENSION ? c.int : buf;
          const before = state(s);
          const rc = iommufdIoctl(ctx, c.cmd, arg);
          expect(rc >= 0 || KNOWN.has(rc)).toBe(true);
          if (rc >= 0) continue;
          if (!(c.cmd === VFIO_IOMMU_UNMAP_DMA && rc === -ERRNO.ENOENT)) expect(state(s)).toBe(before);
        }
      }),
      { seed: 0xc0a7, numRuns: 100 },
    );
  });
});
