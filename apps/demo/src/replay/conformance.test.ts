/**
 * Replays every committed Linux 6.1 fixture (@iommu-sim/conformance, linux-6.1/{x86,arm64}) through the
 * model and diffs the transcript against the kernel's. A fixture that differs because a lower layer is
 * still wrong is listed, with the reason, in KNOWN_DIFFERENCES: it is still replayed, its first
 * difference printed, and the test fails if it starts to agree (so the list cannot go stale).
 */
import {
  ARCHES,
  diffTranscripts,
  type Fixture,
  formatDiff,
  LOG_FIELDS,
  listFixtures,
  readScenario,
  readTranscript,
  type TranscriptDiff,
} from "@iommu-sim/conformance";
import { afterAll, describe, expect, it } from "vitest";
import { KNOWN_DIFFERENCES } from "./known-differences.js";
import { replayScenario } from "./replay.js";

const SET = "linux-6.1";

interface Outcome {
  diff: TranscriptDiff | null;
  error: string | null;
}

/**
 * Kernel log fields are outside the behaviour diff (shared/conformance/README.md), but the model
 * reproduces them where it can know the text: this floor is what it reaches today (apps/demo/README.md).
 */
const KLOG_FLOOR = 171;

interface KlogCount {
  same: number;
  total: number;
  /** `arch/name:line field` of each field that differs. */
  differing: string[];
}

/** Compares every `klog`/`klog_all` field of the kernel's transcript with the model's, line by line. */
function compareKlog(key: string, expected: string, actual: string, into: KlogCount): void {
  const exp = expected.split("\n").filter(Boolean);
  const act = actual.split("\n").filter(Boolean);
  exp.forEach((line, i) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    let a: Record<string, unknown> = {};
    try {
      a = JSON.parse(act[i] ?? "{}") as Record<string, unknown>;
    } catch {}
    for (const f of LOG_FIELDS) {
      if (!(f in e)) continue;
      into.total++;
      if (JSON.stringify(e[f]) === JSON.stringify(a[f])) into.same++;
      else into.differing.push(`${key}:${i + 1} ${f}`);
    }
  });
}

/** Each fixture is replayed once, by whichever test needs it first, so no test depends on another's order. */
const outcomes = new Map<string, { outcome: Outcome; klog: KlogCount }>();

function replayFixture(f: Fixture): { outcome: Outcome; klog: KlogCount } {
  const key = `${f.arch}/${f.name}`;
  const done = outcomes.get(key);
  if (done) return done;
  const klog: KlogCount = { same: 0, total: 0, differing: [] };
  const expected = readTranscript(f);
  let outcome: Outcome;
  try {
    const actual = replayScenario(readScenario(f), { file: `${key}.scn` });
    compareKlog(key, expected, actual, klog);
    outcome = { diff: diffTranscripts(expected, actual), error: null };
  } catch (e) {
    outcome = { diff: null, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
  const r = { outcome, klog };
  outcomes.set(key, r);
  return r;
}

const fixtures = ARCHES.flatMap((arch) => listFixtures(SET, arch));

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

  for (const f of fixtures) {
    const key = `${f.arch}/${f.name}`;
    it(key, () => {
      const o = replayFixture(f).outcome;
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
    const all = fixtures.map((f) => replayFixture(f).klog);
    const same = all.reduce((n, k) => n + k.same, 0);
    const total = all.reduce((n, k) => n + k.total, 0);
    const differing = all.flatMap((k) => k.differing);
    console.log(`klog: ${same}/${total} identical`);
    if (differing.length) console.log(`klog fields that differ: ${differing.join(", ")}`);
    expect(total).toBeGreaterThanOrEqual(KLOG_FLOOR);
    expect(same).toBeGreaterThanOrEqual(KLOG_FLOOR);
  });

  afterAll(() => {
    const count = (arch: string, ok: boolean) =>
      [...outcomes].filter(([k, r]) => k.startsWith(`${arch}/`) && (!ok || (!r.outcome.error && !r.outcome.diff)))
        .length;
    console.log(
      `x86: ${count("x86", true)}/${count("x86", false)} identical, arm64: ${count("arm64", true)}/${count("arm64", false)} identical`,
    );
  });
});
