/**
 * `iommu-demo`: run the passthrough story on a board, draw a container's IOVA space, list boards,
 * replay a recorded scenario. Every command takes --help and --json; exit codes are in EXIT. Every misuse
 * is one line on stderr (`iommu-demo: …`) and a documented exit code, never a stack trace.
 */
import { readFileSync, writeFileSync } from "node:fs";
import {
  BOARD_NAMES,
  type Board,
  type BoardName,
  createBoard,
  DEFAULT_KERNEL,
  KERNEL_PROFILES,
  KERNEL_VERSIONS,
  type KernelVersion,
} from "@iommu-sim/host";
import { iovaMapOf } from "../map/iova-map.js";
import { renderHtml, renderSvg, renderText } from "../map/render.js";
import { replayRecords, replayScenario } from "../replay/index.js";
import type { LayoutKind } from "../vmm/layout.js";
import { sizeText } from "../vmm/layout.js";
import { Vmm, type VmmReport, type VmmStep } from "../vmm/vmm.js";
import { type ParsedArgs, parseArgs, parseSize, UsageError } from "./args.js";
import { toJson } from "./json.js";
import { MODSET_HELP, modsetFlag, uapiOf } from "./modset.js";

/** Exit codes. */
export const EXIT = {
  /** Also when stdout is closed early (`| head`): the rest of the output is dropped quietly. */
  OK: 0,
  /** The story ran and the device path failed (what --naive shows), guest RAM could not be pinned, a mapping
   * was refused (map), or a replay had errors. */
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
  /** What --version prints (the package's version). */
  readonly version?: string;
}

/** The story's DMA writes 256 bytes at 2 MiB into the first RAM block (`Vmm.exercise`): RAM must reach past it. */
export const MIN_GUEST_RAM = 0x200000n + 0x1000n;
/** Guest RAM is mmapped and MAP_DMA'd in whole 4 KiB pages. */
const PAGE = 0x1000n;

const EXIT_TEXT = `Exit codes: 0 ok (also when the output pipe closes early, e.g. | head); 1 the device path failed
(--naive), guest RAM could not be pinned, a mapping was refused, or replay errors; 2 usage error;
3 model error; 4 I/O error.`;

export const HELP: Record<string, string> = {
  main: `iommu-demo: PCIe passthrough with MSIs through an IOMMU, on models of QEMU's x86 q35 + VT-d and arm64 virt + SMMUv3

usage: iommu-demo <command> [options]

commands:
  run      the story: a VMM passes an edu device through VFIO, maps guest RAM, DMA and MSI run through the IOMMU
  map      the IOVA space of a container: reserved regions, valid ranges, mappings, MSI doorbell pages
  boards   list the boards
  replay   replay a recorded scenario (.scn) against the model, print the JSONL transcript
  serve    serve a board's system calls on a Unix socket (the native door: its preload library or seccomp supervisor)
  exec     run an unmodified program (C, Rust, Go…) against a board: its /dev/vfio calls reach the model
  help     this text, or a command's (iommu-demo help run)

With no command: run the story briefly on both main boards.
Options for every command: --json (machine-readable output), --help (-h); --version (-V) prints the version;
--kernel ${KERNEL_VERSIONS.join("|")}: the Linux the host answers as (default ${DEFAULT_KERNEL}; see iommu-demo boards).
  ${MODSET_HELP}
Switches (--json, --naive, --qemu-quirks, --x86-rmrr) take no value, or exactly =true / =false.
${EXIT_TEXT}
`,
  run: `usage: iommu-demo run [--board NAME] [--kernel VERSION] [--guest-ram SIZE] [--naive] [--layout machine|flat] [--qemu-quirks] [--uapi type1|iommufd] [--modset NAME] [--json]

Narrates: open container and group, read the valid IOVA ranges, lay out guest RAM (q35 or virt default),
detect conflicts with reserved regions and react, MAP_DMA guest RAM, open the device, let the edu device
DMA through the IOMMU into guest RAM and back, and its MSI reach the eventfd.
  --board      ${BOARD_NAMES.join(" | ")} (default arm64-virt-smmuv3)
  --kernel     ${KERNEL_VERSIONS.join(" | ")}: the host kernel modelled (default ${DEFAULT_KERNEL})
  --guest-ram  guest RAM size, e.g. 1G, 512M (default 4G): whole 4 KiB pages, at least 2052K (the story's
               DMA buffers sit 2 MiB into guest RAM), less than the board's host RAM (32 GiB on both boards)
  --layout     machine: the board's default guest layout; flat: RAM from GPA 0 (default machine)
  --naive      ignore the valid ranges and map a flat layout: MAP_DMA fails with EINVAL, the DMA faults
  --qemu-quirks  QEMU 7.2's device/IOMMU quirks (edu's 28-bit DMA mask: on virt, edu cannot reach guest RAM
               at 0x40000000); default off: the story's device DMAs with 64-bit addresses
  --x86-rmrr   x86: add an xHCI controller with an RMRR (direct-relaxable) and an ISA bridge (0-16 MiB)
  --uapi       type1 (default): the container; iommufd: /dev/iommu, an IOAS and the device cdev, narrating
               the IOAS's usable ranges (IOMMU_IOAS_IOVA_RANGES) instead of the type1 capability
               (implies --modset iommufd and, without --kernel, --kernel 6.12)
  ${MODSET_HELP}
`,
  map: `usage: iommu-demo map [--board NAME] [--kernel VERSION] [--guest-ram SIZE] [--layout machine|flat] [--qemu-quirks] [--svg FILE] [--html FILE] [--modset NAME] [--json]

The IOVA space of the story's container after guest RAM is mapped and MSI is armed, then every IOMMU
group of the host with its reserved regions (--x86-rmrr shows direct-relaxable RMRRs). Text on stdout;
--svg / --html also write a self-contained drawing. Takes run's --board, --kernel, --guest-ram, --layout, --qemu-quirks,
--x86-rmrr; the map's title names the kernel modelled.
`,
  boards: `usage: iommu-demo boards [--kernel VERSION] [--modset NAME] [--json]

List the boards and what they model, and the kernels each can answer as (${KERNEL_VERSIONS.join(", ")}; --kernel
picks the one described, default ${DEFAULT_KERNEL}).
`,
  replay: `usage: iommu-demo replay FILE.scn [--kernel VERSION] [--modset NAME] [--json]

Replays a scenario in the conformance recorder's language against the model (the board its
'platform' line names) and prints the transcript (JSON Lines). --json prints one object
{ file, errors, transcript: [records] }; a record longer than the probe's 1 MiB line, which the text
cuts, is one record there with "line_cut": true.
Scenarios name no kernel (the conformance folder says which answered): --kernel ${KERNEL_VERSIONS.join("|")}
picks the one the model answers as (default ${DEFAULT_KERNEL}), e.g. --kernel 7.3 for linux-7.3/*.scn.
`,
};

const DOOR_OPTIONS = `  --board    ${BOARD_NAMES.join(" | ")} (default arm64-virt-smmuv3)
  --kernel   ${KERNEL_VERSIONS.join(" | ")}: the host kernel modelled (default ${DEFAULT_KERNEL})
  --devices  edu devices (default 1), each in its own IOMMU group
  --params   vfio_iommu_type1 parameters, e.g. "dma_entry_limit=3 allow_unsafe_interrupts=1"
  --qemu-quirks-off  the boards without QEMU 7.2's quirks (default: on, as the recorded kernels saw them)
  --modset   debian | iommufd | iommufd-compat: the VFIO doors (default debian; iommufd adds /dev/iommu and
             /dev/vfio/devices/vfioN, iommufd-compat also serves /dev/vfio/vfio from iommufd)
The preload library is built from packages/host/native/preload.c with the system's cc on first use
(cached under ~/.cache/iommu-sim/native). x86-64 programs; BAR loads/stores are trapped and emulated.
`;
HELP.serve = `usage: iommu-demo serve [--board NAME] [--kernel VERSION] [--socket PATH] [--devices N] [--params "K=V ..."]

Serves the board's system-call surface (/dev/vfio/vfio, /dev/vfio/N, device fds, eventfds, the sysfs and
procfs files a VFIO user reads) on a Unix socket, one simulated process per connection, until
interrupted. A program joins with LD_PRELOAD=<library> IOMMU_SIM_SOCKET=PATH, or, when it bypasses the C
library (Go without cgo, static binaries), runs under the seccomp door's supervisor (both printed at start).
  --socket   socket path (default $XDG_RUNTIME_DIR or /tmp, iommu-sim-BOARD.sock)
${DOOR_OPTIONS}`;
HELP.exec = `usage: iommu-demo exec [--board NAME] [--kernel VERSION] [--devices N] [--params "K=V ..."] [--trace] [--door preload|seccomp] -- PROGRAM [ARGS...]

Starts a server for the board, runs PROGRAM through a door with the socket in its environment, and exits
with its exit status. Its memory stays its own: MAP_DMA pins its pages, edu's DMA reads and writes them,
and its eventfds count the MSIs.
  --door     preload (default): the preload library, for programs that call the C library;
             seccomp: a supervisor serving the program's system calls by seccomp user notification,
             for programs that make them themselves (Go without cgo, static binaries)
  --trace    print every VFIO call the program makes (open, ioctl by name with its decoded argument,
             pread/pwrite/mmap of a device fd) and the model's answer, one line each, on stderr
${DOOR_OPTIONS}`;

export function boardOf(a: ParsedArgs): BoardName {
  const b = a.flags.get("board");
  if (b === undefined) return "arm64-virt-smmuv3";
  if (b === true || !BOARD_NAMES.includes(b as BoardName)) {
    throw new UsageError(`unknown board '${String(b)}' (one of ${BOARD_NAMES.join(", ")})`);
  }
  return b as BoardName;
}

/** `--kernel`: one of the kernel profiles (default 6.1). */
export function kernelOf(a: ParsedArgs): KernelVersion {
  const k = a.flags.get("kernel");
  if (k === undefined) return DEFAULT_KERNEL;
  if (k === true || !(KERNEL_VERSIONS as readonly string[]).includes(k as string)) {
    throw new UsageError(`unknown kernel '${String(k)}' (one of ${KERNEL_VERSIONS.join(", ")})`);
  }
  return k as KernelVersion;
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
  if (typeof g !== "string") throw new UsageError("--guest-ram needs a value");
  const v = parseSize(g);
  if (v % PAGE !== 0n) throw new UsageError(`--guest-ram ${g} is not a whole number of 4 KiB pages`);
  if (v < MIN_GUEST_RAM) {
    throw new UsageError(
      `--guest-ram ${g} is too small: the story's DMA buffers sit 2 MiB into guest RAM (at least ${sizeText(MIN_GUEST_RAM)})`,
    );
  }
  return v;
}

/**
 * Host RAM a VMM's pages can come from: the board's largest RAM region (virt's only one; q35's above 4 GiB,
 * where the board hands out user pages). Guest RAM is pinned from it, so it must be smaller.
 */
function hostRamOf(board: Board): bigint {
  let largest = 0n;
  for (const r of board.regions) if (r.kind === "ram" && r.size > largest) largest = r.size;
  return largest;
}

/** A boolean switch: present (or =true) versus absent (or =false). */
const on = (a: ParsedArgs, name: string): boolean => a.flags.get(name) === true;

const KNOWN: Record<string, readonly string[]> = {
  run: ["board", "kernel", "guest-ram", "naive", "layout", "qemu-quirks", "x86-rmrr", "uapi", "modset", "json", "help"],
  map: ["board", "kernel", "guest-ram", "layout", "qemu-quirks", "x86-rmrr", "svg", "html", "modset", "json", "help"],
  boards: ["kernel", "modset", "json", "help"],
  replay: ["kernel", "modset", "json", "help"],
  serve: ["board", "kernel", "socket", "devices", "params", "qemu-quirks-off", "modset", "help"],
  exec: ["board", "kernel", "devices", "params", "qemu-quirks-off", "modset", "trace", "door", "help"],
  help: ["help"],
};

/** Positional arguments each command takes: [fewest, most]. */
const POSITIONALS: Record<string, readonly [number, number]> = { replay: [1, 1], help: [0, 1] };

export function checkFlags(cmd: string, a: ParsedArgs): void {
  const ok = KNOWN[cmd] ?? [];
  for (const f of a.flags.keys()) if (!ok.includes(f)) throw new UsageError(`unknown option --${f} for '${cmd}'`);
  const [least, most] = POSITIONALS[cmd] ?? [0, 0];
  if (a.positionals.length > most) {
    throw new UsageError(`unexpected argument '${a.positionals[most]}' for '${cmd}'`);
  }
  if (a.positionals.length < least) throw new UsageError(`${cmd} needs a scenario file`);
}

function stepText(s: VmmStep, i: number): string {
  return [`${s.ok ? "✓" : "✗"} ${i + 1}. ${s.title}`, ...s.lines.map((l) => `     ${l}`)].join("\n");
}

function runStory(a: ParsedArgs, io: CliIo): { report: VmmReport; vmm: Vmm } {
  const guestRam = guestRamOf(a);
  const layout = layoutOf(a);
  const { uapi, modset } = uapiOf(a);
  // the device cdev is Linux >= 6.6: --uapi iommufd answers as the recorded 6.12 unless --kernel says otherwise
  const kernel = uapi === "iommufd" && !a.flags.has("kernel") ? "6.12" : kernelOf(a);
  const board = createBoard(boardOf(a), {
    kernel,
    qemuQuirks: on(a, "qemu-quirks"),
    x86Rmrr: on(a, "x86-rmrr"),
    modset,
  });
  const hostRam = hostRamOf(board);
  if (guestRam >= hostRam) {
    throw new UsageError(
      `--guest-ram ${sizeText(guestRam)} does not fit: ${board.name} has ${sizeText(hostRam)} of host RAM to pin guest RAM from (part of it the kernel's); use less, e.g. 31G`,
    );
  }
  const naive = on(a, "naive");
  const vmm = new Vmm(board, {
    guestRam,
    naive,
    uapi,
    ...(layout ? { layout } : {}),
    onStep: (s) => {
      if (io.tty) io.err(`\r\x1b[2K… ${s.title}`);
    },
  });
  const report = vmm.run();
  if (io.tty) io.err("\r\x1b[2K");
  return { report, vmm };
}

/** Why MAP_DMA refused guest RAM outside --naive's story, as one line (null when every block mapped). */
function mappingFailure(report: VmmReport, vmm: Vmm): string | null {
  const bad = report.naive ? undefined : report.mappings.find((m) => m.ret !== 0);
  if (!bad) return null;
  if (bad.errno === "ENOMEM") {
    return `MAP_DMA of ${bad.name} failed with ENOMEM: ${vmm.board.name}'s host RAM cannot pin ${sizeText(vmm.guestRam)} of guest RAM next to the kernel's share; use a smaller --guest-ram`;
  }
  return `MAP_DMA of ${bad.name} at 0x${bad.iova.toString(16)} failed with ${bad.errno}`;
}

function cmdRun(a: ParsedArgs, io: CliIo): number {
  const { report: told, vmm } = runStory(a, io);
  const pinned = mappingFailure(told, vmm);
  const report = pinned && told.failure === null ? { ...told, failure: pinned } : told;
  if (pinned) io.err(`iommu-demo run: ${pinned}\n`);
  if (on(a, "json")) io.out(`${toJson(report)}\n`);
  else {
    io.out(`${vmm.board.name}: ${vmm.board.description}\n`);
    io.out(`kernel: Linux ${vmm.board.kernel.version} (modelled on Debian's ${vmm.board.kernel.release})\n`);
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
  // A map of guest RAM that is not all there would mislead: say which block MAP_DMA refused.
  const refused = mappingFailure(report, vmm);
  if (refused) {
    io.err(`iommu-demo map: ${refused}\n`);
    return EXIT.STORY_FAILED;
  }
  const m = iovaMapOf(vmm);
  for (const [flag, render] of [
    ["svg", renderSvg],
    ["html", renderHtml],
  ] as const) {
    const f = a.flags.get(flag);
    if (f === undefined) continue;
    if (typeof f !== "string") throw new UsageError(`--${flag} needs a file name`);
    try {
      io.writeFile(f, render(m));
    } catch (e) {
      io.err(`iommu-demo map: cannot write ${f}: ${e instanceof Error ? e.message : String(e)}\n`);
      return EXIT.IO_ERROR;
    }
    if (!on(a, "json")) io.err(`wrote ${f}\n`);
  }
  io.out(on(a, "json") ? `${toJson(m)}\n` : renderText(m));
  return EXIT.OK;
}

function cmdBoards(a: ParsedArgs, io: CliIo): number {
  const kernel = kernelOf(a);
  const rows = BOARD_NAMES.map((name) => {
    const b = createBoard(name, { kernel, modset: modsetFlag(a) ?? "debian" });
    return {
      name,
      arch: b.arch,
      description: b.description,
      msiDoorbell: b.msiDoorbell,
      kernel,
      kernels: KERNEL_VERSIONS,
    };
  });
  if (on(a, "json")) io.out(`${toJson(rows)}\n`);
  else {
    for (const r of rows) io.out(`${r.name.padEnd(24)} ${r.arch.padEnd(8)} ${r.description}\n`);
    const kernels = KERNEL_VERSIONS.map((v) => `${v} (${KERNEL_PROFILES[v].release})`).join(", ");
    io.out(`\nkernels (--kernel): ${kernels}; default ${DEFAULT_KERNEL}, described: ${kernel}\n`);
  }
  return EXIT.OK;
}

function cmdReplay(a: ParsedArgs, io: CliIo): number {
  const file = a.positionals[0] as string;
  const kernel = kernelOf(a);
  let text: string;
  try {
    text = io.readFile(file);
  } catch (e) {
    io.err(`iommu-demo replay: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.IO_ERROR;
  }
  const modset = modsetFlag(a);
  const json = on(a, "json");
  // --json is built from the records themselves: a record past probe.c's 1 MiB line is cut in the text
  const records = json ? replayRecords(text, { file, kernel, ...(modset ? { modset } : {}) }) : null;
  const out = records ? null : replayScenario(text, { file, kernel, ...(modset ? { modset } : {}) });
  const errors = records
    ? records.filter((r) => r.cmd === "error").length
    : (out as string).split("\n").filter((l) => l.startsWith('{"cmd":"error"')).length;
  if (records) io.out(`${toJson({ file, errors, transcript: records })}\n`);
  else io.out((out as string).endsWith("\n") ? (out as string) : `${out}\n`);
  if (errors > 0) {
    io.err(
      `iommu-demo replay: ${file}: ${errors} line${errors === 1 ? "" : "s"} not replayed (the "error" records say why)\n`,
    );
  }
  return errors > 0 ? EXIT.STORY_FAILED : EXIT.OK;
}

/** No command: the story, briefly, on both boards. */
function cmdDefault(a: ParsedArgs, io: CliIo): number {
  const results: { board: string; report: VmmReport }[] = [];
  for (const board of ["x86-q35-vtd", "arm64-virt-smmuv3"] as const) {
    const vmm = new Vmm(createBoard(board, { qemuQuirks: false }), { guestRam: 4n << 30n });
    results.push({ board, report: vmm.run() });
  }
  if (on(a, "json")) {
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
    if (on(a, "version")) {
      io.out(`iommu-demo ${io.version ?? "(version unknown)"}\n`);
      return EXIT.OK;
    }
    if (on(a, "help")) {
      io.out(HELP[cmd ?? "main"] ?? HELP.main ?? "");
      return EXIT.OK;
    }
    if (cmd === null) {
      for (const f of a.flags.keys()) if (f !== "json") throw new UsageError(`unknown option --${f}`);
      if (a.positionals.length > 0) throw new UsageError(`unexpected argument '${a.positionals[0]}'`);
      return cmdDefault(a, io);
    }
    checkFlags(cmd, a);
    if (cmd === "help") {
      const topic = a.positionals[0];
      if (topic !== undefined && !(topic in HELP)) throw new UsageError(`no help for '${topic}' (a command name)`);
      io.out(HELP[topic ?? "main"] ?? "");
      return EXIT.OK;
    }
    if (cmd === "run") return cmdRun(a, io);
    if (cmd === "map") return cmdMap(a, io);
    if (cmd === "boards") return cmdBoards(a, io);
    if (cmd === "serve" || cmd === "exec")
      throw new UsageError(`'${cmd}' runs only from the command line (runCliAsync)`);
    return cmdReplay(a, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`iommu-demo: ${e.message} (see iommu-demo --help)\n`);
      return EXIT.USAGE;
    }
    io.err(`iommu-demo: model error: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.MODEL_ERROR;
  }
}

/**
 * The real process's streams. A reader that closes the pipe early (`iommu-demo run | head`) is not an
 * error: on EPIPE the rest of the output is dropped and the process exits 0 with nothing on stderr.
 */
export function nodeIo(
  version?: string,
  streams: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; exit: (code: number) => void } = {
    stdout: process.stdout,
    stderr: process.stderr,
    exit: (code) => process.exit(code),
  },
): CliIo {
  for (const s of [streams.stdout, streams.stderr]) {
    s.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") streams.exit(EXIT.OK);
      else throw e;
    });
  }
  return {
    out: (s) => void streams.stdout.write(s),
    err: (s) => void streams.stderr.write(s),
    tty: Boolean((process.stderr as { isTTY?: boolean }).isTTY),
    readFile: (p) => readFileSync(p, "utf8"),
    writeFile: (p, t) => writeFileSync(p, t),
    ...(version === undefined ? {} : { version }),
  };
}
