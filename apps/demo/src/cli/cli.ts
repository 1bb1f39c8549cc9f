/**
 * `iommu-demo`: run the passthrough story on a board, draw a container's IOVA space, list boards,
 * replay a recorded scenario. Every command takes --help and --json; exit codes are in EXIT.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { BOARD_NAMES, type BoardName, createBoard } from "@iommu-sim/host";
import { iovaMapOf } from "../map/iova-map.js";
import { renderHtml, renderSvg, renderText } from "../map/render.js";
import { replayScenario } from "../replay/index.js";
import type { LayoutKind } from "../vmm/layout.js";
import { sizeText } from "../vmm/layout.js";
import { Vmm, type VmmReport, type VmmStep } from "../vmm/vmm.js";
import { type ParsedArgs, parseArgs, parseSize, UsageError } from "./args.js";
import { toJson } from "./json.js";

/** Exit codes. */
export const EXIT = {
  OK: 0,
  /** The story ran and the device path failed (what --naive shows), or a replay had errors. */
  STORY_FAILED: 1,
  USAGE: 2,
  /** The model threw (a lower layer refused or is missing). */
  MODEL_ERROR: 3,
  /** A file could not be read or written. */
  IO_ERROR: 4,
} as const;

export interface CliIo {
  out(s: string): void;
  err(s: string): void;
  /** Progress lines only when stderr is a TTY. */
  readonly tty: boolean;
  readFile(path: string): string;
  writeFile(path: string, text: string): void;
}

const HELP: Record<string, string> = {
  main: `iommu-demo: PCIe passthrough with MSIs through an IOMMU, on models of QEMU's x86 q35 + VT-d and arm64 virt + SMMUv3

usage: iommu-demo <command> [options]

commands:
  run      the story: a VMM passes an edu device through VFIO, maps guest RAM, DMA and MSI run through the IOMMU
  map      the IOVA space of a container: reserved regions, valid ranges, mappings, MSI doorbell pages
  boards   list the boards
  replay   replay a recorded scenario (.scn) against the model, print the JSONL transcript

With no command: run the story briefly on both main boards.
Options for every command: --json (machine-readable output), --help.
Exit codes: 0 ok, 1 the device path failed (e.g. --naive) or replay errors, 2 usage, 3 model error, 4 I/O error.
`,
  run: `usage: iommu-demo run [--board NAME] [--guest-ram SIZE] [--naive] [--layout machine|flat] [--qemu-quirks] [--json]

Narrates: open container and group, read the valid IOVA ranges, lay out guest RAM (q35 or virt default),
detect conflicts with reserved regions and react, MAP_DMA guest RAM, open the device, let the edu device
DMA through the IOMMU into guest RAM and back, and its MSI reach the eventfd.
  --board      ${BOARD_NAMES.join(" | ")} (default arm64-virt-smmuv3)
  --guest-ram  guest RAM size, e.g. 1G, 512M (default 4G)
  --layout     machine: the board's default guest layout; flat: RAM from GPA 0 (default machine)
  --naive      ignore the valid ranges and map a flat layout: MAP_DMA fails with EINVAL, the DMA faults
  --qemu-quirks  QEMU 7.2's device/IOMMU quirks (edu's 28-bit DMA mask: on virt, edu cannot reach guest RAM
               at 0x40000000); default off: the story's device DMAs with 64-bit addresses
  --x86-rmrr   x86: add an xHCI controller with an RMRR (direct-relaxable) and an ISA bridge (0-16 MiB)
`,
  map: `usage: iommu-demo map [--board NAME] [--guest-ram SIZE] [--layout machine|flat] [--qemu-quirks] [--svg FILE] [--html FILE] [--json]

The IOVA space of the story's container after guest RAM is mapped and MSI is armed, then every IOMMU
group of the host with its reserved regions (--x86-rmrr shows direct-relaxable RMRRs). Text on stdout;
--svg / --html also write a self-contained drawing. Takes run's --board, --guest-ram, --layout, --qemu-quirks, --x86-rmrr.
`,
  boards: "usage: iommu-demo boards [--json]\n\nList the boards and what they model.\n",
  replay: `usage: iommu-demo replay FILE.scn [--json]

Replays a scenario in the conformance recorder's language against the model (the board its
'platform' line names) and prints the transcript (JSON Lines). --json wraps it in one object.
`,
};

function boardOf(a: ParsedArgs): BoardName {
  const b = a.flags.get("board");
  if (b === undefined) return "arm64-virt-smmuv3";
  if (b === true || !BOARD_NAMES.includes(b as BoardName)) {
    throw new UsageError(`unknown board '${String(b)}' (one of ${BOARD_NAMES.join(", ")})`);
  }
  return b as BoardName;
}

function layoutOf(a: ParsedArgs): LayoutKind | undefined {
  const l = a.flags.get("layout");
  if (l === undefined) return undefined;
  if (l !== "machine" && l !== "flat") throw new UsageError("--layout is machine or flat");
  return l;
}

function guestRamOf(a: ParsedArgs): bigint {
  const g = a.flags.get("guest-ram");
  if (g === undefined) return 4n << 30n;
  if (g === true) throw new UsageError("--guest-ram needs a value");
  return parseSize(g);
}

const KNOWN: Record<string, readonly string[]> = {
  run: ["board", "guest-ram", "naive", "layout", "qemu-quirks", "x86-rmrr", "json", "help"],
  map: ["board", "guest-ram", "layout", "qemu-quirks", "x86-rmrr", "svg", "html", "json", "help"],
  boards: ["json", "help"],
  replay: ["json", "help"],
};

function checkFlags(cmd: string, a: ParsedArgs): void {
  const ok = KNOWN[cmd] ?? [];
  for (const f of a.flags.keys()) if (!ok.includes(f)) throw new UsageError(`unknown option --${f} for '${cmd}'`);
}

function stepText(s: VmmStep, i: number): string {
  return [`${s.ok ? "✓" : "✗"} ${i + 1}. ${s.title}`, ...s.lines.map((l) => `     ${l}`)].join("\n");
}

function runStory(a: ParsedArgs, io: CliIo): { report: VmmReport; vmm: Vmm } {
  const board = createBoard(boardOf(a), {
    qemuQuirks: a.flags.get("qemu-quirks") === true,
    x86Rmrr: a.flags.get("x86-rmrr") === true,
  });
  const naive = a.flags.get("naive") === true;
  const layout = layoutOf(a);
  const vmm = new Vmm(board, {
    guestRam: guestRamOf(a),
    naive,
    ...(layout ? { layout } : {}),
    onStep: (s) => {
      if (io.tty) io.err(`\r\x1b[2K… ${s.title}`);
    },
  });
  const report = vmm.run();
  if (io.tty) io.err("\r\x1b[2K");
  return { report, vmm };
}

function cmdRun(a: ParsedArgs, io: CliIo): number {
  const { report, vmm } = runStory(a, io);
  if (a.flags.has("json")) io.out(`${toJson(report)}\n`);
  else {
    io.out(`${vmm.board.name}: ${vmm.board.description}\n`);
    io.out(
      `VMM '${report.vmm}': ${sizeText(vmm.guestRam)} guest RAM, device ${report.device} (IOMMU group ${report.group})${report.naive ? ", --naive" : ""}\n\n`,
    );
    for (const [i, s] of report.steps.entries()) io.out(`${stepText(s, i)}\n`);
    io.out(`\n${report.ok ? "result: ok" : `result: FAILED: ${report.failure ?? "a step failed"}`}\n`);
  }
  return report.ok ? EXIT.OK : report.steps.some((s) => s.title === "error") ? EXIT.MODEL_ERROR : EXIT.STORY_FAILED;
}

function cmdMap(a: ParsedArgs, io: CliIo): number {
  const { report, vmm } = runStory(a, io);
  if (report.steps.some((s) => s.title === "error")) {
    io.err(`iommu-demo map: ${report.failure}\n`);
    return EXIT.MODEL_ERROR;
  }
  const m = iovaMapOf(vmm);
  for (const [flag, render] of [
    ["svg", renderSvg],
    ["html", renderHtml],
  ] as const) {
    const f = a.flags.get(flag);
    if (f === undefined) continue;
    if (f === true) throw new UsageError(`--${flag} needs a file name`);
    try {
      io.writeFile(f, render(m));
    } catch (e) {
      io.err(`iommu-demo map: cannot write ${f}: ${e instanceof Error ? e.message : String(e)}\n`);
      return EXIT.IO_ERROR;
    }
    if (!a.flags.has("json")) io.err(`wrote ${f}\n`);
  }
  io.out(a.flags.has("json") ? `${toJson(m)}\n` : renderText(m));
  return EXIT.OK;
}

function cmdBoards(a: ParsedArgs, io: CliIo): number {
  const rows = BOARD_NAMES.map((name) => {
    const b = createBoard(name);
    return { name, arch: b.arch, description: b.description, msiDoorbell: b.msiDoorbell };
  });
  if (a.flags.has("json")) io.out(`${toJson(rows)}\n`);
  else for (const r of rows) io.out(`${r.name.padEnd(24)} ${r.arch.padEnd(8)} ${r.description}\n`);
  return EXIT.OK;
}

function cmdReplay(a: ParsedArgs, io: CliIo): number {
  const file = a.positionals[0];
  if (!file) throw new UsageError("replay needs a scenario file");
  let text: string;
  try {
    text = io.readFile(file);
  } catch (e) {
    io.err(`iommu-demo replay: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.IO_ERROR;
  }
  const out = replayScenario(text, { file });
  const errors = out.split("\n").filter((l) => l.startsWith('{"cmd":"error"')).length;
  if (a.flags.has("json"))
    io.out(
      `${toJson({
        file,
        errors,
        transcript: out
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l)),
      })}\n`,
    );
  else io.out(out.endsWith("\n") ? out : `${out}\n`);
  return errors > 0 ? EXIT.STORY_FAILED : EXIT.OK;
}

/** No command: the story, briefly, on both boards. */
function cmdDefault(a: ParsedArgs, io: CliIo): number {
  const results: { board: string; report: VmmReport }[] = [];
  for (const board of ["x86-q35-vtd", "arm64-virt-smmuv3"] as const) {
    const vmm = new Vmm(createBoard(board, { qemuQuirks: false }), { guestRam: 4n << 30n });
    results.push({ board, report: vmm.run() });
  }
  if (a.flags.has("json")) {
    io.out(`${toJson(results)}\n`);
  } else {
    io.out("iommu-demo: a VMM passes QEMU's edu device through VFIO on two simulated hosts\n\n");
    for (const { board, report } of results) {
      io.out(`${board}:\n`);
      const ranges =
        report.info?.iovaRanges.map((r) => `[0x${r.start.toString(16)}, 0x${r.end.toString(16)}]`).join(" ") ?? "?";
      io.out(`  valid IOVA ranges  ${ranges}\n`);
      io.out(
        `  guest RAM mapped   ${report.mappings
          .filter((m) => m.ret === 0)
          .map((m) => `${m.name}@0x${m.iova.toString(16)}`)
          .join(", ")}\n`,
      );
      io.out(
        `  edu DMA            ${report.dma?.roundTrip ? "copied guest data through the IOMMU and back" : "FAILED"}\n`,
      );
      io.out(
        `  MSI                address 0x${report.msi?.address.toString(16)} data 0x${report.msi?.data.toString(16)}, eventfd ${report.msi?.eventfdCount}\n`,
      );
      io.out(`  ${report.ok ? "ok" : `FAILED: ${report.failure}`}\n\n`);
    }
    io.out(
      "Next: iommu-demo run --board arm64-virt-smmuv3 | iommu-demo run --naive | iommu-demo map --html map.html | iommu-demo --help\n",
    );
  }
  return results.every((r) => r.report.ok) ? EXIT.OK : EXIT.MODEL_ERROR;
}

export function runCli(argv: readonly string[], io: CliIo): number {
  let a: ParsedArgs;
  try {
    a = parseArgs(argv);
    const cmd = a.command;
    if (cmd !== null && !(cmd in KNOWN)) throw new UsageError(`unknown command '${cmd}'`);
    if (a.flags.has("help")) {
      io.out(HELP[cmd ?? "main"] ?? HELP.main ?? "");
      return EXIT.OK;
    }
    if (cmd === null) {
      for (const f of a.flags.keys()) if (f !== "json") throw new UsageError(`unknown option --${f}`);
      return cmdDefault(a, io);
    }
    checkFlags(cmd, a);
    if (cmd === "run") return cmdRun(a, io);
    if (cmd === "map") return cmdMap(a, io);
    if (cmd === "boards") return cmdBoards(a, io);
    return cmdReplay(a, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`iommu-demo: ${e.message}\n(see iommu-demo --help)\n`);
      return EXIT.USAGE;
    }
    io.err(`iommu-demo: model error: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.MODEL_ERROR;
  }
}

export function nodeIo(): CliIo {
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    tty: Boolean(process.stderr.isTTY),
    readFile: (p) => readFileSync(p, "utf8"),
    writeFile: (p, t) => writeFileSync(p, t),
  };
}
