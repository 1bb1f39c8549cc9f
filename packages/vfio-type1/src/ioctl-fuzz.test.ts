/**
 * Fuzzing the byte interface: random and malformed buffers, lying argsz, unknown flags, wrapping sizes,
 * unknown requests. Every call answers a number (never throws), and every failed call leaves the container,
 * the IOMMU page tables and locked_vm exactly as they were (compared through a snapshot).
 */

import { U64_MAX } from "@iommu/core";
import {
  DMA_MAP_SIZE,
  encodeDirtyPages,
  encodeDmaMap,
  encodeDmaUnmap,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  view,
} from "@vfio/uapi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Container } from "./container.js";
import { BASE, makeHost, openContainer } from "./test-support/hosts.js";
import { snapshot, type1State } from "./testing.js";

const SCRATCH = 0x2000_0000_0000n;

const u64s = fc.oneof(
  fc.constantFrom(
    0n,
    0x800n,
    0x1000n,
    0x2000n,
    0x4000n,
    0x10_0000n,
    0x20_0000n,
    0xfee0_0000n,
    0xfedf_f000n,
    0x7f_ffff_f000n,
    0x80_0000_0000n,
    U64_MAX,
    U64_MAX - 0xfffn,
    U64_MAX - 0x1fffn,
    1n << 63n,
  ),
  fc.bigInt({ min: 0n, max: 0x40n }).map((k) => k * 0x1000n),
  fc.bigInt({ min: 0n, max: U64_MAX }),
);
const vaddrs = fc.oneof(
  fc.bigInt({ min: 0n, max: 0x80n }).map((k) => BASE + k * 0x1000n),
  fc.constantFrom(BASE + 0x800n, BASE - 0x1000n, BASE + (1n << 30n) - 0x1000n, SCRATCH, 0n, U64_MAX - 0xfffn),
  fc.bigInt({ min: 0n, max: U64_MAX }),
);
const flags32 = fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 0xffff_ffff }));
const argszs = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 0xffff_ffff }));

const pageIova = fc.bigInt({ min: 0x100n, max: 0x140n }).map((k) => k * 0x1000n);
const pages = fc.bigInt({ min: 1n, max: 16n }).map((n) => n * 0x1000n);

/** Mostly-valid requests, so mappings exist for the hostile ones to hit. */
const plausible = fc.oneof(
  fc.record({
    req: fc.constant(VFIO_IOMMU_MAP_DMA),
    arg: fc
      .record({
        flags: fc.constantFrom(1, 2, 3, 3, 3, 4),
        vaddr: fc.oneof(
          { weight: 5, arbitrary: fc.bigInt({ min: 0n, max: 0x80n }).map((k) => BASE + k * 0x1000n) },
          { weight: 1, arbitrary: vaddrs },
        ),
        iova: pageIova,
        size: pages,
      })
      .map((m) => encodeDmaMap({ argsz: 32, ...m })),
  }),
  fc.record({
    req: fc.constant(VFIO_IOMMU_UNMAP_DMA),
    arg: fc
      .record({ flags: fc.constantFrom(0, 0, 2, 4), iova: pageIova, size: fc.oneof(pages, fc.constant(0x100000n)) })
      .map((u) => encodeDmaUnmap(u.flags === 2 ? { flags: 2 } : u)),
  }),
  fc.record({
    req: fc.constant(VFIO_IOMMU_UNMAP_DMA),
    arg: fc
      .record({
        iova: pageIova,
        size: pages,
        pgsize: fc.constantFrom(0x1000n, 0x2000n),
        data: fc.constantFrom(SCRATCH, SCRATCH + 8n, BASE - 0x1000n),
      })
      .map((u) =>
        encodeDmaUnmap({ flags: 1, iova: u.iova, size: u.size, bitmap: { pgsize: u.pgsize, size: 64n, data: u.data } }),
      ),
  }),
  fc.record({
    req: fc.constant(VFIO_IOMMU_DIRTY_PAGES),
    arg: fc.constantFrom(1, 2).map((f) => encodeDirtyPages(f)),
  }),
  fc.record({
    req: fc.constant(VFIO_IOMMU_DIRTY_PAGES),
    arg: fc
      .record({
        iova: pageIova,
        size: fc.oneof(pages, fc.constant(0x40000n)),
        data: fc.constantFrom(SCRATCH, SCRATCH + 0xfff8n),
      })
      .map((d) =>
        encodeDirtyPages(4, { iova: d.iova, size: d.size, bitmap: { pgsize: 0x1000n, size: 64n, data: d.data } }),
      ),
  }),
);

/** A request + argument: structured-but-hostile structs, random bytes, short buffers, integers. */
const call = fc.oneof(
  { weight: 3, arbitrary: plausible },
  {
    weight: 1,
    arbitrary: fc.record({
      req: fc.constant(VFIO_IOMMU_MAP_DMA),
      arg: fc
        .record({ argsz: argszs, flags: flags32, vaddr: vaddrs, iova: u64s, size: u64s, cut: fc.nat(40) })
        .map((m) =>
          encodeDmaMap(m).subarray(0, m.cut >= DMA_MAP_SIZE ? DMA_MAP_SIZE : m.cut % 4 === 0 ? m.cut : DMA_MAP_SIZE),
        ),
    }),
  },
  fc.record({
    req: fc.constant(VFIO_IOMMU_UNMAP_DMA),
    arg: fc
      .record({
        argsz: fc.oneof(fc.constantFrom(24, 48), argszs),
        flags: flags32,
        iova: u64s,
        size: u64s,
        bm: fc.option(fc.record({ pgsize: u64s, size: fc.constantFrom(0n, 8n, 64n, 1n << 40n), data: vaddrs })),
      })
      .map((u) =>
        encodeDmaUnmap({
          argsz: u.argsz,
          flags: u.flags,
          iova: u.iova,
          size: u.size,
          ...(u.bm ? { bitmap: u.bm } : {}),
        }),
      ),
  }),
  fc.record({
    req: fc.constant(VFIO_IOMMU_DIRTY_PAGES),
    arg: fc
      .record({
        flags: flags32,
        argsz: fc.option(argszs),
        iova: u64s,
        size: u64s,
        pgsize: fc.constantFrom(0n, 0x800n, 0x1000n, 0x2000n),
        bsize: fc.constantFrom(0n, 8n, 64n, 1n << 29n),
        data: fc.constantFrom(SCRATCH, SCRATCH + 8n, BASE, 0n, U64_MAX),
      })
      .map((d) =>
        encodeDirtyPages(
          d.flags,
          { iova: d.iova, size: d.size, bitmap: { pgsize: d.pgsize, size: d.bsize, data: d.data } },
          d.argsz ?? undefined,
        ),
      ),
  }),
  fc.record({
    req: fc.constant(VFIO_IOMMU_GET_INFO),
    arg: fc.record({ argsz: argszs, len: fc.nat(200) }).map(({ argsz, len }) => {
      const b = new Uint8Array(len).fill(0xa5);
      if (len >= 4) view(b).setUint32(0, argsz, true);
      return b;
    }),
  }),
  fc.record({
    req: fc.constantFrom(VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU, VFIO_GET_API_VERSION),
    arg: fc.oneof(fc.integer({ min: -5, max: 20 }), fc.bigInt({ min: 0n, max: U64_MAX })),
  }),
  fc.record({
    req: fc.oneof(fc.integer({ min: 0x3b60, max: 0x3b80 }), fc.integer({ min: 0, max: 0xffff_ffff })),
    arg: fc.uint8Array({ maxLength: 80 }),
  }),
);

function picture(c: Container, drv: { domains: Set<{ recs: unknown[] }> }): string {
  const recs = [...drv.domains].map((d) =>
    JSON.stringify(d.recs, (_k, v) => (typeof v === "bigint" ? v.toString(16) : v)),
  );
  return JSON.stringify({ s: snapshot(c), recs });
}

describe("ioctl fuzzing (fast-check)", () => {
  it.each(["x86", "arm64"] as const)(
    "%s: always an errno or success, failures change nothing",
    { tags: ["slow"] },
    (shape) => {
      fc.assert(
        fc.property(fc.array(call, { minLength: 20, maxLength: 60 }), (calls) => {
          const h = makeHost({ shape, capIpcLock: false, memlockBytes: 0x18000n, params: { dmaEntryLimit: 4 } });
          h.proc.mmap({ start: SCRATCH, size: 0x10000n, name: "heap" });
          const { container } = openContainer(h);
          for (const { req, arg } of calls) {
            const before = picture(container, h.fake!);
            const ret = container.ioctl(req, arg);
            expect(Number.isInteger(ret)).toBe(true);
            if (ret < 0) expect(picture(container, h.fake!)).toBe(before);
            // Invariants that hold after every call.
            const t = type1State(container.backend!);
            expect(t.dmaAvail + t.dmas.count).toBe(4);
            const charged = t.dmas.all().reduce((n, d) => n + d.runs.reduce((m, r) => m + r.charged, 0), 0);
            expect(h.proc.lockedVm).toBe(charged);
            expect(h.proc.lockedVm * 4096).toBeLessThanOrEqual(0x18000);
            const all = t.dmas.all();
            for (let i = 1; i < all.length; i++) expect(all[i - 1]!.iova + all[i - 1]!.size <= all[i]!.iova).toBe(true);
          }
        }),
        { numRuns: 70, seed: 0x7e1 },
      );
    },
  );

  it("group ioctls: malformed status and container arguments are errnos", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            req: fc.constantFrom(
              VFIO_GROUP_GET_STATUS,
              VFIO_GROUP_SET_CONTAINER,
              VFIO_GROUP_UNSET_CONTAINER,
              0x3b6a,
              0,
            ),
            arg: fc.oneof(
              fc.uint8Array({ maxLength: 12 }),
              fc.integer({ min: -3, max: 10 }).map((fd) => {
                const b = new Uint8Array(4);
                view(b).setInt32(0, fd, true);
                return b;
              }),
            ),
          }),
          { maxLength: 20 },
        ),
        (calls) => {
          const h = makeHost({ shape: "x86", devices: 2 });
          const c = h.vfio.openContainer(h.proc);
          const g = h.vfio.openGroup(h.groupIds[1]!);
          for (const { req, arg } of calls) {
            const before = JSON.stringify([
              g.status(),
              g.containerUsers,
              c.groups.length,
              h.iommu.groupById(h.groupIds[1]!)!.ownerCount,
            ]);
            const ret = g.ioctl(req, arg);
            expect(Number.isInteger(ret)).toBe(true);
            if (ret < 0) {
              expect(
                JSON.stringify([
                  g.status(),
                  g.containerUsers,
                  c.groups.length,
                  h.iommu.groupById(h.groupIds[1]!)!.ownerCount,
                ]),
              ).toBe(before);
            }
          }
        },
      ),
      { numRuns: 200, seed: 0x9e },
    );
  });
});
