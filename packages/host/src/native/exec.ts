/**
 * `iommu-demo exec` in one call: serve a board on a fresh socket, run a program through a door (the
 * preload library in its environment, or the seccomp door's supervisor around it) with the socket in its
 * environment, and stop serving when it exits.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type { Board } from "../boards/types.js";
import { serveBoard } from "./door-server.js";
import { buildPreload, buildSeccompDoor } from "./preload-build.js";

/**
 * How the program reaches the server: "preload" (LD_PRELOAD of native/preload.c: C library calls) or
 * "seccomp" (native/seccomp-door.c: seccomp user notifications, for programs that make system calls
 * themselves: Go without cgo, static binaries).
 */
export type DoorKind = "preload" | "seccomp";
export const DOOR_KINDS: readonly DoorKind[] = ["preload", "seccomp"];

export interface ExecOptions {
  /** "inherit" (default) or "pipe" (the result then carries the program's output). */
  stdio?: "inherit" | "pipe";
  /** With "pipe": each piece of the program's output as it comes. */
  onOutput?: (stream: "stdout" | "stderr", text: string) => void;
  env?: NodeJS.ProcessEnv;
  report?: (line: string) => void;
  /** `--trace`: each VFIO call the program makes, one line (see ServeOptions.trace). */
  trace?: (line: string) => void;
  /** Which door (default "preload"). */
  door?: DoorKind;
}

export interface ExecResult {
  /** Exit status, or 128 + signal number when a signal ended it. */
  code: number;
  stdout: string;
  stderr: string;
}

export async function execThroughDoor(
  board: Board,
  argv: readonly string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  if (argv.length === 0) throw new Error("exec: no program to run");
  const door = opts.door ?? "preload";
  if (!DOOR_KINDS.includes(door)) throw new Error(`exec: unknown door ${JSON.stringify(door)} (preload or seccomp)`);
  const tool = door === "seccomp" ? buildSeccompDoor() : buildPreload();
  const dir = mkdtempSync(join(tmpdir(), "iommu-sim-"));
  const socket = join(dir, "door.sock");
  const server = await serveBoard(board, socket, {
    ...(opts.report ? { report: opts.report } : {}),
    ...(opts.trace ? { trace: opts.trace } : {}),
  });
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, IOMMU_SIM_SOCKET: socket };
    if (door === "preload") env.LD_PRELOAD = tool;
    const [file, ...args] = door === "seccomp" ? [tool, ...argv] : argv;
    const child = spawn(file!, args, { env, stdio: opts.stdio === "pipe" ? "pipe" : "inherit" });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("latin1").on("data", (d: string) => {
      stdout += d;
      opts.onOutput?.("stdout", d);
    });
    child.stderr?.setEncoding("latin1").on("data", (d: string) => {
      stderr += d;
      opts.onOutput?.("stderr", d);
    });
    const code = await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (c, sig) => resolve(c ?? 128 + (sig ? signalNumber(sig) : 0)));
    });
    return { code, stdout, stderr };
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function signalNumber(sig: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[sig] ?? 0;
}
