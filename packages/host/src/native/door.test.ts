/**
 * The native door under abuse, through each door (the preload library; the seccomp door's supervisor,
 * whose client then makes plain system calls): two real processes at once (one holding a mapping, one
 * sending malformed and hostile calls), a client killed in the middle of its calls, and a server that goes
 * away. The server keeps serving, the other client's state is unchanged, errors are the kernel's errnos,
 * nothing hangs.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createBoard } from "../boards/index.js";
import { type DoorServer, serveBoard } from "./door-server.js";
import { buildPreload, buildSeccompDoor, findCompiler } from "./preload-build.js";

const cc = findCompiler();
if (!cc) console.warn("door: skipped: no C compiler (cc) to build the preload library and the test client");
const SRC = fileURLToPath(new URL("../../native/test/door-client.c", import.meta.url));

let exe = "";
let lib = "";
let supervisor = "";
let dir = "";
const servers: DoorServer[] = [];
const children: ChildProcess[] = [];

/**
 * A client program on the door: its output lines as they come, a way to answer it and to wait for it.
 * Through the preload library, or under the seccomp door's supervisor (killing it kills the program).
 */
function client(door: "preload" | "seccomp", socket: string, args: string[]) {
  const child =
    door === "preload"
      ? spawn(exe, args, { env: { ...process.env, LD_PRELOAD: lib, IOMMU_SIM_SOCKET: socket } })
      : spawn(supervisor, [exe, ...args], { env: { ...process.env, IOMMU_SIM_SOCKET: socket } });
  children.push(child);
  let out = "";
  const waiters: (() => void)[] = [];
  child.stdout.setEncoding("latin1").on("data", (d: string) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  return {
    child,
    lines: () => out.trimEnd().split("\n"),
    /** Resolves with the first line matching `re` (the test's timeout bounds the wait). */
    async line(re: RegExp): Promise<string> {
      for (;;) {
        const l = out.split("\n").find((x) => re.test(x));
        if (l !== undefined) return l;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    send: (s: string) => child.stdin.write(`${s}\n`),
    exited,
  };
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe.skipIf(!cc).each(["preload", "seccomp"] as const)("the native door under abuse (%s)", (door) => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "iommu-sim-door-"));
    exe = join(dir, "door-client");
    const r = spawnSync(cc!, ["-O2", "-Wall", "-pthread", "-o", exe, SRC], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    lib = buildPreload(cc);
    supervisor = buildSeccompDoor(cc);
  });

  afterEach(async () => {
    for (const c of children.splice(0)) c.kill("SIGKILL");
    for (const s of servers.splice(0)) await s.close();
  });

  async function serve(name: "x86-q35-vtd" | "arm64-virt-smmuv3", reports: string[] = []) {
    const board = createBoard(name, { eduCount: 2 });
    const s = await serveBoard(board, join(dir, `${name}-${servers.length}.sock`), { report: (l) => reports.push(l) });
    servers.push(s);
    return { board, s };
  }

  it("two clients at once: malformed buffers, closed fds and a busy group get errnos; the other's mapping is untouched", async () => {
    const reports: string[] = [];
    const { board, s } = await serve("x86-q35-vtd", reports);
    const a = client(door, s.path, ["hold", "1"]);
    expect(await a.line(/^ready/)).toBe("ready avail 65534 vmlck 4");
    const b = client(door, s.path, ["bad", "2", "1", board.edus[1]!.name]);
    expect(await b.exited).toBe(0);
    expect(b.lines()).toEqual([
      "open-busy-group -1 EBUSY",
      "open-no-group -1 ENOENT",
      "map-null -1 EFAULT",
      "map-wild-pointer -1 EFAULT",
      "map-short-argsz -1 EINVAL",
      "map-unmapped-vaddr -1 EFAULT",
      "info-wild-pointer -1 EFAULT",
      "unknown-ioctl -1 ENOTTY",
      "set-container-bad-fd -1 EBADF",
      "get-device-no-such -1 ENODEV",
      "set-irqs-not-an-eventfd -1 EINVAL",
      "set-irqs-closed-fd -1 EBADF",
      "close-device 0 0",
      "ioctl-closed-device -1 EBADF",
    ]);
    await until(() => s.sessions === 1);
    a.send("go");
    expect(await a.exited).toBe(0);
    expect(a.lines().slice(1)).toEqual([
      "after avail 65534 vmlck 4",
      "map-again -1 EEXIST",
      "unmap 0 0",
      "unmapped 0x1000",
    ]);
    expect(reports).toEqual([]); // no model bug on the way
  });

  it("a client killed in the middle of its calls: its session is torn down, the others go on", async () => {
    const { s } = await serve("arm64-virt-smmuv3");
    const other = client(door, s.path, ["hold", "1"]);
    expect(await other.line(/^ready/)).toBe("ready avail 65534 vmlck 4");
    const dying = client(door, s.path, ["die", "0"]);
    await dying.line(/^ready/);
    await new Promise((r) => setTimeout(r, 30)); // inside its MAP_DMA / UNMAP_DMA loop
    dying.child.kill("SIGKILL");
    await dying.exited;
    await until(() => s.sessions === 1);
    // its group and container were released: a new process takes the same group
    const next = client(door, s.path, ["hold", "0"]);
    expect(await next.line(/^ready/)).toBe("ready avail 65534 vmlck 4");
    next.send("go");
    expect(await next.exited).toBe(0);
    other.send("go");
    expect(await other.exited).toBe(0);
    expect(other.lines().slice(1, 2)).toEqual(["after avail 65534 vmlck 4"]);
  });

  it("threads share the connection: four at once, 800 open/ioctl/read/close rounds, every answer right", async () => {
    const { s } = await serve("x86-q35-vtd");
    const c = client(door, s.path, ["threads"]);
    expect(await c.exited).toBe(0);
    expect(c.lines()).toEqual(["threads failures 0"]);
  });

  it("a lost server: every forwarded call fails with EIO at once, never a hang", async () => {
    const { s } = await serve("x86-q35-vtd");
    const c = client(door, s.path, ["lost"]);
    expect(await c.line(/^ready/)).toBe("ready 1");
    await s.close();
    servers.splice(servers.indexOf(s), 1);
    c.send("go");
    expect(await c.exited).toBe(0);
    expect(c.lines().slice(1)).toEqual([
      "api-after-server-gone -1 EIO",
      "open-after-server-gone -1 EIO",
      // the library reports the lost server; under the seccomp door close(2) is the kernel's (the
      // placeholder is closed: 0)
      door === "preload" ? "close-after-server-gone -1 EIO" : "close-after-server-gone 0 0",
    ]);
  });
});
