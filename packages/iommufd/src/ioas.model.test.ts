import { isErrno, PAGE_SIZE, resvRegion } from "@iommu/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { IommufdDevice } from "./device.js";
import { IommufdCtx } from "./iommufd-ctx.js";
import { BASE, testHost, X86 } from "./test-support/hosts.js";
import { userOf } from "./user-memory.js";

const PG = 0x1000n;

type Op =
  | { k: "map"; ioas: number; va: number; pages: number; iova: number | null; sub: number; write: boolean }
  | { k: "unmap"; ioas: number; at: number; pages: number; whole: boolean }
  | { k: "copy"; src: number; dst: number; pick: number; off: number; pages: number; iova: number | null }
  | { k: "allow"; ioas: number; ranges: [number, number][] }
  | { k: "attach"; dev: number; ioas: number }
  | { k: "detach"; dev: number }
  | { k: "huge"; ioas: number; on: boolean }
  | { k: "cut"; ioas: number; pick: number; off: number; sub: number };

const ioasArb = fc.nat(1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant("map" as const),
      ioas: ioasArb,
      // The last pages of the 1 GiB buffer: a mapping running past it fails to pin (EFAULT).
      va: fc.oneof({ weight: 5, arbitrary: fc.nat(64) }, { weight: 1, arbitrary: fc.constant(0x40000 - 2) }),
      pages: fc.integer({ min: 1, max: 8 }),
      iova: fc.option(fc.nat(0x1100), { nil: null }),
      sub: fc.constantFrom(0, 0, 0, 0x800),
      write: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("unmap" as const),
      ioas: ioasArb,
      at: fc.nat(0x1100),
      pages: fc.integer({ min: 1, max: 32 }),
      whole: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("copy" as const),
      src: ioasArb,
      dst: ioasArb,
      pick: fc.nat(),
      off: fc.nat(3),
      pages: fc.integer({ min: 1, max: 6 }),
      iova: fc.option(fc.nat(0x1100), { nil: null }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("allow" as const),
      ioas: ioasArb,
      ranges: fc.array(fc.tuple(fc.nat(0x1100), fc.integer({ min: 1, max: 0x400 })), { maxLength: 2 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("attach" as const), dev: fc.nat(1), ioas: ioasArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("detach" as const), dev: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("huge" as const), ioas: ioasArb, on: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("cut" as const),
      ioas: ioasArb,
      pick: fc.nat(),
      off: fc.nat(7),
      sub: fc.constantFrom(0xfff, 0xfff, 0x7ff),
    }),
  },
);

/** Everything a failed call must leave alone. */
function snapshot(ctx: IommufdCtx, host: ReturnType<typeof testHost>, ioases: number[]): string {
  const s = {
    objects: ctx.objects.all().map((o) => [o.id, o.type, o.users]),
    ioas: ioases.map((id) => {
      const io = ctx.objects.find(id) ? ctx.ioas(id).iopt : null;
      return io
        ? {
            areas: io.areas.all().map((a) => [a.start, a.last, a.firstIndex, a.pageOffset, a.prot]),
            allowed: io.allowed.all().map((a) => [a.start, a.last]),
            reserved: io.reserved.all().map((a) => [a.start, a.last]),
            align: io.iovaAlignment,
            huge: io.disableLargePages,
            domains: io.domains.map((d) => d.id),
          }
        : null;
    }),
    vm: [host.proc.pinnedVm, host.proc.lockedVm, userOf(host.proc).lockedVm],
    ptes: [...host.driver.domains].map((d) => [...d.ptes].map(([k, v]) => [k, v.phys, v.prot]).sort()),
  };
  return JSON.stringify(s, (_k, v) => (typeof v === "bigint" ? v.toString(16) : v));
}

describe("IOAS model: any sequence of map/unmap/copy/allow/attach keeps the io-pagetable's promises", () => {
  it("areas disjoint, allowed and outside reserved regions; pins and page tables exact; failures leave no trace", () => {
    const stats = { ops: 0, failed: 0, maps: 0, pinFailures: 0, splits: 0 };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(0x1000), fc.integer({ min: 1, max: 0x40 })), { maxLength: 2 }),
        fc.boolean(),
        fc.array(opArb, { minLength: 5, maxLength: 40 }),
        (extra, capLock, ops) => {
          const host = testHost(X86);
          host.proc.capIpcLock = capLock;
          host.proc.rlimitMemlock = 0x18000n;
          for (const [s, l] of extra)
            host.driver.extraResv.push(resvRegion(BigInt(s) * PG, BigInt(l) * PG, 0, "reserved"));
          const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
          const ioases = [ctx.ioasAlloc(), ctx.ioasAlloc()];
          const devs: IommufdDevice[] = [ctx.bindDevice(host.device(1)), ctx.bindDevice(host.device(2))];
          for (const op of ops) {
            stats.ops++;
            const before = snapshot(ctx, host, ioases);
            const beforeAreas = ops.length ? ioases.map((id) => [...ctx.ioas(id).iopt.areas.all()]) : [];
            const allowedBefore = op.k === "map" ? [...ctx.ioas(ioases[op.ioas]!).iopt.allowed.all()] : [];
            let result: bigint | number | undefined;
            const nAreas = op.k === "cut" ? ctx.ioas(ioases[op.ioas]!).iopt.areas.size : 0;
            try {
              result = run(ctx, ioases, devs, op);
              if (op.k === "cut" && ctx.ioas(ioases[op.ioas]!).iopt.areas.size > nAreas) stats.splits++;
            } catch (e) {
              if (!isErrno(e)) throw e;
              stats.failed++;
              if (e.code === "EFAULT" || e.code === "ENOMEM") stats.pinFailures++;
              const after = snapshot(ctx, host, ioases);
              if (op.k === "unmap" && e.code === "ENOENT" && after !== before) {
                // iopt_unmap_iova_range removes whole areas lowest-first before meeting one that sticks out.
                const now = ctx.ioas(ioases[op.ioas]!).iopt.areas.all();
                const gone = beforeAreas[op.ioas]!.filter((a) => !now.includes(a));
                const [s, l] = unmapRange(op);
                expect(gone.length).toBeGreaterThan(0);
                for (const a of gone) expect(a.start >= s && a.last <= l).toBe(true);
              } else {
                expect(after).toBe(before);
              }
            }
            if (op.k === "map" && op.iova === null && typeof result === "bigint") {
              stats.maps++;
              expect(result >= PAGE_SIZE).toBe(true);
              if (allowedBefore.length > 0) {
                const len = BigInt(op.pages) * PG;
                expect(allowedBefore.some((r) => result >= r.start && result + len - 1n <= r.last)).toBe(true);
              }
            }
            checkInvariants(ctx, host, ioases, devs);
          }
          for (const d of devs) ctx.unbindDevice(d);
          ctx.close();
          expect(host.proc.pinnedVm).toBe(0);
          expect(userOf(host.proc).lockedVm).toBe(0);
          expect([...host.driver.domains].filter((d) => d.type === "unmanaged")).toEqual([]);
        },
      ),
      { seed: 0x10fd, numRuns: 150 },
    );
    expect(stats.failed).toBeGreaterThan(50);
    expect(stats.maps).toBeGreaterThan(20);
    expect(stats.pinFailures).toBeGreaterThan(10);
    expect(stats.splits).toBeGreaterThan(10);
  });
});

function unmapRange(op: { at: number; pages: number }): [bigint, bigint] {
  const s = BigInt(op.at) * PG;
  return [s, s + BigInt(op.pages) * PG - 1n];
}

function run(ctx: IommufdCtx, ioases: number[], devs: IommufdDevice[], op: Op): bigint | number | undefined {
  switch (op.k) {
    case "map": {
      const flags = { fixed: op.iova !== null, read: true, write: op.write };
      const iova = op.iova === null ? 0n : BigInt(op.iova) * PG + BigInt(op.sub);
      return ctx.ioasMap(ioases[op.ioas]!, BASE + BigInt(op.va) * PG, BigInt(op.pages) * PG, iova, flags);
    }
    case "unmap": {
      const io = ctx.ioas(ioases[op.ioas]!).iopt;
      const areas = io.areas.all();
      if (op.whole && areas.length > 0) {
        const a = areas[op.at % areas.length]!;
        return ctx.ioasUnmap(ioases[op.ioas]!, a.start, a.last - a.start + 1n);
      }
      const [s, l] = unmapRange(op);
      return ctx.ioasUnmap(ioases[op.ioas]!, s, l - s + 1n);
    }
    case "copy": {
      const areas = ctx.ioas(ioases[op.src]!).iopt.areas.all();
      const a = areas.length ? areas[op.pick % areas.length]! : { start: 0x5000n };
      const src = a.start + BigInt(op.off) * PG;
      const flags = { fixed: op.iova !== null, read: true, write: false };
      const dst = op.iova === null ? 0n : BigInt(op.iova) * PG;
      return ctx.ioasCopy(ioases[op.dst]!, ioases[op.src]!, src, BigInt(op.pages) * PG, dst, flags);
    }
    case "allow":
      ctx.ioasAllowIovas(
        ioases[op.ioas]!,
        op.ranges.map(([s, l]) => ({ start: BigInt(s) * PG, last: BigInt(s + l) * PG - 1n })),
      );
      return;
    case "attach": {
      const d = devs[op.dev]!;
      return d.hwpt ? ctx.replaceDevice(d, ioases[op.ioas]!) : ctx.attachDevice(d, ioases[op.ioas]!);
    }
    case "detach": {
      const d = devs[op.dev]!;
      if (d.hwpt) ctx.detachDevice(d);
      return;
    }
    case "huge":
      return ctx.optionHugePages(ioases[op.ioas]!, op.on ? 1n : 0n);
    case "cut":
      // iopt_cut_iova, as the type1 v1 compat unmap does before unmapping.
      {
        const io = ctx.ioas(ioases[op.ioas]!).iopt;
        const areas = io.areas.all();
        const a = areas.length ? areas[op.pick % areas.length]! : { start: 0n };
        io.cutIova([a.start + BigInt(op.off) * PG + BigInt(op.sub)]);
      }
      return;
  }
}

function checkInvariants(ctx: IommufdCtx, host: ReturnType<typeof testHost>, ioases: number[], devs: IommufdDevice[]) {
  const pinnedPages = new Set<object>();
  for (const id of ioases) {
    const io = ctx.ioas(id).iopt;
    const areas = io.areas.all();
    for (let i = 1; i < areas.length; i++) expect(areas[i - 1]!.last < areas[i]!.start).toBe(true);
    for (const d of devs) {
      if (d.hwpt?.ioas !== ctx.ioas(id)) continue;
      for (const r of host.iommu.getResvRegions(d.dev)) {
        for (const a of areas) expect(a.last < r.start || a.start > r.start + r.length - 1n).toBe(true);
      }
    }
    // Every domain of the IOAS maps exactly the areas' pages, to the pinned frames.
    for (const dom of io.domains) {
      const ptes = (dom.driver as unknown as { ptes: Map<bigint, { phys: bigint }> }).ptes;
      let n = 0;
      for (const a of areas) {
        for (let iova = a.start; iova <= a.last; iova += PG) {
          const idx = a.firstIndex + Number((iova - a.start) / PG);
          expect(ptes.get(iova)?.phys).toBe(a.pages.physOf(idx));
          n++;
        }
      }
      expect(ptes.size).toBe(n);
    }
    for (const a of areas) {
      if (io.domains.length > 0) pinnedPages.add(a.pages);
      else if (!pinnedPages.has(a.pages))
        expect(a.pages.npinned === 0 || isHeldElsewhere(ctx, ioases, a.pages)).toBe(true);
    }
  }
  let total = 0;
  for (const p of pinnedPages) total += (p as { npinned: number }).npinned;
  expect(host.proc.pinnedVm).toBe(total);
}

function isHeldElsewhere(ctx: IommufdCtx, ioases: number[], pages: object): boolean {
  return ioases.some((id) => {
    const io = ctx.ioas(id).iopt;
    return io.domains.length > 0 && io.areas.all().some((a) => a.pages === pages);
  });
}
