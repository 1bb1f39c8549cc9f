/**
 * A VMM nobody here wrote as the door's client: Debian's QEMU 7.2 (`qemu-system-x86_64 -device vfio-pci`)
 * boots the edu guest (guest/build-initramfs.sh: a Debian 6.1 kernel and a busybox /init) with the
 * x86-q35-vtd board's edu passed through, and `--trace` records every VFIO call it made. The guest DMAs a
 * pattern from its RAM into edu and back through the model's VT-d, and raises an MSI that reaches its CPU.
 * The trace, normalized (no pid, vaddr masked, config-space pread/pwrite left out), is the committed
 * fixture fixtures/qemu-x86-vfio-trace.txt (`UPDATE_FIXTURE=1` rewrites it); README "QEMU as the client".
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createBoard } from "@iommu-sim/host";
import { execThroughDoor, findCompiler } from "@iommu-sim/host/native";
import { beforeAll, describe, expect, it } from "vitest";

const QEMU = "qemu-system-x86_64";
const hasQemu = spawnSync("sh", ["-c", `command -v ${QEMU}`]).status === 0;
const skip = !hasQemu
  ? `${QEMU} not installed (apt-get install qemu-system-x86)`
  : !findCompiler()
    ? "no C compiler (cc): the native door cannot be built"
    : null;
if (skip) console.warn(`qemu-guest: skipped: ${skip}`);

const HERE = fileURLToPath(new URL(".", import.meta.url));
const FIXTURE = join(HERE, "fixtures", "qemu-x86-vfio-trace.txt");
const BUILD = join(HERE, "..", "..", "guest", "build-initramfs.sh");
/** q35's interrupt window (VT-d's IOMMU_RESV_MSI): no MAP_DMA may land in it. */
const MSI_WINDOW = [0xfee00000n, 0xfeefffffn] as const;

/** A trace line without the pid and with the process's addresses masked: what is stable from run to run. */
function normalizeTrace(lines: readonly string[]): string[] {
  return lines
    .map((l) => l.replace(/^\[pid \d+\] /, "").replace(/vaddr 0x[0-9a-f]+/, "vaddr V"))
    .filter((l) => !/^(pread|pwrite)\(/.test(l));
}

/**
 * Descriptor numbers by role (container C, group G, device D, eventfds E1… in order of first use): the
 * preload library's own socket takes a number in the process, the seccomp door's does not, so the two
 * doors' traces agree call for call but not number for number.
 */
function byRole(lines: readonly string[]): string[] {
  const role = new Map<string, string>();
  let events = 0;
  for (const l of lines) {
    const open = /^open\("([^"]+)"\) = (\d+)$/.exec(l);
    if (open) role.set(open[2]!, open[1] === "/dev/vfio/vfio" ? "C" : "G");
    const dev = /VFIO_GROUP_GET_DEVICE_FD, .*\) = (\d+)$/.exec(l);
    if (dev) role.set(dev[1]!, "D");
    const efds = /eventfds \[([\d, ]+)\]/.exec(l);
    for (const n of efds?.[1]?.split(/, */) ?? []) if (!role.has(n)) role.set(n, `E${++events}`);
  }
  const name = (n: string) => role.get(n) ?? n;
  return lines.map((l) =>
    l
      .replace(/^(ioctl|mmap)\((\d+),/, (_, f: string, n: string) => `${f}(${name(n)},`)
      .replace(/container fd (\d+)/, (_, n: string) => `container fd ${name(n)}`)
      .replace(/eventfds \[([\d, ]+)\]/, (_, ns: string) => `eventfds [${ns.split(/, */).map(name).join(", ")}]`)
      .replace(
        /^(open\(.*|.*VFIO_GROUP_GET_DEVICE_FD.*)\) = (\d+)$/,
        (_, h: string, n: string) => `${h}) = ${name(n)}`,
      ),
  );
}

describe.skipIf(skip !== null)("QEMU 7.2 vfio-pci through the door (x86-q35-vtd)", () => {
  let guest = "";
  beforeAll(() => {
    const r = spawnSync("bash", [BUILD], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    guest = r.stdout.trim().split("\n").pop() ?? "";
  }, 600_000);

  it.each(["preload", "seccomp"] as const)(
    "%s door: boots the edu guest: every MAP_DMA succeeds outside the MSI window, DMA round trip, MSI delivered",
    {
      tags: ["slow"],
      timeout: 300_000,
    },
    async (door) => {
      const trace: string[] = [];
      const board = createBoard("x86-q35-vtd");
      const argv = [
        QEMU,
        ...["-machine", "q35", "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot"],
        ...["-device", `vfio-pci,host=${board.edus[0]!.name}`],
        ...["-kernel", join(guest, "vmlinuz"), "-initrd", join(guest, "initramfs.cpio")],
        ...["-append", "console=ttyS0 panic=-1 quiet memmap=64K$0x2000000"],
      ];
      const r = await execThroughDoor(board, argv, { stdio: "pipe", door, trace: (l) => trace.push(l) });
      expect(r.code, r.stderr).toBe(0);

      const maps = trace.filter((l) => l.includes("VFIO_IOMMU_MAP_DMA"));
      expect(maps.length).toBeGreaterThan(0);
      for (const l of maps) {
        expect(l, l).toMatch(/\) = 0$/);
        const m = /iova (0x[0-9a-f]+) size (0x[0-9a-f]+)/.exec(l)!;
        const [iova, size] = [BigInt(m[1]!), BigInt(m[2]!)];
        expect(iova + size - 1n < MSI_WINDOW[0] || iova > MSI_WINDOW[1], l).toBe(true);
      }
      // guest RAM below 4 GiB (512 MiB from 0 with the VGA hole) and edu's BAR0 for peer-to-peer
      expect(maps.some((l) => /iova 0x0 size 0xa0000\)/.test(l))).toBe(true);
      expect(maps.some((l) => /iova 0xfea00000 size 0x100000\)/.test(l))).toBe(true);
      expect(
        trace.some((l) => /VFIO_DEVICE_SET_IRQS, flags 0x24 index 1 start 0 count 1 eventfds \[\d+\]\) = 0/.test(l)),
      ).toBe(true);

      const out = r.stdout;
      expect(out).toContain("EDU-GUEST: id 0x010000ED");
      const dma = /dma round trip wrote ([0-9A-Fx ]+), read back ([0-9A-Fx ]+)/.exec(out);
      expect(dma, out).not.toBeNull();
      expect(dma![2]!.trim()).toBe(dma![1]!.trim());
      expect(out).toMatch(/EDU-GUEST: kernel: .*0\.209 No irq handler for vector/);

      const norm = normalizeTrace(trace);
      if (process.env.UPDATE_FIXTURE && door === "preload") writeFileSync(FIXTURE, `${norm.join("\n")}\n`);
      const fixture = readFileSync(FIXTURE, "utf8").trimEnd().split("\n");
      // the same calls as the committed trace (as a set: QEMU's threads may order its last calls differently)
      if (door === "preload") expect(new Set(norm)).toEqual(new Set(fixture));
      else expect(new Set(byRole(norm))).toEqual(new Set(byRole(fixture)));
    },
  );
});
