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
 * Kernel-log fields are outside the diff; these floors are what the model reproduces on each set today (BLOCKED
 * domains on 6.12, the fault handler after the DMA burst, SMMU events per QEMU access). The one line it does not:
 * compat arm64 random-21:22, where the kernel's event dump was cut after two of its four words when the probe
 * read /dev/kmsg (its 50 ms wait ended while the event thread was still printing; elsewhere all ten ratelimited
 * events arrive in time), a wall-clock race the model has no clock to reproduce.
 */
const KLOG_FLOOR_BY_SET: Readonly<Record<string, number>> = {
  "linux-6.12-iommufd": 1063,
  "linux-6.12-iommufd-compat": 725,
};

/** Each fixture is replayed once, by whichever test needs it first, so no test depends on another's order. */
const transcripts = new Map<string, string>();
function replayed(f: Fixture, modset: Modset): string {
  const key = `${f.set} ${f.arch}/${f.name}`;
  let t = transcripts.get(key);
  if (t === undefined) {
    t = replayScenario(readScenario(f), { file: `${f.arch}/${f.name}.scn`, modset, kernel: KERNEL });
    transcripts.set(key, t);
  }
  return t;
}

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
      const klog = emptyKlogCount();
      for (const f of fixtures) compareKlog(`${f.arch}/${f.name}`, readTranscript(f), replayed(f, modset), klog);
      console.log(`${set} klog: ${klog.same}/${klog.total} identical`);
      if (klog.differing.length) console.log(`${set} klog fields that differ: ${klog.differing.join(", ")}`);
      const floor = KLOG_FLOOR_BY_SET[set];
      expect(floor, `${set} has a klog floor`).toBeDefined();
      expect(klog.total).toBeGreaterThanOrEqual(floor as number);
      expect(klog.same).toBeGreaterThanOrEqual(floor as number);
    });
  });
}

/** null when identical, else the first difference (or the error the replay threw). */
function replay(f: Fixture, modset: Modset): string | null {
  try {
    const d = diffTranscripts(readTranscript(f), replayed(f, modset));
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
