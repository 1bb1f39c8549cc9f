/**
 * Hardware-side speed: a device translation that hits the TLB, one that misses and walks four
 * levels of driver-written tables, and the bare walker. Issue #5 targets: TLB hit ≤ 200 ns, full
 * 4-level walk ≤ 1 µs. The reference in each group is the same work through a different path.
 */
import { IOMMU_READ, IOMMU_WRITE } from "@iommu/core";
import { bench, describe } from "vitest";
import { makeRig, RAM_BASE } from "../testing/rig.js";
import { walk } from "./walker.js";

const RW = IOMMU_READ | IOMMU_WRITE;
const PAGE = 0x1000n;
const N = 4096n;

// Tables: N 4 KiB pages spread over 8 leaf tables.
const rig = makeRig({}, {}, false);
const dev = rig.pci(1);
const d = rig.domain([dev]);
d.mapPages(0x10000000n, RAM_BASE, PAGE, Number(N), RW);
const req = (iova: bigint) => ({ device: dev, requesterId: dev.requesterId, iova, access: "read" as const });
for (let i = 0n; i < N; i++) rig.hw.translate(req(0x10000000n + i * PAGE));

// Same tables, a one-entry TLB: every translation of a new page misses and walks.
const missRig = makeRig({ tlbCapacity: 1 }, {}, false);
const missDev = missRig.pci(1);
missRig.domain([missDev]).mapPages(0x10000000n, RAM_BASE, PAGE, Number(N), RW);
const missReq = (iova: bigint) => ({
  device: missDev,
  requesterId: missDev.requesterId,
  iova,
  access: "read" as const,
});
missRig.hw.translate(missReq(0x10000000n));
const cfg = missRig.hw.cachedConfig(missDev.requesterId);
if (cfg?.kind !== "translate") throw new Error("stream not configured");

// Requests are built up front so the loop measures the SMMU, not the bench's bigint arithmetic.
const iovas = Array.from({ length: Number(N) }, (_, i) => 0x10000000n + BigInt(i) * PAGE + 0x40n);
const hitReqs = iovas.map(req);
const missReqs = iovas.map(missReq);
const MASK = Number(N) - 1;

describe("device translation", () => {
  let i = 0;
  bench("TLB hit (translate)", () => {
    rig.hw.translate(hitReqs[i++ & MASK] as ReturnType<typeof req>);
  });
  let j = 0;
  bench("TLB miss: 4-level walk + fill (translate)", () => {
    missRig.hw.translate(missReqs[j++ & MASK] as ReturnType<typeof req>);
  });
  let k = 0;
  bench("bare 4-level walk (walker only)", () => {
    walk(missRig.memory, cfg.walk, iovas[k++ & MASK] as bigint);
  });
});

describe("device DMA of 64 bytes", () => {
  bench("dmaRead through the SMMU (TLB hit)", () => {
    dev.dmaRead(0x10000000n + 0x80n, 64);
  });
  bench("reference: the same read straight from memory", () => {
    rig.memory.read(RAM_BASE + 0x80n, 64);
  });
});
