/**
 * The seccomp door against the real kernel's answers: the recorder's own probe.c, compiled with
 * `cc -static` as the recorder builds it (so no preload library can reach it: every system call is its
 * own), runs through `execThroughDoor(…, { door: "seccomp" })` on the board each committed transcript was
 * recorded on, and prints the same transcript after `hello`, compared as the replay suite compares. Sets:
 * every Linux 6.1 transcript (x86 and arm64) and every linux-6.12-iommufd one (the linux-6.12,
 * linux-7.3 and linux-6.12-iommufd-compat sets, 539 more, agree too: measured once, left out to keep the
 * suite light).
 * The probe linked against musl (musl-gcc -static: stdio by readv, malloc beside the BAR mappings) runs
 * the linux-6.1 x86 set too, when musl-tools is installed.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { arch as hostArch, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { diffTranscripts, FIXTURE_ROOT, formatDiff, listFixtures, parseScenario } from "@iommu-sim/conformance";
import { type BoardName, createBoard, type KernelVersion, type Modset } from "@iommu-sim/host";
import { execThroughDoor, findCompiler } from "@iommu-sim/host/native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KNOWN_DIFFERENCES } from "../replay/known-differences.js";
import { replayScenario, vfioParamsOf } from "../replay/replay.js";
import { recorderProbe, staticLinkWorks } from "./shared.js";

const SETS: readonly { set: string; kernel: KernelVersion; modset?: Modset }[] = [
  { set: "linux-6.1", kernel: "6.1" },
  { set: "linux-6.12-iommufd", kernel: "6.12", modset: "iommufd" },
];
const cc = findCompiler();
const probeSrc = recorderProbe();
const staticLibc = cc !== null && staticLinkWorks(cc);
const skip = !cc
  ? "no C compiler (cc): the seccomp door cannot be built"
  : hostArch() !== "x64"
    ? "BAR accesses through the seccomp door are decoded for x86-64 hosts only"
    : !staticLibc
      ? "no static C library (cc -static fails)"
      : !probeSrc
        ? "shared/conformance/recorder/probe/probe.c not found beside the clone (set IOMMU_SIM_SHARED)"
        : null;
if (skip) console.warn(`probe-seccomp-door: skipped: ${skip}`);

/** musl's static stdio reads with readv and its malloc puts buffers beside BAR mappings: its own run. */
const musl = spawnSync("musl-gcc", ["--version"], { stdio: "ignore" }).status === 0;
if (!skip && !musl)
  console.warn("probe-seccomp-door: the musl build skipped: musl-gcc not installed (apt-get install musl-tools)");
/** The musl build runs the linux-6.1 x86 set (the glibc build runs every set above). */
const MUSL_SETS = new Set(["linux-6.1 x86"]);

const fixtures = SETS.flatMap(({ set, kernel, modset }) =>
  (["x86", "arm64"] as const).flatMap((arch) =>
    listFixtures(set, arch).flatMap((f) =>
      (["glibc", "musl"] as const)
        .filter((libc) => libc === "glibc" || (musl && MUSL_SETS.has(`${set} ${arch}`)))
        .map((libc) => ({ libc, set, kernel, modset, arch, name: f.name })),
    ),
  ),
);

const probes = { glibc: "", musl: "" };
const identical = new Map<string, number>();
/** Equal to the kernel's transcript byte for byte after hello, klog included. */
const klogSame = new Map<string, number>();
/** Equal to the model's own replay byte for byte after hello: the door adds nothing. */
const sameAsModel = new Map<string, number>();
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

describe.skipIf(skip !== null).concurrent("the recorder's static probe through the seccomp door", () => {
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-sim-probe-"));
    probes.glibc = join(dir, "probe-static");
    const r = spawnSync(cc!, ["-O2", "-Wall", "-static", "-o", probes.glibc, probeSrc!], {
      cwd: dirname(probeSrc!),
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    if (!musl) return;
    // musl-gcc reads only musl's headers: the kernel's uapi ones (linux/, asm/) come from the system
    const inc = join(dir, "uapi");
    mkdirSync(inc);
    const multiarch = spawnSync(cc!, ["-print-multiarch"], { encoding: "utf8" }).stdout.trim();
    symlinkSync("/usr/include/linux", join(inc, "linux"));
    symlinkSync("/usr/include/asm-generic", join(inc, "asm-generic"));
    symlinkSync(`/usr/include/${multiarch}/asm`, join(inc, "asm"));
    probes.musl = join(dir, "probe-musl");
    const m = spawnSync("musl-gcc", ["-O2", "-static", "-isystem", inc, "-o", probes.musl, probeSrc!], {
      cwd: dirname(probeSrc!),
      encoding: "utf8",
    });
    expect(m.status, m.stderr).toBe(0);
  });

  for (const { libc, set, kernel, modset, arch, name } of fixtures) {
    it(`${libc === "musl" ? "musl " : ""}${set}/${arch}/${name}`, async ({ expect }) => {
      const probe = probes[libc];
      const file = join(FIXTURE_ROOT, set, arch, `${name}.scn`);
      const text = readFileSync(file, "utf8");
      const scn = parseScenario(text);
      const board = createBoard(scn.header.platform as BoardName, {
        kernel,
        eduCount: scn.header.devices || 1,
        vfioParams: vfioParamsOf(scn.header.params),
        ...(modset ? { modset } : {}),
      });
      const args = board.edus.flatMap((d) => [d.name, String(board.groupIdOf(d))]);
      const r = await execThroughDoor(board, [probe, file, ...args], { stdio: "pipe", door: "seccomp" });
      const expected = readFileSync(join(FIXTURE_ROOT, set, arch, `${name}.jsonl`), "utf8");
      const d = diffTranscripts(expected, r.stdout);
      const replayed = replayScenario(text, { kernel, ...(modset ? { modset } : {}) });
      const body = (t: string) => t.split("\n").slice(1).join("\n");
      // the door adds nothing of its own: the static probe sees what the replay's port of it sees, klog included
      expect(body(r.stdout), r.stderr).toBe(body(replayed));
      const key = `${libc} ${set} ${arch}`;
      bump(sameAsModel, key);
      if (set === "linux-6.1" && KNOWN_DIFFERENCES[`${arch}/${name}`] !== undefined) {
        // a rule the model misses (replay suite's list): through the door the program sees exactly the model
        expect(d, `${arch}/${name} is a known difference but now agrees with the kernel`).not.toBeNull();
        return;
      }
      expect(d, d ? formatDiff(d) : r.stderr).toBeNull();
      bump(identical, key);
      if (body(expected) === body(r.stdout)) bump(klogSame, key);
    });
  }

  afterAll(() => {
    for (const libc of ["glibc", "musl"] as const)
      for (const { set } of SETS)
        for (const arch of ["x86", "arm64"]) {
          const n = fixtures.filter((f) => f.libc === libc && f.set === set && f.arch === arch).length;
          if (n === 0) continue;
          const key = `${libc} ${set} ${arch}`;
          console.log(
            `static probe.c (${libc}) through the seccomp door: ${set} ${arch}: ${identical.get(key) ?? 0}/${n} identical (${klogSame.get(key) ?? 0} byte for byte after hello, klog included); byte for byte the model's own replay: ${sameAsModel.get(key) ?? 0}`,
          );
        }
  });
});
