/**
 * The native door against the real kernel's answers: the recorder's own probe.c, compiled unchanged with
 * the system's `cc`, runs through `iommu-demo exec` (preload library + server) on the board each
 * committed Linux 6.1 transcript was recorded on, and prints the same transcript, compared as the
 * replay suite compares (hello's kernel/kernel_version/machine and the klog fields excepted).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  ARCHES,
  diffTranscripts,
  FIXTURE_ROOT,
  formatDiff,
  listFixtures,
  parseScenario,
  readTranscript,
} from "@iommu-sim/conformance";
import { type BoardName, createBoard } from "@iommu-sim/host";
import { execThroughDoor, findCompiler } from "@iommu-sim/host/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KNOWN_DIFFERENCES } from "../replay/known-differences.js";
import { vfioParamsOf } from "../replay/replay.js";
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

const fixtures = ARCHES.flatMap((arch) => listFixtures("linux-6.1", arch));

let probe = "";
const identical = { x86: 0, arm64: 0 };
const klogSame = { x86: 0, arm64: 0 };

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

describe.skipIf(skip !== null)("the recorder's probe.c through the native door", () => {
  beforeAll(() => {
    probe = join(mkdtempSync(join(tmpdir(), "iommu-sim-probe-")), "probe");
    // compiled as the recorder builds it, minus -static (the preload library needs the dynamic loader)
    const r = spawnSync(cc!, ["-O2", "-Wall", "-o", probe, probeSrc!], { cwd: dirname(probeSrc!), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
  });

  for (const { arch, name } of fixtures) {
    it(`${arch}/${name}`, async () => {
      const expected = readTranscript({ set: "linux-6.1", arch, name });
      const actual = await runThroughDoor(arch, name);
      const d = diffTranscripts(expected, actual);
      if (KNOWN_DIFFERENCES[`${arch}/${name}`] !== undefined) {
        expect(d, `${arch}/${name} is a known difference but now agrees: remove it`).not.toBeNull();
        return;
      }
      expect(d, d ? formatDiff(d) : "").toBeNull();
      identical[arch]++;
      const body = (t: string) => t.split("\n").slice(1).join("\n");
      if (body(expected) === body(actual)) klogSame[arch]++;
    });
  }

  afterAll(() => {
    const n = (a: string) => fixtures.filter((f) => f.arch === a).length;
    console.log(
      `probe.c through the door: x86 ${identical.x86}/${n("x86")} identical (${klogSame.x86} byte for byte after hello, klog included), arm64 ${identical.arm64}/${n("arm64")} (${klogSame.arm64})`,
    );
  });
});
