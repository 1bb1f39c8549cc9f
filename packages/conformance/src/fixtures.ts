/**
 * Where the kernel's answers live and how to read them: `<set>/<arch>/<name>.scn` (a scenario in the
 * recorder's language) beside `<name>.jsonl` (what the probe printed on that kernel), one folder per kernel
 * and module set (`linux-6.1`, `linux-6.12`, …; see README.md). Every test that compares the model with a
 * real kernel reads them through here, so the data has one home and turbo sees it as this package's input.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root: the set folders sit beside `src/` (and `dist/`). */
export const FIXTURE_ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The two recorder platforms. */
export const ARCHES = ["x86", "arm64"] as const;
export type Arch = (typeof ARCHES)[number];

/** One transcript line, as JSON.parse gives it. */
export type TranscriptRecord = Record<string, unknown>;

/** A recorded fixture: which set, which platform, which scenario. */
export interface Fixture {
  readonly set: string;
  readonly arch: Arch;
  readonly name: string;
}

/** The recorded sets (`linux-*` folders), sorted. */
export function fixtureSets(): string[] {
  return readdirSync(FIXTURE_ROOT)
    .filter((d) => d.startsWith("linux-") && existsSync(join(FIXTURE_ROOT, d, "x86")))
    .sort();
}

/** The scenarios of a set on one platform that have a transcript, sorted by name. */
export function listFixtures(set: string, arch: Arch): Fixture[] {
  const dir = join(FIXTURE_ROOT, set, arch);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".scn") && existsSync(join(dir, `${f.slice(0, -4)}.jsonl`)))
    .sort()
    .map((f) => ({ set, arch, name: f.slice(0, -4) }));
}

/** The scenario text (`NAME.scn`). */
export function readScenario(f: Fixture): string {
  return readFileSync(join(FIXTURE_ROOT, f.set, f.arch, `${f.name}.scn`), "utf8");
}

/** The kernel's transcript text (`NAME.jsonl`), byte for byte. */
export function readTranscript(f: Fixture): string {
  return readFileSync(join(FIXTURE_ROOT, f.set, f.arch, `${f.name}.jsonl`), "utf8");
}

/** A transcript's lines parsed, in order (blank lines skipped). */
export function transcriptRecords(text: string): TranscriptRecord[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as TranscriptRecord);
}

/** The kernel's records of one fixture. */
export function readRecords(f: Fixture): TranscriptRecord[] {
  return transcriptRecords(readTranscript(f));
}

/** The first record of a fixture whose `cmd` is `cmd` (throws when the kernel printed none). */
export function firstRecord(f: Fixture, cmd: string): TranscriptRecord {
  const r = readRecords(f).find((x) => x.cmd === cmd);
  if (!r) throw new Error(`${f.set}/${f.arch}/${f.name}: no "${cmd}" record`);
  return r;
}
