import { describe, expect, it } from "vitest";
import { parseSize } from "./args.js";
import { type CliIo, EXIT, runCli } from "./cli.js";

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
