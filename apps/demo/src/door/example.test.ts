/**
 * The C example (apps/demo/examples/vmm-edu-dma.c), compiled with the system's cc, runs through
 * `iommu-demo exec` on both boards: container, group, GET_INFO's capability chain, the valid IOVA ranges,
 * MAP_DMA of its own buffer, edu's DMA into that buffer through the IOMMU, and the MSI on its eventfd.
 * The same program linked -static (no preload library reaches it) gives the same output through
 * `--door seccomp`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { findCompiler } from "@iommu-sim/host/native";
import { beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../cli/cli.js";
import { runCliAsync } from "../cli/door.js";
import { staticLinkWorks } from "./shared.js";

const cc = findCompiler();
if (!cc) console.warn("door example: skipped: no C compiler (cc)");
const staticOk = cc !== null && process.arch === "x64" && staticLinkWorks(cc);
if (cc && !staticOk) console.warn("door example: the seccomp door case skipped: no static C library or not x86-64");
const SRC = fileURLToPath(new URL("../../examples/vmm-edu-dma.c", import.meta.url));

function captureIo(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: "",
    stderr: "",
    out: (s: string) => {
      io.stdout += s;
    },
    err: (s: string) => {
      io.stderr += s;
    },
    tty: false,
    readFile: () => "",
    writeFile: () => {},
  };
  return io;
}

const COMMON_TAIL = [
  "mapped 0x2000 bytes at iova 0x100000",
  "edu id 0x010000ed",
  "dma to device: msi count 1; dma to memory: msi count 1",
  'page 1 now reads "hello from the VMM\'s memory"',
  "edu dma status 0x6",
  "unmapped 0x2000 bytes",
];

const CASES = [
  {
    board: "x86-q35-vtd",
    expected: [
      "api version 0, type1v2 yes",
      "group 1 attached",
      "iova_pgsizes 0x40201000, argsz 116",
      "cap id 2 version 1 at 24",
      "cap id 3 version 1 at 56",
      "  dma mappings available 65535",
      "cap id 1 version 1 at 68",
      "  valid iova [0x0, 0xfedfffff]",
      "  valid iova [0xfef00000, 0x7fffffffff]",
      ...COMMON_TAIL,
    ],
  },
  {
    board: "arm64-virt-smmuv3",
    expected: [
      "api version 0, type1v2 yes",
      "group 0 attached",
      "iova_pgsizes 0x40201000, argsz 116",
      "cap id 2 version 1 at 24",
      "cap id 3 version 1 at 56",
      "  dma mappings available 65535",
      "cap id 1 version 1 at 68",
      "  valid iova [0x0, 0x7ffffff]",
      "  valid iova [0x8100000, 0xffffffffffff]",
      ...COMMON_TAIL,
    ],
  },
];

describe.skipIf(!cc)("the C example through iommu-demo exec", () => {
  let exe = "";
  let staticExe = "";
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-sim-example-"));
    exe = join(dir, "vmm-edu-dma");
    const r = spawnSync(cc!, ["-O2", "-Wall", "-o", exe, SRC], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    if (!staticOk) return;
    staticExe = join(dir, "vmm-edu-dma-static");
    const s = spawnSync(cc!, ["-O2", "-Wall", "-static", "-o", staticExe, SRC], { encoding: "utf8" });
    expect(s.status, s.stderr).toBe(0);
  });

  it.each(CASES)("$board: the VMM flow works and its output is the kernel's answers", async ({ board, expected }) => {
    const io = captureIo();
    const code = await runCliAsync(["exec", "--board", board, "--", exe], io);
    expect(io.stderr).toBe("");
    expect(io.stdout.trimEnd().split("\n")).toEqual(expected);
    expect(code).toBe(0);
  });

  it.skipIf(!staticOk).each(CASES)(
    "$board: linked -static, through --door seccomp, the same output",
    async ({ board, expected }) => {
      const io = captureIo();
      const code = await runCliAsync(["exec", "--board", board, "--door", "seccomp", "--", staticExe], io);
      expect(io.stderr).toBe("");
      expect(io.stdout.trimEnd().split("\n")).toEqual(expected);
      expect(code).toBe(0);
    },
  );
});
