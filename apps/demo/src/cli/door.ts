/**
 * `iommu-demo serve` and `iommu-demo exec`: the native door of `@iommu-sim/host` on the command line.
 * Both are long-running (a server, a child program), so they run asynchronously; every other command
 * goes to the synchronous `runCli`.
 */
import { createBoard } from "@iommu-sim/host";
import {
  buildPreload,
  buildSeccompDoor,
  DOOR_KINDS,
  type DoorKind,
  execThroughDoor,
  serveBoard,
} from "@iommu-sim/host/native";
import { vfioParamsOf } from "../replay/replay.js";
import { type ParsedArgs, parseArgs, UsageError } from "./args.js";
import { boardOf, type CliIo, checkFlags, EXIT, kernelOf, runCli } from "./cli.js";
import { modsetFlag } from "./modset.js";

function doorBoard(a: ParsedArgs) {
  const devices = a.flags.get("devices");
  const n = devices === undefined ? 1 : Number(devices);
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new UsageError("--devices is 1..8");
  const params = a.flags.get("params");
  if (typeof params === "boolean") throw new UsageError("--params needs a value");
  return createBoard(boardOf(a), {
    kernel: kernelOf(a),
    eduCount: n,
    vfioParams: vfioParamsOf(params ?? ""),
    qemuQuirks: a.flags.get("qemu-quirks-off") !== true,
    modset: modsetFlag(a) ?? "debian",
  });
}

async function cmdServe(a: ParsedArgs, io: CliIo): Promise<number> {
  const board = doorBoard(a);
  const socketFlag = a.flags.get("socket");
  if (typeof socketFlag === "boolean") throw new UsageError("--socket needs a value");
  const socket = socketFlag ?? `${process.env.XDG_RUNTIME_DIR || "/tmp"}/iommu-sim-${board.name}.sock`;
  const lib = buildPreload();
  const supervisor = buildSeccompDoor();
  const server = await serveBoard(board, socket, { report: (l) => io.err(`${l}\n`) });
  io.out(
    `serving ${board.name} (Linux ${board.kernel.version}) on ${socket}\nLD_PRELOAD=${lib} IOMMU_SIM_SOCKET=${socket} PROGRAM ...\n` +
      `IOMMU_SIM_SOCKET=${socket} ${supervisor} PROGRAM ...   (programs that bypass the C library: Go without cgo, static binaries)\n`,
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.close();
  return EXIT.OK;
}

/** `--door`: preload (default) or seccomp. */
function doorOf(a: ParsedArgs): DoorKind {
  const d = a.flags.get("door");
  if (d === undefined) return "preload";
  if (d === true || !DOOR_KINDS.includes(d as DoorKind))
    throw new UsageError(`unknown door '${String(d)}' (one of ${DOOR_KINDS.join(", ")})`);
  return d as DoorKind;
}

async function cmdExec(a: ParsedArgs, program: readonly string[], io: CliIo): Promise<number> {
  const door = doorOf(a);
  if (program.length === 0) throw new UsageError("exec needs a program after --");
  const board = doorBoard(a);
  const r = await execThroughDoor(board, program, {
    stdio: "pipe",
    door,
    onOutput: (stream, text) => (stream === "stdout" ? io.out(text) : io.err(text)),
    report: (l) => io.err(`${l}\n`),
    ...(a.flags.get("trace") === true ? { trace: (l: string) => io.err(`iommu-sim: ${l}\n`) } : {}),
  });
  return r.code;
}

/** The CLI with the door: `serve` and `exec` here, everything else through `runCli`. */
export async function runCliAsync(argv: readonly string[], io: CliIo): Promise<number> {
  const sep = argv.indexOf("--");
  const own = sep < 0 ? argv : argv.slice(0, sep);
  const program = sep < 0 ? [] : argv.slice(sep + 1);
  let a: ParsedArgs;
  try {
    a = parseArgs(own);
    if ((a.command !== "serve" && a.command !== "exec") || a.flags.has("help")) return runCli(argv, io);
    if (a.positionals.length) throw new UsageError(`unexpected '${a.positionals[0]}' (a program goes after --)`);
    checkFlags(a.command, a);
    return a.command === "serve" ? await cmdServe(a, io) : await cmdExec(a, program, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`iommu-demo: ${e.message}\n(see iommu-demo --help)\n`);
      return EXIT.USAGE;
    }
    io.err(`iommu-demo: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.MODEL_ERROR;
  }
}
