/**
 * Replays every committed type1 fixture set (@iommu-sim/conformance linux-6.1/, linux-6.12/, linux-7.3/,
 * each {x86,arm64}) through the model, each with its kernel's profile (`--kernel`), and diffs the transcript
 * against the kernel's, raw bytes included. A fixture that differs because a lower layer is still wrong is
 * listed, with the reason, in KNOWN_DIFFERENCES: it is still replayed, its first difference printed, and the
 * test fails if it starts to agree (so the list cannot go stale).
 */
import {
  ARCHES,
  diffTranscripts,
  type Fixture,
  fixtureSets,
  formatDiff,
  listFixtures,
  readScenario,
  readTranscript,
  type TranscriptDiff,
} from "@iommu-sim/conformance";
import { KERNEL_VERSIONS, type KernelVersion } from "@iommu-sim/host";
import { afterAll, describe, expect, it } from "vitest";
import { compareKlog, type KlogCount } from "./klog-count.js";
import { KNOWN_DIFFERENCES } from "./known-differences.js";
import { replayScenario } from "./replay.js";

/** The type1 sets, one per kernel the model has a profile for: `linux-<version>/` answered as `<version>`. */
const TYPE1_SETS: readonly { set: string; kernel: KernelVersion }[] = KERNEL_VERSIONS.map((kernel) => ({
  set: `linux-${kernel}`,
  kernel,
}));
/** Sets recorded with the iommufd module sets: replayed by their own suite (the iommufd package's), not here. */
const IOMMUFD_SETS = ["linux-6.12-iommufd", "linux-6.12-iommufd-compat"];
const SET = "linux-6.1";

/** Known differences of each set (`arch/name` → why; linux-6.1's list is shared with the door test). */
const KNOWN_BY_SET: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  [SET]: KNOWN_DIFFERENCES,
  "linux-6.12": {},
  "linux-7.3": {},
};

interface Outcome {
  diff: TranscriptDiff | null;
  error: string | null;
}

/**
 * Kernel log fields are outside the behaviour diff (the conformance README), but the model reproduces them
 * where it can know the text: these floors are what it reaches today on each type1 set (every field: the
 * IOMMU's fault handler waits for the faulting burst, host's irq/bql.ts, and QEMU cuts a faulting access
 * into aligned words, arm-smmu's recordFault).
 */
const KLOG_FLOOR_BY_SET: Readonly<Record<string, number>> = {
  "linux-6.1": 1843,
  "linux-6.12": 1843,
  "linux-7.3": 1843,
};
const KLOG_FLOOR = KLOG_FLOOR_BY_SET[SET] as number;

/** Each fixture is replayed once, by whichever test needs it first, so no test depends on another's order. */
const outcomes = new Map<string, { outcome: Outcome; klog: KlogCount }>();

function replayFixture(f: Fixture, kernel: KernelVersion): { outcome: Outcome; klog: KlogCount } {
  const key = `${f.arch}/${f.name}`;
  const done = outcomes.get(`${f.set}/${key}`);
  if (done) return done;
  const klog: KlogCount = { same: 0, total: 0, differing: [] };
  const expected = readTranscript(f);
  let outcome: Outcome;
  try {
    const actual = replayScenario(readScenario(f), { file: `${f.set}/${key}.scn`, kernel });
    compareKlog(key, expected, actual, klog);
    outcome = { diff: diffTranscripts(expected, actual), error: null };
  } catch (e) {
    outcome = { diff: null, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
  const r = { outcome, klog };
  outcomes.set(`${f.set}/${key}`, r);
  return r;
}

const fixtures = ARCHES.flatMap((arch) => listFixtures(SET, arch));

describe("conformance: the type1 sets are the kernels the model has profiles for", () => {
  it("every recorded set is a type1 set replayed below or an iommufd set replayed elsewhere", () => {
    expect([...fixtureSets()].sort()).toEqual([...TYPE1_SETS.map((s) => s.set), ...IOMMUFD_SETS].sort());
  });
});

describe("conformance: Linux 6.1 transcripts replay identically", () => {
  it("has fixtures for both platforms", () => {
    expect(fixtures.filter((f) => f.arch === "x86").length).toBeGreaterThanOrEqual(12);
    expect(fixtures.filter((f) => f.arch === "arm64").length).toBeGreaterThanOrEqual(13);
    for (const k of Object.keys(KNOWN_DIFFERENCES)) {
      expect(
        fixtures.some((f) => `${f.arch}/${f.name}` === k),
        `known difference ${k} names a fixture`,
      ).toBe(true);
    }
  });

  it("is not vacuous: the same scenario on a differently configured model differs where the kernel's rule shows", () => {
    // dma_entry_limit=3 removed from the header: the first DMA_AVAIL cap must differ (65535 vs 3)
    const f: Fixture = { set: SET, arch: "x86", name: "dma-entry-limit" };
    const scn = readScenario(f).replace("param dma_entry_limit=3", "# (param removed)");
    const expected = readTranscript(f);
    const d = diffTranscripts(expected, replayScenario(scn));
    expect(d).toMatchObject({ line: 1, cmd: "hello", field: "params" });
    const body = (t: string) => t.split("\n").slice(1).join("\n");
    expect(diffTranscripts(body(expected), body(replayScenario(scn)))).toMatchObject({ line: 2, field: "caps" });
  });

  it("is not vacuous across kernels: a later kernel's transcript differs under the previous kernel's profile", () => {
    const firstDiff = (set: string, arch: "x86" | "arm64", name: string, kernel: KernelVersion) => {
      const f: Fixture = { set, arch, name };
      return diffTranscripts(readTranscript(f), replayScenario(readScenario(f), { kernel }));
    };
    // 6.12's padded capability chain (IOVA_RANGE at 72), 7.3's EOVERFLOW, 7.3's arm64 group numbers
    expect(firstDiff("linux-6.12", "x86", "info-argsz", "6.1")).not.toBeNull();
    expect(firstDiff("linux-7.3", "x86", "map-errors-args", "6.12")).not.toBeNull();
    expect(firstDiff("linux-7.3", "arm64", "basic", "6.12")).toMatchObject({ line: 1, field: "group" });
  });

  for (const f of fixtures) {
    const key = `${f.arch}/${f.name}`;
    it(key, () => {
      const o = replayFixture(f, "6.1").outcome;
      const what = o.error ?? (o.diff ? formatDiff(o.diff) : null);
      const known = KNOWN_DIFFERENCES[key];
      if (known !== undefined) {
        console.log(`known difference ${key}: ${what ?? "(now identical)"}\n  reason: ${known}`);
        expect(what, `${key} is listed as a known difference but now replays identically: remove it`).not.toBeNull();
        return;
      }
      expect(what, `${key}: ${what}`).toBeNull();
    });
  }

  it("kernel log: the klog/klog_all fields the model reproduces do not regress", () => {
    // replays whatever the tests above have not (alone, with -t, that is every fixture)
    const all = fixtures.map((f) => replayFixture(f, "6.1").klog);
    const same = all.reduce((n, k) => n + k.same, 0);
    const total = all.reduce((n, k) => n + k.total, 0);
    const differing = all.flatMap((k) => k.differing);
    console.log(`klog: ${same}/${total} identical`);
    if (differing.length) console.log(`klog fields that differ: ${differing.join(", ")}`);
    expect(total).toBeGreaterThanOrEqual(KLOG_FLOOR);
    expect(same).toBeGreaterThanOrEqual(KLOG_FLOOR);
  });
});

for (const { set, kernel } of TYPE1_SETS.filter((s) => s.set !== SET)) {
  const known = KNOWN_BY_SET[set] ?? {};
  const setFixtures = ARCHES.flatMap((arch) => listFixtures(set, arch));
  describe(`conformance: ${set} transcripts replay identically with the ${kernel} profile`, () => {
    it("has the linux-6.1 scenarios, unchanged, on both platforms", () => {
      for (const arch of ARCHES) {
        const mine = listFixtures(set, arch);
        expect(mine.length, `${set} ${arch}`).toBeGreaterThanOrEqual(arch === "x86" ? 12 : 13);
        for (const f of mine) {
          const base: Fixture = { set: SET, arch, name: f.name };
          expect(readScenario(f), `${set}/${arch}/${f.name}.scn`).toBe(readScenario(base));
        }
      }
      for (const k of Object.keys(known)) expect(setFixtures.some((f) => `${f.arch}/${f.name}` === k)).toBe(true);
    });

    it("kernel log: the klog/klog_all fields the model reproduces do not regress", () => {
      const all = setFixtures.map((f) => replayFixture(f, kernel).klog);
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

    for (const f of setFixtures) {
      const key = `${f.arch}/${f.name}`;
      it(key, () => {
        const o = replayFixture(f, kernel).outcome;
        const what = o.error ?? (o.diff ? formatDiff(o.diff) : null);
        const why = known[key];
        if (why !== undefined) {
          console.log(`known difference ${set}/${key}: ${what ?? "(now identical)"}\n  reason: ${why}`);
          expect(
            what,
            `${set}/${key} is listed as a known difference but now replays identically: remove it`,
          ).not.toBeNull();
          return;
        }
        expect(what, `${set}/${key}: ${what}`).toBeNull();
      });
    }
  });
}

/** One line per kernel and platform, as the issue asks (`linux-6.12 x86: N/M identical`), and its klog count. */
afterAll(() => {
  for (const { set } of TYPE1_SETS)
    for (const arch of ARCHES) {
      const mine = [...outcomes].filter(([k]) => k.startsWith(`${set}/${arch}/`)).map(([, r]) => r);
      const ok = mine.filter((r) => !r.outcome.error && !r.outcome.diff).length;
      const klogSame = mine.reduce((n, r) => n + r.klog.same, 0);
      const klogTotal = mine.reduce((n, r) => n + r.klog.total, 0);
      console.log(`${set} ${arch}: ${ok}/${mine.length} identical (klog ${klogSame}/${klogTotal})`);
    }
});
