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
import { compareKlog, type KlogCount } from "./klog-compare.js";
import { replayScenario } from "./replay.js";

/** The kernel both sets were recorded on. */
const KERNEL: KernelVersion = "6.12";

const SETS: readonly { set: string; modset: Modset }[] = [
  { set: "linux-6.12-iommufd", modset: "iommufd" },
  { set: "linux-6.12-iommufd-compat", modset: "iommufd-compat" },
];

/** The klog/klog_all fields the model reproduces on each set (every one: they do not regress). */
const KLOG_FLOOR_BY_SET: Readonly<Record<string, number>> = {
  "linux-6.12-iommufd": 52,
  "linux-6.12-iommufd-compat": 80,
};

const results = new Map<string, boolean>();
/** Each fixture's klog count, kept by its replay (`set arch/name`). */
const klogs = new Map<string, KlogCount>();

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

    it("kernel log: the klog/klog_all fields the model reproduces do not regress", () => {
      // replays whatever the tests above have not (alone, with -t, that is every fixture)
      for (const f of fixtures) if (!klogs.has(`${set} ${f.arch}/${f.name}`)) replay(f, modset);
      const all = fixtures.map((f) => klogs.get(`${set} ${f.arch}/${f.name}`) as KlogCount);
      const same = all.reduce((n, k) => n + k.same, 0);
      const total = all.reduce((n, k) => n + k.total, 0);
      const differing = all.flatMap((k) => k.differing);
      console.log(`${set} klog: ${same}/${total} identical`);
      if (differing.length) console.log(`${set} klog fields that differ: ${differing.join(", ")}`);
      const floor = KLOG_FLOOR_BY_SET[set];
      expect(floor, `${set} has a klog floor`).toBeDefined();
      expect(total).toBeGreaterThanOrEqual(floor as number);
      expect(same).toBeGreaterThanOrEqual(floor as number);
    });
  });
}

/** null when identical, else the first difference (or the error the replay threw). */
function replay(f: Fixture, modset: Modset): string | null {
  try {
    const actual = replayScenario(readScenario(f), { file: `${f.arch}/${f.name}.scn`, modset, kernel: KERNEL });
    const expected = readTranscript(f);
    const klog: KlogCount = { same: 0, total: 0, differing: [] };
    compareKlog(`${f.arch}/${f.name}`, expected, actual, klog);
    klogs.set(`${f.set} ${f.arch}/${f.name}`, klog);
    const d = diffTranscripts(expected, actual);
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
