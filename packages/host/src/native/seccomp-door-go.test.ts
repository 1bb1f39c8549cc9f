/**
 * A Go program built with CGO_ENABLED=0 (native/test/go-client/main.go: the Go runtime makes every
 * system call itself, statically linked) through the seccomp door: os.ReadDir of the group's devices
 * (openat + getdents64 + lstat), os.Readlink, os.OpenFile of the container and the group, and the
 * VFIO ioctls by syscall.Syscall: GET_API_VERSION, CHECK_EXTENSION, GROUP_GET_STATUS, SET_CONTAINER,
 * SET_IOMMU, GET_INFO's capability chain, MAP_DMA of its own memory, an unknown ioctl (ENOTTY); edu's BAR0
 * by syscall.Mmap (the Go compiler's loads and stores, decoded), its MSI on an eventfd, edu's DMA from the
 * program's memory and back through the IOMMU; UNMAP_DMA.
 * Skipped with a message when `go` is not installed (apt-get install golang-go).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { createBoard } from "../boards/index.js";
import { execThroughDoor } from "./exec.js";
import { findCompiler } from "./preload-build.js";

const SRC = fileURLToPath(new URL("../../native/test/go-client/main.go", import.meta.url));
const cc = findCompiler();
const go = spawnSync("go", ["version"], { stdio: "ignore" }).status === 0;
const skip = !cc
  ? "no C compiler (cc) to build the seccomp door"
  : !go
    ? "no Go toolchain (go): apt-get install golang-go"
    : null;
if (skip) console.warn(`seccomp door, Go client: skipped: ${skip}`);

let exe = "";

describe.skipIf(skip !== null)("the seccomp door: a Go program without cgo", () => {
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), "iommu-sim-go-"));
    exe = join(dir, "go-client");
    const r = spawnSync("go", ["build", "-o", exe, SRC], {
      cwd: dirname(SRC),
      encoding: "utf8",
      env: {
        ...process.env,
        CGO_ENABLED: "0",
        GOCACHE: process.env.GOCACHE || join(dir, "cache"),
        GOPATH: process.env.GOPATH || join(dir, "gopath"),
        GOFLAGS: "-mod=mod",
        GO111MODULE: "off",
      },
    });
    expect(r.status, r.stderr).toBe(0);
  }, 120_000);

  it.each(["x86-q35-vtd", "arm64-virt-smmuv3"] as const)(
    "%s: the Go runtime's own system calls reach the model",
    { tags: ["slow"] },
    async (name) => {
      const board = createBoard(name);
      const dev = board.edus[0]!;
      const group = board.groupIdOf(dev);
      const r = await execThroughDoor(board, [exe, String(group)], { stdio: "pipe", door: "seccomp" });
      expect(r.stderr).toBe("");
      expect(r.stdout.trimEnd().split("\n")).toEqual([
        `device ${dev.name} symlink true group ${group} (<nil>)`,
        "api-version 0 0",
        "check-type1v2 1 0",
        "group-status 0 0",
        "group-flags 0x1",
        "set-container 0 0",
        "set-iommu 0 0",
        "get-info 0 0",
        "iova_pgsizes 0x40201000 argsz 4096", // a large enough argsz stays as given
        "cap id 2 version 1 at 24",
        "cap id 3 version 1 at 56",
        "cap id 1 version 1 at 68",
        "map-dma 0 0",
        "bad-ioctl -1 25", // ENOTTY
        "edu id 0x010000ed",
        "set-irqs-msi 0 0",
        "dma to device: msi count 1; dma to memory: msi count 1",
        'page 1 now reads "hello from Go\'s memory"',
        "unmap-dma 0 0",
        "unmapped 0x2000",
      ]);
      expect(r.code).toBe(0);
    },
  );
});
