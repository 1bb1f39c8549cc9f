import { type Arch, firstRecord } from "@iommu-sim/conformance";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PciDevice } from "./device.js";
import { Iommu } from "./iommu.js";
import { PhysicalMemory } from "./phys-mem.js";
import { IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_WRITE } from "./prot.js";
import { RESV_TYPES, type ResvRegion, resvEnd, resvRegion, resvTypeOrder } from "./resv-region.js";
import { insertResvRegion, insertResvRegions, resvRegionLine, resvRegionsText } from "./resv-regions.js";
import { createMockIommu } from "./testing.js";

/**
 * A deliberately different implementation of the 6.1 rule: per type, union the intervals
 * (merging overlapping or touching ones), then sort everything by (start, type).
 */
function referenceMerge(regions: readonly ResvRegion[]): { start: bigint; end: bigint; type: string }[] {
  const out: { start: bigint; end: bigint; type: string }[] = [];
  for (const type of RESV_TYPES) {
    const iv = regions
      .filter((r) => r.type === type)
      .map((r) => ({ start: r.start, end: resvEnd(r) }))
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    let cur: { start: bigint; end: bigint } | null = null;
    for (const r of iv) {
      if (cur && r.start <= cur.end + 1n) {
        if (r.end > cur.end) cur.end = r.end;
      } else {
        if (cur) out.push({ ...cur, type });
        cur = { ...r };
      }
    }
    if (cur) out.push({ ...cur, type });
  }
  const ord = (t: string) => RESV_TYPES.indexOf(t as (typeof RESV_TYPES)[number]);
  return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : ord(a.type) - ord(b.type)));
}

const shape = (list: readonly ResvRegion[]) => list.map((r) => ({ start: r.start, end: resvEnd(r), type: r.type }));

// Small coordinates so overlaps, touches and equal starts are common.
const arbRegion = fc
  .record({
    start: fc.integer({ min: 0, max: 64 }),
    len: fc.integer({ min: 1, max: 16 }),
    type: fc.constantFrom(...RESV_TYPES),
  })
  .map(({ start, len, type }) => resvRegion(BigInt(start) * 0x1000n, BigInt(len) * 0x1000n, 0, type));

describe("iommu_insert_resv_region", () => {
  it("matches the reference merge for any list (property)", () => {
    fc.assert(
      fc.property(fc.array(arbRegion, { maxLength: 24 }), (regions) => {
        expect(shape(insertResvRegions([], regions))).toEqual(referenceMerge(regions));
      }),
      { seed: 4, numRuns: 400 },
    );
  });

  it("gives the same list for any insertion order (property)", () => {
    fc.assert(
      fc.property(
        fc
          .array(arbRegion, { minLength: 1, maxLength: 16 })
          .chain((rs) => fc.tuple(fc.constant(rs), fc.shuffledSubarray(rs, { minLength: rs.length }))),
        ([a, b]) => {
          expect(shape(insertResvRegions([], b))).toEqual(shape(insertResvRegions([], a)));
        },
      ),
      { seed: 5, numRuns: 300 },
    );
  });

  it("keeps the list sorted by start then type, with no same-type overlap or touch (property)", () => {
    fc.assert(
      fc.property(fc.array(arbRegion, { maxLength: 24 }), (regions) => {
        const list = insertResvRegions([], regions);
        for (let i = 1; i < list.length; i++) {
          const a = list[i - 1] as ResvRegion;
          const b = list[i] as ResvRegion;
          expect(a.start < b.start || (a.start === b.start && resvTypeOrder(a.type) < resvTypeOrder(b.type))).toBe(
            true,
          );
        }
        for (const a of list) {
          for (const b of list) {
            if (a !== b && a.type === b.type) expect(b.start > resvEnd(a) + 1n || a.start > resvEnd(b) + 1n).toBe(true);
          }
        }
      }),
      { seed: 6, numRuns: 200 },
    );
  });

  it("merges touching regions of one type but never regions of different types", () => {
    const a = resvRegion(0x1000n, 0x1000n, 0, "reserved");
    const b = resvRegion(0x2000n, 0x1000n, 0, "reserved");
    const m = resvRegion(0x1800n, 0x100n, 0, "msi");
    const list = insertResvRegions([], [a, m, b]);
    expect(shape(list)).toEqual([
      { start: 0x1000n, end: 0x2fffn, type: "reserved" },
      { start: 0x1800n, end: 0x18ffn, type: "msi" },
    ]);
  });

  it("does not modify the list it is given", () => {
    const list = [resvRegion(0x1000n, 0x1000n, 0, "reserved")];
    insertResvRegion(list, resvRegion(0x1800n, 0x1000n, 0, "reserved"));
    expect(shape(list)).toEqual([{ start: 0x1000n, end: 0x1fffn, type: "reserved" }]);
  });

  it("regression: a region ending at 2^64-1 absorbs nothing (the kernel's end+1 wraps to 0)", () => {
    const top = resvRegion((1n << 64n) - 0x2000n, 0x2000n, 0, "reserved");
    const inside = resvRegion((1n << 64n) - 0x1000n, 0x800n, 0, "reserved");
    expect(insertResvRegions([], [top, inside]).length).toBe(2);
  });
});

describe("sysfs reserved_regions and type", () => {
  it("prints 0x%016llx 0x%016llx %s with an inclusive end and sw-msi as msi", () => {
    const r = resvRegion(0x8000000n, 0x100000n, 0, "sw-msi");
    expect(resvRegionLine(r)).toBe("0x0000000008000000 0x00000000080fffff msi\n");
    expect(resvRegionsText([resvRegion(0x10n, 1n, 0, "direct-relaxable")])).toBe(
      "0x0000000000000010 0x0000000000000010 direct-relaxable\n",
    );
  });

  // The fixtures the kernel produced (@iommu-sim/conformance, recorded on Linux 6.1).
  const fixture = (platform: Arch) =>
    firstRecord({ set: "linux-6.1", arch: platform, name: "basic" }, "resv") as {
      regions: [string, string, string][];
      type: string;
    };

  const cases = [
    {
      platform: "x86" as const,
      // intel_iommu_get_resv_regions: the IOAPIC/MSI window as IOMMU_RESV_MSI, prot 0; no RMRR on q35.
      region: resvRegion(0xfee00000n, 0x100000n, 0, "msi"),
      defaultDomainType: "DMA-FQ" as const,
    },
    {
      platform: "arm64" as const,
      // arm_smmu_get_resv_regions: the software MSI window.
      region: resvRegion(0x8000000n, 0x100000n, IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO, "sw-msi"),
      defaultDomainType: "DMA" as const,
    },
  ];
  for (const c of cases) {
    it(`equals the Linux 6.1 ${c.platform} transcript`, () => {
      const want = fixture(c.platform);
      const mock = createMockIommu({ swMsi: false });
      mock.addReserved(c.region.start, c.region.length, c.region.type, undefined, c.region.prot);
      const iommu = new Iommu({ defaultDomainType: c.defaultDomainType });
      const dev = new PciDevice(new PhysicalMemory(), { bus: 0, slot: 1, classCode: 0x00ff00 });
      const group = iommu.probeDevice(dev, mock.ops);
      expect(group.resvRegionsText()).toBe(want.regions.map((r) => `${r.join(" ")}\n`).join(""));
      expect(group.typeText()).toBe(`${want.type}\n`);
      // VFIO owning the group does not change the sysfs type (it shows the default domain).
      iommu.claimDmaOwner(group, {});
      iommu.attachGroup(iommu.domainAlloc(mock.ops, "unmanaged"), group);
      expect(group.typeText()).toBe(`${want.type}\n`);
    });
  }

  it("prints unknown for a group without a default domain", () => {
    const mock = createMockIommu({ domainTypes: ["unmanaged", "blocked"] });
    const iommu = new Iommu();
    const group = iommu.probeDevice(new PciDevice(new PhysicalMemory(), { bus: 0, slot: 1, classCode: 0 }), mock.ops);
    expect(group.defaultDomain).toBeNull();
    expect(group.typeText()).toBe("unknown\n");
  });

  it("builds a group list from all member devices", () => {
    const mock = createMockIommu({ deviceGroup: () => "g" });
    const memory = new PhysicalMemory();
    const a = new PciDevice(memory, { bus: 0, slot: 1, classCode: 0 });
    const b = new PciDevice(memory, { bus: 0, slot: 2, classCode: 0 });
    mock.addReserved(0x1000000n, 0x1000n, "reserved", a);
    mock.addReserved(0x1001000n, 0x1000n, "reserved", b);
    const iommu = new Iommu();
    const g = iommu.probeDevice(a, mock.ops);
    iommu.probeDevice(b, mock.ops);
    expect(g.resvRegionsText()).toBe(
      "0x0000000001000000 0x0000000001001fff reserved\n0x0000000080000000 0x00000000800fffff msi\n",
    );
  });
});
