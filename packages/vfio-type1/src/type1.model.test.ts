/**
 * Model-based test: random MAP/UNMAP sequences against a small, obviously-correct model of type1's
 * mappings (a list of [iova, size, vaddr]) on the core's mock driver (2 KiB IOMMU pages, aperture
 * [16 MiB, 2 GiB)). After every step the return values, the mapping set, DMA_AVAIL and the IOMMU's actual
 * translations (iova_to_phys of every mapped page = the process page at its vaddr; unmapped = 0) agree.
 */
import { isErrno, PAGE_SIZE } from "@iommu/core";
import { VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU } from "@vfio/uapi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BASE, makeHost, openContainer } from "./test-support/hosts.js";
import { type1State } from "./testing.js";

const IOVA0 = 1n << 24n; // MOCK_APERTURE_START
const LIMIT = 6;

interface M {
  iova: bigint;
  size: bigint;
  vaddr: bigint;
}

type Op =
  | { kind: "map"; page: number; n: number; vpage: number }
  | { kind: "unmap"; page: number; n: number }
  | { kind: "all" };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 15,
    arbitrary: fc.record({
      kind: fc.constant("map" as const),
      page: fc.nat(31),
      n: fc.integer({ min: 1, max: 6 }),
      vpage: fc.nat(40),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({ kind: fc.constant("unmap" as const), page: fc.nat(31), n: fc.integer({ min: 1, max: 12 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "all" as const }) },
);

/** The model: obviously correct by construction (linear scans, no trees). */
function modelMap(ms: M[], m: M): string {
  if (ms.some((x) => x.iova < m.iova + m.size && m.iova < x.iova + x.size)) return "EEXIST";
  if (ms.length >= LIMIT) return "ENOSPC";
  ms.push(m);
  return "ok";
}

function modelUnmap(ms: M[], iova: bigint, size: bigint, v2: boolean): { r: string; unmapped: bigint; left: M[] } {
  const end = iova + size;
  if (v2) {
    if (ms.some((x) => x.iova < iova && iova < x.iova + x.size)) return { r: "EINVAL", unmapped: 0n, left: ms };
    if (ms.some((x) => x.iova < end && end < x.iova + x.size)) return { r: "EINVAL", unmapped: 0n, left: ms };
  } else if (ms.some((x) => x.iova < iova && iova < x.iova + x.size)) {
    // v1: the walk starts at the mapping holding iova and stops at once: success, nothing unmapped.
    return { r: "ok", unmapped: 0n, left: ms };
  }
  const gone = ms.filter((x) => x.iova >= iova && x.iova < end);
  return { r: "ok", unmapped: gone.reduce((n, x) => n + x.size, 0n), left: ms.filter((x) => !gone.includes(x)) };
}

describe.each([
  ["type1v2", VFIO_TYPE1v2_IOMMU],
  ["type1 (v1)", VFIO_TYPE1_IOMMU],
])("model-based MAP/UNMAP, %s, mock driver", (_name, type) => {
  it("agrees with the model after every step", { tags: ["slow"] }, () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 5, maxLength: 40 }), (ops) => {
        const h = makeHost({ shape: "mock", params: { dmaEntryLimit: LIMIT } });
        const { container } = openContainer(h, type);
        const t = type1State(container.backend!);
        const domain = t.domains[0]!.domain;
        let model: M[] = [];
        const v2 = type === VFIO_TYPE1v2_IOMMU;
        for (const o of ops) {
          if (o.kind === "map") {
            const m = {
              iova: IOVA0 + BigInt(o.page) * PAGE_SIZE,
              size: BigInt(o.n) * PAGE_SIZE,
              vaddr: BASE + BigInt(o.vpage) * PAGE_SIZE,
            };
            const want = modelMap(model, m);
            let got = "ok";
            try {
              container.mapDma({ ...m, flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE });
            } catch (e) {
              if (!isErrno(e)) throw e;
              got = e.code;
            }
            expect(got).toBe(want);
          } else {
            const iova = o.kind === "all" ? 0n : IOVA0 + BigInt(o.page) * PAGE_SIZE;
            const size = o.kind === "all" ? 0n : BigInt(o.n) * PAGE_SIZE;
            const want =
              o.kind === "all"
                ? { r: "ok", unmapped: model.reduce((n, x) => n + x.size, 0n), left: [] }
                : modelUnmap(model, iova, size, v2);
            let got = "ok";
            let unmapped = -1n;
            try {
              unmapped = container.unmapDma({ iova, size, flags: o.kind === "all" ? 2 : 0 });
            } catch (e) {
              if (!isErrno(e)) throw e;
              got = e.code;
            }
            expect(got).toBe(want.r);
            if (want.r === "ok") expect(unmapped).toBe(want.unmapped);
            model = want.left;
          }
          // Same mapping set, same DMA_AVAIL, same locked_vm (every page charged once per mapping).
          const mine = t.dmas.all().map((d) => ({ iova: d.iova, size: d.size, vaddr: d.vaddr }));
          expect(mine).toEqual([...model].sort((a, b) => (a.iova < b.iova ? -1 : 1)));
          expect(t.dmaAvail).toBe(LIMIT - model.length);
          expect(h.proc.lockedVm).toBe(Number(model.reduce((n, x) => n + x.size, 0n) / PAGE_SIZE));
          // The IOMMU really translates mapped pages to the process's pages, and nothing else.
          for (let p = 0n; p < 48n; p++) {
            const iova = IOVA0 + p * PAGE_SIZE;
            const m = model.find((x) => x.iova <= iova && iova < x.iova + x.size);
            const phys = h.iommu.iovaToPhys(domain, iova);
            if (!m) expect(phys).toBe(0n);
            else {
              const seg = h.proc.faultIn(m.vaddr + (iova - m.iova), true, 1);
              expect(phys).toBe(seg.phys);
            }
          }
        }
      }),
      { numRuns: 50, seed: 0x51 },
    );
  });
});
