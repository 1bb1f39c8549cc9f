/**
 * Replays every Linux 6.12 iommufd transcript (@iommu-sim/conformance `linux-6.12-iommufd`: /dev/iommu,
 * the device cdev and a group on an iommufd; `linux-6.12-iommufd-compat`: every type1 scenario with
 * /dev/vfio/vfio served by iommufd's compat container) with the set's module set, raw bytes included,
 * and diffs each against the kernel's. Both were recorded on Debian's 6.12.117: the 6.12 profile answers.
 */
import {
  ARCHES,
  diffTranscripts,
  type Fixture,
  formatDiff,
  listFixtures,
  readScenario,
  readTranscript,
} from "@iommu-sim/conformance";
import type { KernelVersion, Modset } from "@iommu-sim/host";
import { afterAll, describe, expect, it } from "vitest";
import { compareKlog, emptyKlogCount } from "./klog-count.js";
import { replayScenario } from "./replay.js";

/** The kernel both sets were recorded on. */
const KERNEL: KernelVersion = "6.12";

const SETS: readonly { set: string; modset: Modset }[] = [
  { set: "linux-6.12-iommufd", modset: "iommufd" },
  { set: "linux-6.12-iommufd-compat", modset: "iommufd-compat" },
];

const results = new Map<string, boolean>();
/**
 * linux-6.12-iommufd's kernel-log fields are outside the diff, but the model reproduces all but one (arm64
 * random-21: QEMU's unaligned SMMU event addresses after the first): this floor keeps it so.
 */
const KLOG_FLOOR_IOMMUFD = 301;

for (const { set, modset } of SETS) {
  describe(`conformance: ${set} transcripts replay identically (modset ${modset})`, () => {
    const fixtures = ARCHES.flatMap((arch) => listFixtures(set, arch));

    it("has fixtures for both platforms", () => {
      for (const arch of ARCHES) expect(fixtures.filter((f) => f.arch === arch).length).toBeGreaterThanOrEqual(4);
    });

    for (const f of fixtures) {
      it(`${f.arch}/${f.name}`, () => {
        const what = replay(f, modset);
        results.set(`${set} ${f.arch}/${f.name}`, what === null);
        expect(what, `${set} ${f.arch}/${f.name}: ${what}`).toBeNull();
      });
    }
  });
}

describe("conformance: linux-6.12-iommufd kernel log", () => {
  it("BLOCKED domains (6.12): a bound, unattached device's DMA logs what the kernel logs (x86 no context entry, arm64 no event)", () => {
    const klog = emptyKlogCount();
    for (const f of ARCHES.flatMap((arch) => listFixtures("linux-6.12-iommufd", arch))) {
      const actual = replayScenario(readScenario(f), {
        file: `${f.arch}/${f.name}.scn`,
        modset: "iommufd",
        kernel: KERNEL,
      });
      compareKlog(`${f.arch}/${f.name}`, readTranscript(f), actual, klog);
    }
    console.log(`linux-6.12-iommufd klog: ${klog.same}/${klog.total} identical`);
    if (klog.differing.length) console.log(`klog fields that differ: ${klog.differing.join(", ")}`);
    expect(klog.same).toBeGreaterThanOrEqual(KLOG_FLOOR_IOMMUFD);
  });
});

/** null when identical, else the first difference (or the error the replay threw). */
function replay(f: Fixture, modset: Modset): string | null {
  try {
    const actual = replayScenario(readScenario(f), { file: `${f.arch}/${f.name}.scn`, modset, kernel: KERNEL });
    const d = diffTranscripts(readTranscript(f), actual);
    return d ? formatDiff(d) : null;
  } catch (e) {
    return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
}

afterAll(() => {
  for (const { set } of SETS) {
    for (const arch of ARCHES) {
      const mine = [...results].filter(([k]) => k.startsWith(`${set} ${arch}/`));
      console.log(`${set} ${arch}: ${mine.filter(([, ok]) => ok).length}/${mine.length} identical`);
    }
  }
});
