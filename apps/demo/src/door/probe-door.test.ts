/**
 * The native door against the real kernel's answers: the recorder's own probe.c, compiled unchanged with
 * the system's `cc`, runs through `iommu-demo exec` (preload library + server) on the board each
 * committed Linux 6.1 transcript was recorded on, and prints the same transcript, compared as the
 * replay suite compares (hello's kernel/kernel_version/machine and the klog fields excepted).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { diffTranscripts, FIXTURE_ROOT, formatDiff, parseScenario } from "@iommu-sim/conformance";
import { type BoardName, createBoard } from "@iommu-sim/host";
import { execThroughDoor, findCompiler } from "@iommu-sim/host/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KNOWN_DIFFERENCES } from "../replay/known-differences.js";
import { replayScenario, vfioParamsOf } from "../replay/replay.js";
import { recorderProbe } from "./shared.js";

const ROOT = join(FIXTURE_ROOT, "linux-6.1");
const cc = findCompiler();
const probeSrc = recorderProbe();
const skip = !cc
  ? "no C compiler (cc): the native door cannot be built"
  : !probeSrc
    ? "shared/conformance/recorder/probe/probe.c not found beside the clone (set IOMMU_SIM_SHARED)"
    : null;
if (skip) console.warn(`probe-door: skipped: ${skip}`);

const fixtures = (["x86", "arm64"] as const).flatMap((arch) =>
  readdirSync(join(ROOT, arch))
    .filter((f) => f.endsWith(".scn"))
    .sort()
    .map((f) => ({ arch, name: f.slice(0, -4) })),
);

let probe = "";
const identical = { x86: 0, arm64: 0 };
const klogSame = { x86: 0, arm64: 0 };
/** Fixtures whose door transcript equals the replay's byte for byte after hello (klog included). */
const sameAsModel = { x86: 0, arm64: 0 };

/** Runs the compiled probe on a scenario through the door, as the recorder VM's /init runs it. */
async function runThroughDoor(arch: string, name: string): Promise<string> {
  const file = join(ROOT, arch, `${name}.scn`);
  const scn = parseScenario(readFileSync(file, "utf8"));
  const board = createBoard(scn.header.platform as BoardName, {
    eduCount: scn.header.devices || 1,
    vfioParams: vfioParamsOf(scn.header.params),
  });
  const args = board.edus.flatMap((d) => [d.name, String(board.groupIdOf(d))]);
  const r = await execThroughDoor(board, [probe, file, ...args], { stdio: "pipe" });
  if (r.stderr) console.log(`${arch}/${name} stderr: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(skip !== null).concurrent("the recorder's probe.c through the native door", () => {
  beforeAll(() => {
    probe = join(mkdtempSync(join(tmpdir(), "iommu-sim-probe-")), "probe");
    // compiled as the recorder builds it, minus -static (the preload library needs the dynamic loader)
    const r = spawnSync(cc!, ["-O2", "-Wall", "-o", probe, probeSrc!], { cwd: dirname(probeSrc!), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
  });

  for (const { arch, name } of fixtures) {
    it(`${arch}/${name}`, async ({ expect }) => {
      const expected = readFileSync(join(ROOT, arch, `${name}.jsonl`), "utf8");
      const actual = await runThroughDoor(arch, name);
      const d = diffTranscripts(expected, actual);
      const replayed = replayScenario(readFileSync(join(ROOT, arch, `${name}.scn`), "utf8"));
      const body = (t: string) => t.split("\n").slice(1).join("\n");
      // the door adds nothing of its own: the real probe sees what the replay's port of it sees, klog included
      expect(body(actual)).toBe(body(replayed));
      sameAsModel[arch]++;
      const known = KNOWN_DIFFERENCES[`${arch}/${name}`];
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
      identical[arch]++;
      if (body(expected) === body(actual)) klogSame[arch]++;
    });
  }

  afterAll(() => {
    const n = (a: string) => fixtures.filter((f) => f.arch === a).length;
    console.log(
      `probe.c through the door: x86 ${identical.x86}/${n("x86")} identical (${klogSame.x86} byte for byte after hello, klog included), arm64 ${identical.arm64}/${n("arm64")} (${klogSame.arm64}); byte for byte the model's own replay: x86 ${sameAsModel.x86}, arm64 ${sameAsModel.arm64}; the rest are the model's known differences, reproduced exactly`,
    );
  });
});
