import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { parseSize } from "./args.js";
import { type CliIo, EXIT, MIN_GUEST_RAM, nodeIo, runCli } from "./cli.js";

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const files = new Map<string, string>();
  const x: CliIo = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    tty: false,
    readFile: (p) => {
      const t = files.get(p);
      if (t === undefined) throw new Error("ENOENT");
      return t;
    },
    writeFile: (p, t) => files.set(p, t),
  };
  return { x, out, err, files };
}

describe("iommu-demo CLI", () => {
  it.each(["", "run", "map", "boards", "replay"])("--help for '%s' exits 0 with a usage line", (cmd) => {
    const t = io();
    expect(runCli(cmd ? [cmd, "--help"] : ["--help"], t.x)).toBe(EXIT.OK);
    expect(t.out.join("")).toMatch(/usage: iommu-demo/);
  });
  it("usage errors exit 2 and say what is wrong", () => {
    for (const argv of [
      ["frobnicate"],
      ["run", "--board", "sparc"],
      ["run", "--bogus"],
      ["run", "--guest-ram", "lots"],
      ["replay"],
    ]) {
      const t = io();
      expect(runCli(argv, t.x)).toBe(EXIT.USAGE);
      expect(t.err.join("")).toMatch(/iommu-demo: /);
    }
  });
  it("boards lists the three boards, as JSON too", () => {
    const t = io();
    expect(runCli(["boards", "--json"], t.x)).toBe(EXIT.OK);
    const rows = JSON.parse(t.out.join(""));
    expect(rows.map((r: { name: string }) => r.name)).toEqual([
      "x86-q35-vtd",
      "arm64-virt-smmuv3",
      "arm64-virt-smmuv3-seed",
    ]);
    expect(rows[1].msiDoorbell).toBe("0x8090040");
  });
  it("replay of a missing file is an I/O error (4)", () => {
    const t = io();
    expect(runCli(["replay", "nope.scn"], t.x)).toBe(EXIT.IO_ERROR);
  });
  it("sizes parse with binary units", () => {
    expect(parseSize("4G")).toBe(4n << 30n);
    expect(parseSize("512MiB")).toBe(512n << 20n);
    expect(parseSize("0x1000")).toBe(4096n);
  });
});

it("map --x86-rmrr lists every host group with its reserved regions, and writes SVG/HTML files", () => {
  const t = io();
  const argv = [
    "map",
    "--board",
    "x86-q35-vtd",
    "--x86-rmrr",
    "--guest-ram",
    "1G",
    "--svg",
    "m.svg",
    "--html",
    "m.html",
  ];
  expect(runCli(argv, t.x)).toBe(EXIT.OK);
  const out = t.out.join("");
  expect(out).toContain("group 2 [DMA-FQ] 0000:00:1d.0");
  expect(out).toContain("0x000000007f7e0000 0x000000007f7fffff direct-relaxable");
  expect(t.files.get("m.svg")).toMatch(/^<svg/);
  expect(t.files.get("m.html")).toContain('<table id="groups">');
});

it("run --naive exits 1 with MAP_DMA EINVAL in the JSON report", () => {
  const t = io();
  expect(runCli(["run", "--naive", "--guest-ram", "1G", "--json"], t.x)).toBe(EXIT.STORY_FAILED);
  const r = JSON.parse(t.out.join(""));
  expect(r.mappings[0]).toMatchObject({ ret: -1, errno: "EINVAL", iova: "0x0" });
  expect(r.msi.address).toBe("0x8000040");
});

/** Runs the CLI on an in-memory io; `line` is stderr when it is exactly one line (else the whole text). */
function cli(argv: string[], files: Record<string, string> = {}) {
  const t = io();
  for (const [k, v] of Object.entries(files)) t.files.set(k, v);
  const code = runCli(argv, { ...t.x, version: "1.2.3" });
  const err = t.err.join("");
  const lines = err.split("\n").filter((l) => l.length > 0);
  return { code, out: t.out.join(""), err, line: lines.length === 1 ? lines[0] : err };
}

describe("misuse: one line on stderr and a documented exit code (issue 14)", () => {
  it.each([
    ["run", "arm64-virt-smmuv3", "32G"],
    ["run", "x86-q35-vtd", "32G"],
    ["run", "arm64-virt-smmuv3", "1T"],
    ["map", "arm64-virt-smmuv3", "64G"],
    ["map", "x86-q35-vtd", "64G"],
  ])("%s --board %s --guest-ram %s is refused up front: the board's host RAM is 32 GiB (exit 2)", (cmd, board, g) => {
    const r = cli([cmd, "--board", board, "--guest-ram", g]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.line).toMatch(new RegExp(`^iommu-demo: --guest-ram .* does not fit: ${board} has 32 GiB of host RAM`));
    expect(r.out).toBe("");
  });
  it("guest RAM that passes the check but cannot be pinned next to the kernel's pages: run exits 1, says why, JSON carries it", () => {
    const r = cli(["run", "--guest-ram", "32704M", "--json"]);
    expect(r.code).toBe(EXIT.STORY_FAILED);
    expect(r.line).toMatch(
      /^iommu-demo run: MAP_DMA of ram failed with ENOMEM: arm64-virt-smmuv3's host RAM cannot pin/,
    );
    expect(JSON.parse(r.out).failure).toMatch(/ENOMEM/);
  });
  it("map never prints a map with guest RAM silently missing: a refused MAP_DMA exits 1 with the reason", () => {
    const r = cli(["map", "--guest-ram", "32704M"]);
    expect(r.code).toBe(EXIT.STORY_FAILED);
    expect(r.line).toMatch(/^iommu-demo map: MAP_DMA of ram failed with ENOMEM/);
    expect(r.out).toBe("");
  });
  it.each(["4K", "2M", "0x200fff"])("--guest-ram %s is below the story's minimum, 2052 KiB (exit 2)", (g) => {
    const r = cli(["run", "--guest-ram", g]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.line).toMatch(
      /^iommu-demo: --guest-ram .* (too small: the story's DMA buffers sit 2 MiB|not a whole number)/,
    );
  });
  it("the minimum is real: 2052K runs the whole story on both boards", () => {
    expect(MIN_GUEST_RAM).toBe(2052n << 10n);
    for (const board of ["x86-q35-vtd", "arm64-virt-smmuv3"]) {
      const r = cli(["run", "--board", board, "--guest-ram", "2052K", "--json"]);
      expect(r.code).toBe(EXIT.OK);
      expect(JSON.parse(r.out).dma.roundTrip).toBe(true);
    }
  });
  it("--guest-ram that is not whole 4 KiB pages is a usage error", () => {
    const r = cli(["run", "--guest-ram", "4097K"]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.line).toBe("iommu-demo: --guest-ram 4097K is not a whole number of 4 KiB pages (see iommu-demo --help)");
  });
  it("switches accept only =true / =false: --json=false prints text, --naive=false is not naive, --naive=no is an error", () => {
    const text = cli(["boards", "--json=false"]);
    expect(text.code).toBe(EXIT.OK);
    expect(text.out).toMatch(/^x86-q35-vtd\s+x86_64/);
    expect(JSON.parse(cli(["boards", "--json=true"]).out)).toHaveLength(3);
    const notNaive = cli(["run", "--naive=false", "--guest-ram", "1G", "--json"]);
    expect(notNaive.code).toBe(EXIT.OK);
    expect(JSON.parse(notNaive.out).naive).toBe(false);
    const bad = cli(["run", "--naive=no"]);
    expect(bad.code).toBe(EXIT.USAGE);
    expect(bad.line).toBe(
      "iommu-demo: --naive is a switch: give --naive, --naive=true or --naive=false (not 'no') (see iommu-demo --help)",
    );
  });
  it.each([
    [["run", "extra"], "unexpected argument 'extra' for 'run'"],
    [["boards", "x"], "unexpected argument 'x' for 'boards'"],
    [["replay", "a.scn", "b.scn"], "unexpected argument 'b.scn' for 'replay'"],
    [["map", "--board", "x86-q35-vtd", "now"], "unexpected argument 'now' for 'map'"],
    [["help", "run", "more"], "unexpected argument 'more' for 'help'"],
  ])("extra positionals are errors: %j (exit 2)", (argv, msg) => {
    const r = cli(argv);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.line).toBe(`iommu-demo: ${msg} (see iommu-demo --help)`);
  });
  it("--version and -V print the version; help [command] prints the usage", () => {
    for (const v of ["--version", "-V"]) expect(cli([v])).toMatchObject({ code: EXIT.OK, out: "iommu-demo 1.2.3\n" });
    expect(cli(["help"]).out).toMatch(/^iommu-demo: PCIe passthrough/);
    expect(cli(["help", "run"]).out).toMatch(/^usage: iommu-demo run/);
    const r = cli(["help", "nope"]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.line).toBe("iommu-demo: no help for 'nope' (a command name) (see iommu-demo --help)");
  });
  it("the exit codes are in --help", () => {
    const h = cli(["--help"]).out;
    for (const code of ["0 ok", "1 the device path failed", "2 usage error", "3 model error", "4 I/O error"]) {
      expect(h.replace(/\s+/g, " ")).toContain(code);
    }
  });
  it("a replay with errors exits 1 and says so on stderr in one line", () => {
    const r = cli(["replay", "s.scn"], { "s.scn": "platform x86-q35-vtd\n---\nfrob\next\n" });
    expect(r.code).toBe(EXIT.STORY_FAILED);
    expect(r.line).toBe('iommu-demo replay: s.scn: 1 line not replayed (the "error" records say why)');
    expect(r.out).toContain('"cmd":"error"');
  });
  it("replay --json survives a record past probe.c's 1 MiB line (issue #13 rule 4): built from the records", () => {
    const scn = "platform x86-q35-vtd\n---\ndirty start\ndirty get 0x100000 0x1000000000 0x1\n";
    const r = cli(["replay", "big.scn", "--json"], { "big.scn": scn });
    expect(r.code).toBe(EXIT.OK);
    const j = JSON.parse(r.out) as { file: string; errors: number; transcript: Record<string, unknown>[] };
    expect(j).toMatchObject({ file: "big.scn", errors: 0 });
    expect(j.transcript.map((t) => t.cmd)).toEqual(["hello", "setup", "dirty", "dirty", "done"]);
    expect(j.transcript[3]).toMatchObject({ op: "get", ret: -1, errno: "EINVAL", line_cut: true });
  });
  it("a closed output pipe (| head) ends the process quietly with exit 0, other stream errors still throw", () => {
    const stdout = new EventEmitter() as EventEmitter & { write: (s: string) => boolean };
    stdout.write = () => true;
    const stderr = new EventEmitter() as typeof stdout;
    stderr.write = () => true;
    const exits: number[] = [];
    nodeIo("0.0.0", {
      stdout: stdout as unknown as NodeJS.WritableStream,
      stderr: stderr as unknown as NodeJS.WritableStream,
      exit: (c) => exits.push(c),
    });
    stdout.emit("error", Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    expect(exits).toEqual([EXIT.OK]);
    expect(() => stdout.emit("error", Object.assign(new Error("disk"), { code: "EIO" }))).toThrow("disk");
  });
});
