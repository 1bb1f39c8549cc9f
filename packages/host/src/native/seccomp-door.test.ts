/**
 * The seccomp door (native/seccomp-door.c) with a program that makes every file system call itself
 * (native/test/raw-syscalls.c: syscall(SYS_openat/ioctl/…), as Go without cgo does): the container,
 * the group, MAP_DMA of its own memory, the spliced /proc/self/status, sysfs links, files and a
 * directory read with getdents64, the device descriptor at the lowest free number, BAR0 by a raw mmap
 * (loads and stores reach edu; a MAP_DMA of it pins MMIO pfns, unaccounted), and the kernel's errnos for
 * the failures. Through the preload door the same program reaches nothing.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { createBoard } from "../boards/index.js";
import { execThroughDoor } from "./exec.js";
import { buildSeccompDoor, findCompiler } from "./preload-build.js";

const cc = findCompiler();
if (!cc) console.warn("seccomp door: skipped: no C compiler (cc) to build the door and the test client");
const SRC = fileURLToPath(new URL("../../native/test/raw-syscalls.c", import.meta.url));

let exe = "";

describe.skipIf(!cc)("the seccomp door: a program that bypasses the C library", () => {
  beforeAll(() => {
    exe = join(mkdtempSync(join(tmpdir(), "iommu-sim-seccomp-")), "raw-syscalls");
    const r = spawnSync(cc!, ["-O2", "-Wall", "-pthread", "-o", exe, SRC], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
  });

  it("x86-q35-vtd: container, group, MAP_DMA, sysfs, procfs and the device through raw system calls", async () => {
    const board = createBoard("x86-q35-vtd", { eduCount: 2 });
    const dev = board.edus[0]!;
    const group = board.groupIdOf(dev);
    const reports: string[] = [];
    const r = await execThroughDoor(board, [exe, String(group), String(board.groupIdOf(board.edus[1]!))], {
      stdio: "pipe",
      door: "seccomp",
      report: (l) => reports.push(l),
    });
    expect(r.stderr).toBe("");
    expect(r.stdout.trimEnd().split("\n")).toEqual([
      "open-container 0 0",
      "api-version 0 0",
      "check-type1v2 1 0",
      "open-group-is-next-number 1 0",
      "group-status 0 0",
      "group-flags 0x1",
      "set-container 0 0",
      "set-iommu 0 0",
      "map-dma 0 0",
      "map-dma-again -1 EEXIST",
      "bad-ioctl -1 ENOTTY",
      "bad-ioctl-on-group -1 ENOTTY",
      "map-wild-pointer -1 EFAULT",
      "status-vmlck 8",
      "close-status 0 0",
      "readv-status 1 0",
      "readv-status-starts Name:\t", // 3 bytes into the first iovec, the rest into the second
      "close-status-again 0 0",
      "open-dir 0 0",
      "dirent . type dir",
      "dirent .. type dir",
      `dirent ${dev.name} type link`,
      "getdents-at-end 0 0",
      "read-dir -1 EISDIR",
      "fstat-dir 0 0",
      "fstat-dir-is-dir 1",
      "close-dir 0 0",
      `readlink /${group}`,
      "newfstatat-link-nofollow 0 0",
      "is-link 1",
      "open-file-as-dir -1 ENOTDIR",
      "access-write-sysfs-file -1 EACCES",
      "pread-config 4 0",
      "vendor 0x1234 device 0x11e8",
      "lseek-config-end 256 0", // edu is a conventional PCI device: 256 bytes of config space
      "close-config 0 0",
      "close-range-other-group 0 0",
      "freed-number-reused 1 0",
      "reopen-other-group 0 0",
      "close-other-group 0 0",
      "dup3-onto-served 1 0",
      "read-dup3-target-is-dev-null 0 0",
      "pread-served-again 4 0",
      "open-missing -1 ENOENT",
      "open-unserved-missing -1 ENOENT",
      "read-unserved 1 0",
      "close-unserved 0 0",
      "device-fd-is-lowest-free 1 0",
      "device-info 0 0",
      "device-regions 9 irqs 5",
      "bar0-info 0 0",
      "mmap-bar0 0 0",
      "edu-id 0x010000ed",
      "edu-liveness 0xedcba987",
      "map-dma-bar0 0 0",
      "vmlck-after-bar0-map 8", // a VM_PFNMAP vma: type1 accounts no MMIO pfn
      "mmap-config-region -1 EINVAL",
      "mmap-bar0-after-buffer 1 0",
      "get-info-before-bar 0 0", // the placeholder /proc/PID/mem cannot read ends the argument's extent
      "munmap-bar0 0 0",
      "preadv-config 4 0",
      "preadv vendor 0x1234 device 0x11e8",
      "pwritev-command 2 0",
      "command-bus-master 1",
      "fstat-device 0 0",
      "close-device 0 0",
      "ioctl-closed-device -1 EBADF",
      "unmap-dma 0 0",
      "unmapped 0x2000",
      "unmap-dma-bar0 0 0",
      "close-group 0 0",
      "close-container 0 0",
    ]);
    expect(r.code).toBe(0);
    expect(reports).toEqual([]);
  });

  it("the system's own tools: find walks the groups (a dup'd directory descriptor, names relative to it), grep reads the spliced status, ls lists /dev/vfio", async () => {
    const board = createBoard("x86-q35-vtd", { eduCount: 2 });
    const script = "find /sys/kernel/iommu_groups/2; grep VmLck /proc/self/status; ls /dev/vfio";
    const r = await execThroughDoor(board, ["/bin/sh", "-c", script], { stdio: "pipe", door: "seccomp" });
    expect(r.stderr).toBe("");
    expect(r.stdout.split("\n")).toEqual([
      "/sys/kernel/iommu_groups/2",
      "/sys/kernel/iommu_groups/2/devices",
      `/sys/kernel/iommu_groups/2/devices/${board.edus[1]!.name}`,
      "/sys/kernel/iommu_groups/2/reserved_regions",
      "/sys/kernel/iommu_groups/2/type",
      "VmLck:\t       0 kB", // grep's "input is the output" check sees a real inode number, not 0
      "1",
      "2",
      "vfio",
      "",
    ]);
    expect(r.code).toBe(0);
  });

  it("a served open never takes a number another thread is creating at the same time (1500 opens against a pipe loop)", async () => {
    // the number is the kernel's choice at install (ADDFD without SETFD): installing at a number picked
    // before the server's open replaced another thread's fresh pipe end (failed 3 runs of 3)
    const r = await execThroughDoor(createBoard("x86-q35-vtd"), [exe, "race", "1500"], {
      stdio: "pipe",
      door: "seccomp",
    });
    expect(r.stdout).toBe("race served-failures 0 pipe-failures 0\n");
    expect(r.code).toBe(0);
  });

  it("the program's exit status, or its death by a signal as 128 + the signal, is the door's", async () => {
    const board = createBoard("x86-q35-vtd");
    const exit3 = await execThroughDoor(board, ["/bin/sh", "-c", "exit 3"], { stdio: "pipe", door: "seccomp" });
    expect(exit3.code).toBe(3);
    const killed = await execThroughDoor(board, ["/bin/sh", "-c", "kill -KILL $$"], { stdio: "pipe", door: "seccomp" });
    expect(killed.code).toBe(128 + 9);
    const missing = await execThroughDoor(board, ["/nonexistent/program"], { stdio: "pipe", door: "seccomp" });
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/\/nonexistent\/program: No such file or directory/);
  });

  it("a SIGTERM sent to the supervisor is the program's to handle (it cleans up as without the door)", async () => {
    const script = "trap 'echo cleaned up; exit 5' TERM; echo ready; while :; do sleep 0.05; done";
    const child = spawn(buildSeccompDoor(cc!), ["/bin/sh", "-c", script], {
      env: { ...process.env, IOMMU_SIM_SOCKET: "/nonexistent/door.sock" },
    });
    let out = "";
    const ready = new Promise<void>((resolve) =>
      child.stdout.setEncoding("latin1").on("data", (d: string) => {
        out += d;
        if (out.includes("ready")) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
    await ready;
    child.kill("SIGTERM");
    expect(await exited).toBe(5);
    expect(out).toBe("ready\ncleaned up\n");
  });

  it("through the preload door the same program reaches nothing: raw system calls bypass a preload library", async () => {
    const board = createBoard("x86-q35-vtd");
    const r = await execThroughDoor(board, [exe, String(board.groupIdOf(board.edus[0]!))], { stdio: "pipe" });
    expect(r.stdout.split("\n")[0]).toBe("open-container -1 ENOENT");
  });
});
