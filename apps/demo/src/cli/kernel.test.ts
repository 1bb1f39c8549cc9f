/** `--kernel` on every command (issue 16): the kernel profile the host is built with, said in the output. */
import { diffTranscripts, type Fixture, readScenario, readTranscript } from "@iommu-sim/conformance";
import { KERNEL_VERSIONS } from "@iommu-sim/host";
import { describe, expect, it } from "vitest";
import { type CliIo, EXIT, runCli } from "./cli.js";

function cli(argv: string[], files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    tty: false,
    readFile: (p) => {
      const t = files[p];
      if (t === undefined) throw new Error("ENOENT");
      return t;
    },
    writeFile: () => {},
  };
  const code = runCli(argv, io);
  return { code, out: out.join(""), err: err.join("") };
}

describe("--kernel 6.1|6.12|7.3", () => {
  it("run --kernel 7.3 --board x86-q35-vtd narrates the whole story and says which kernel it models", () => {
    const r = cli(["run", "--kernel", "7.3", "--board", "x86-q35-vtd", "--guest-ram", "64M"]);
    expect(r.code, r.err).toBe(EXIT.OK);
    expect(r.out).toContain("kernel: Linux 7.3 (modelled on Debian's 7.3.4+deb13)");
    expect(r.out).toContain("result: ok");
    const json = JSON.parse(cli(["run", "--kernel=6.12", "--guest-ram", "64M", "--json"]).out);
    expect(json.kernel).toBe("6.12");
  });

  it("arm64 on 7.3: the story's device is in IOMMU group 1 (the host bridge takes 0), on 6.1 in group 0", () => {
    for (const [kernel, group] of [
      ["6.1", 0],
      ["7.3", 1],
    ] as const) {
      const r = cli(["run", "--kernel", kernel, "--board", "arm64-virt-smmuv3", "--guest-ram", "64M", "--json"]);
      expect(JSON.parse(r.out).group).toBe(group);
    }
  });

  it("map names the kernel in its title; without --kernel it is 6.1", () => {
    expect(cli(["map", "--kernel", "6.12", "--guest-ram", "64M"]).out.split("\n")[0]).toMatch(
      /^IOVA space of group 0 \(0000:00:01\.0\) on arm64-virt-smmuv3, Linux 6\.12:/,
    );
    expect(cli(["map", "--guest-ram", "64M"]).out.split("\n")[0]).toContain("arm64-virt-smmuv3, Linux 6.1:");
    const files: Record<string, string> = {};
    const io = {
      out: () => {},
      err: () => {},
      tty: false,
      readFile: () => "",
      writeFile: (p: string, t: string) => {
        files[p] = t;
      },
    };
    expect(runCli(["map", "--kernel", "7.3", "--guest-ram", "64M", "--svg", "m.svg", "--html", "m.html"], io)).toBe(
      EXIT.OK,
    );
    expect(files["m.svg"]).toContain(
      "<title>IOVA space of group 1 (0000:00:01.0) on arm64-virt-smmuv3, Linux 7.3</title>",
    );
    expect(files["m.html"]).toContain("<h1>IOVA space of group 1 (0000:00:01.0) on arm64-virt-smmuv3, Linux 7.3</h1>");
  });

  it("boards lists the kernels there are; --kernel picks the one described", () => {
    const r = cli(["boards", "--kernel", "7.3"]);
    expect(r.out).toContain("kernels (--kernel): 6.1 (6.1.0-56), 6.12 (6.12.117+deb13), 7.3 (7.3.4+deb13)");
    const rows = JSON.parse(cli(["boards", "--json"]).out);
    for (const row of rows) {
      expect(row.kernel).toBe("6.1");
      expect(row.kernels).toEqual([...KERNEL_VERSIONS]);
    }
  });

  it("replay --kernel answers as that kernel: a 7.3 recording replays identically with 7.3, not with 6.1", () => {
    const f: Fixture = { set: "linux-7.3", arch: "x86", name: "map-errors-args" };
    const files = { "m.scn": readScenario(f) };
    const as = (kernel: string | null) => cli(["replay", "m.scn", ...(kernel ? ["--kernel", kernel] : [])], files);
    expect(as("7.3").code).toBe(EXIT.OK);
    // hello describes the host (not compared): the model says which kernel it is
    expect(JSON.parse(as("7.3").out.split("\n")[0] ?? "{}").kernel_version).toBe("model of Linux 7.3 (x86-q35-vtd)");
    expect(diffTranscripts(readTranscript(f), as("7.3").out)).toBeNull();
    expect(diffTranscripts(readTranscript(f), as(null).out)).not.toBeNull();
    expect(as(null).out).toBe(as("6.1").out);
  });

  it.each([
    ["run", "--kernel", "5.15"],
    ["map", "--kernel", "6"],
    ["boards", "--kernel", "7.3.4"],
    ["replay", "x.scn", "--kernel", "latest"],
    ["run", "--kernel"],
  ])("an unknown or missing kernel is a usage error naming the ones there are: %s %s %s", (...argv) => {
    const r = cli(argv);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.err).toMatch(/^iommu-demo: (unknown kernel '.*' \(one of 6\.1, 6\.12, 7\.3\)|--kernel needs a value)/);
  });

  it("every command's help documents --kernel", () => {
    for (const cmd of ["run", "map", "boards", "replay", "serve", "exec"]) {
      expect(cli(["help", cmd]).out, cmd).toContain("--kernel");
    }
  });
});
