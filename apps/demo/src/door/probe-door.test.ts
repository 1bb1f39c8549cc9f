/**
 * The native door against the real kernel's answers: the recorder's own probe.c, compiled unchanged with
 * the system's `cc`, runs through `iommu-demo exec` (preload library + server) on the board each
 * committed transcript was recorded on, built with that kernel's profile (every Linux 6.1 transcript; the
 * scenarios 6.12 and 7.3 share with 6.1 on one platform each, to keep it light), and prints the same
 * transcript, compared as the replay suite compares (hello's kernel/kernel_version/machine and the klog
 * fields excepted).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { diffTranscripts, FIXTURE_ROOT, formatDiff, listFixtures, parseScenario } from "@iommu-sim/conformance";
import { type BoardName, createBoard, type KernelVersion } from "@iommu-sim/host";
import { execThroughDoor, findCompiler } from "@iommu-sim/host/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KNOWN_DIFFERENCES } from "../replay/known-differences.js";
import { replayScenario, vfioParamsOf } from "../replay/replay.js";
import { recorderProbe } from "./shared.js";

/** Which sets run through the door, each with its kernel's profile, on which platforms. */
const DOOR_SETS: readonly { set: string; kernel: KernelVersion; arches: readonly ("x86" | "arm64")[] }[] = [
  { set: "linux-6.1", kernel: "6.1", arches: ["x86", "arm64"] },
  { set: "linux-6.12", kernel: "6.12", arches: ["arm64"] },
  { set: "linux-7.3", kernel: "7.3", arches: ["x86"] },
];
/** 6.12 and 7.3 run only the scenarios all three kernels share (6.12's re-recorded random ones are replayed elsewhere). */
const SHARED = (arch: "x86" | "arm64") => new Set(listFixtures("linux-7.3", arch).map((f) => f.name));
/** The known differences are linux-6.1's (replay suite); the other sets have none. */
const knownOf = (set: string, key: string) => (set === "linux-6.1" ? KNOWN_DIFFERENCES[key] : undefined);
const cc = findCompiler();
const probeSrc = recorderProbe();
const skip = !cc
  ? "no C compiler (cc): the native door cannot be built"
  : !probeSrc
    ? "shared/conformance/recorder/probe/probe.c not found beside the clone (set IOMMU_SIM_SHARED)"
    : null;
if (skip) console.warn(`probe-door: skipped: ${skip}`);

const fixtures = DOOR_SETS.flatMap(({ set, kernel, arches }) =>
  arches.flatMap((arch) =>
    listFixtures(set, arch)
      .filter((f) => set === "linux-6.1" || SHARED(arch).has(f.name))
      .map((f) => ({ set, kernel, arch, name: f.name })),
  ),
);

let probe = "";
/** Counts by `set arch`. */
const identical = new Map<string, number>();
const klogSame = new Map<string, number>();
/** Fixtures whose door transcript equals the replay's byte for byte after hello (klog included). */
const sameAsModel = new Map<string, number>();
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** Runs the compiled probe on a scenario through the door, as the recorder VM's /init runs it. */
async function runThroughDoor(set: string, kernel: KernelVersion, arch: string, name: string): Promise<string> {
  const file = join(FIXTURE_ROOT, set, arch, `${name}.scn`);
  const scn = parseScenario(readFileSync(file, "utf8"));
  const board = createBoard(scn.header.platform as BoardName, {
    kernel,
    eduCount: scn.header.devices || 1,
    vfioParams: vfioParamsOf(scn.header.params),
  });
  const args = board.edus.flatMap((d) => [d.name, String(board.groupIdOf(d))]);
  const r = await execThroughDoor(board, [probe, file, ...args], { stdio: "pipe" });
  if (r.stderr) console.log(`${set}/${arch}/${name} stderr: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(skip !== null).concurrent("the recorder's probe.c through the native door", () => {
  beforeAll(() => {
    probe = join(mkdtempSync(join(tmpdir(), "iommu-sim-probe-")), "probe");
    // compiled as the recorder builds it, minus -static (the preload library needs the dynamic loader)
    const r = spawnSync(cc!, ["-O2", "-Wall", "-o", probe, probeSrc!], { cwd: dirname(probeSrc!), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
  });

  for (const { set, kernel, arch, name } of fixtures) {
    const key = `${set} ${arch}`;
    it(`${set}/${arch}/${name}`, async ({ expect }) => {
      const expected = readFileSync(join(FIXTURE_ROOT, set, arch, `${name}.jsonl`), "utf8");
      const actual = await runThroughDoor(set, kernel, arch, name);
      const d = diffTranscripts(expected, actual);
      const replayed = replayScenario(readFileSync(join(FIXTURE_ROOT, set, arch, `${name}.scn`), "utf8"), { kernel });
      const body = (t: string) => t.split("\n").slice(1).join("\n");
      // the door adds nothing of its own: the real probe sees what the replay's port of it sees, klog included
      expect(body(actual)).toBe(body(replayed));
      bump(sameAsModel, key);
      const known = knownOf(set, `${arch}/${name}`);
      if (known !== undefined) {
        // a rule the model misses (replay suite's list): through the door the program sees exactly the model
        const vsModel = diffTranscripts(replayed, actual);
        expect(vsModel, vsModel ? formatDiff(vsModel) : "").toBeNull();
        expect(
          d,
          `${arch}/${name} is a known difference but now agrees with the kernel: update the list`,
        ).not.toBeNull();
        return;
      }
      expect(d, d ? formatDiff(d) : "").toBeNull();
      bump(identical, key);
      if (body(expected) === body(actual)) bump(klogSame, key);
    });
  }

  afterAll(() => {
    for (const { set, arches } of DOOR_SETS)
      for (const arch of arches) {
        const key = `${set} ${arch}`;
        const n = fixtures.filter((f) => f.set === set && f.arch === arch).length;
        console.log(
          `probe.c through the door: ${key}: ${identical.get(key) ?? 0}/${n} identical (${klogSame.get(key) ?? 0} byte for byte after hello, klog included); byte for byte the model's own replay: ${sameAsModel.get(key) ?? 0}; the rest are the model's known differences, reproduced exactly`,
        );
      }
  });
});
