/**
 * `iommu-demo exec` in one call: serve a board on a fresh socket, run a program with the preload library
 * and the socket in its environment, and stop serving when it exits.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type { Board } from "../boards/types.js";
import { serveBoard } from "./door-server.js";
import { buildPreload } from "./preload-build.js";

export interface ExecOptions {
  /** "inherit" (default) or "pipe" (the result then carries the program's output). */
  stdio?: "inherit" | "pipe";
  /** With "pipe": each piece of the program's output as it comes. */
  onOutput?: (stream: "stdout" | "stderr", text: string) => void;
  env?: NodeJS.ProcessEnv;
  report?: (line: string) => void;
  /** `--trace`: each VFIO call the program makes, one line (see ServeOptions.trace). */
  trace?: (line: string) => void;
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
  const lib = buildPreload();
  const dir = mkdtempSync(join(tmpdir(), "iommu-sim-"));
  const socket = join(dir, "door.sock");
  const server = await serveBoard(board, socket, {
    ...(opts.report ? { report: opts.report } : {}),
    ...(opts.trace ? { trace: opts.trace } : {}),
  });
  try {
    const env = { ...process.env, ...opts.env, LD_PRELOAD: lib, IOMMU_SIM_SOCKET: socket };
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: opts.stdio === "pipe" ? "pipe" : "inherit" });
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
