/**
 * The recorder's own probe.c through the native door on the iommufd module sets: every
 * `linux-6.12-iommufd` and `linux-6.12-iommufd-compat` scenario, run by the compiled probe against a
 * board with the set's module set (`/dev/iommu`, the device cdevs, the compat container), compared with
 * the kernel's transcript as the replay compares it.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { diffTranscripts, FIXTURE_ROOT, formatDiff, listFixtures, parseScenario } from "@iommu-sim/conformance";
import { type BoardName, createBoard, type Modset } from "@iommu-sim/host";
import { execThroughDoor, findCompiler } from "@iommu-sim/host/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { vfioParamsOf } from "../replay/replay.js";
import { recorderProbe } from "./shared.js";

const SETS: readonly { set: string; modset: Modset }[] = [
  { set: "linux-6.12-iommufd", modset: "iommufd" },
  { set: "linux-6.12-iommufd-compat", modset: "iommufd-compat" },
];
const cc = findCompiler();
const probeSrc = recorderProbe();
const skip = !cc ? "no C compiler (cc)" : !probeSrc ? "shared/conformance/recorder/probe/probe.c not found" : null;
if (skip) console.warn(`probe-door-iommufd: skipped: ${skip}`);

const fixtures = SETS.flatMap(({ set, modset }) =>
  (["x86", "arm64"] as const).flatMap((arch) =>
    listFixtures(set, arch).map((f) => ({ set, modset, arch, name: f.name })),
  ),
);

let probe = "";
const identical = new Map<string, number>();

describe.skipIf(skip !== null)("the recorder's probe.c through the native door, iommufd module sets", () => {
  beforeAll(() => {
    probe = join(mkdtempSync(join(tmpdir(), "iommu-sim-probe-")), "probe");
    const r = spawnSync(cc!, ["-O2", "-Wall", "-o", probe, probeSrc!], { cwd: dirname(probeSrc!), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
  });

  for (const { set, modset, arch, name } of fixtures) {
    it(`${set} ${arch}/${name}`, async () => {
      const file = join(FIXTURE_ROOT, set, arch, `${name}.scn`);
      const scn = parseScenario(readFileSync(file, "utf8"));
      const board = createBoard(scn.header.platform as BoardName, {
        eduCount: scn.header.devices || 1,
        vfioParams: vfioParamsOf(scn.header.params),
        modset,
        kernel: "6.12",
      });
      const args = board.edus.flatMap((d) => [d.name, String(board.groupIdOf(d))]);
      const r = await execThroughDoor(board, [probe, file, ...args], { stdio: "pipe" });
      const d = diffTranscripts(readFileSync(join(FIXTURE_ROOT, set, arch, `${name}.jsonl`), "utf8"), r.stdout);
      expect(d, d ? formatDiff(d) : r.stderr).toBeNull();
      identical.set(`${set} ${arch}`, (identical.get(`${set} ${arch}`) ?? 0) + 1);
    });
  }

  afterAll(() => {
    for (const { set } of SETS) {
      for (const arch of ["x86", "arm64"]) {
        const n = fixtures.filter((f) => f.set === set && f.arch === arch).length;
        console.log(`probe.c through the door: ${set} ${arch}: ${identical.get(`${set} ${arch}`) ?? 0}/${n} identical`);
      }
    }
  });
});
