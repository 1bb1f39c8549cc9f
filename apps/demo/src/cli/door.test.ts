/** `iommu-demo serve` / `exec` on the command line: help, and usage errors before anything starts. */
import { describe, expect, it } from "vitest";
import { EXIT } from "./cli.js";
import { runCliAsync } from "./door.js";

function io() {
  const o = { out: "", err: "" };
  return {
    o,
    io: {
      out: (s: string) => {
        o.out += s;
      },
      err: (s: string) => {
        o.err += s;
      },
      tty: false,
      readFile: () => "",
      writeFile: () => {},
    },
  };
}

describe("iommu-demo serve / exec", () => {
  it("--help describes each, and the main help lists them", async () => {
    for (const cmd of ["serve", "exec"]) {
      const { o, io: i } = io();
      expect(await runCliAsync([cmd, "--help"], i)).toBe(EXIT.OK);
      expect(o.out).toMatch(new RegExp(`^usage: iommu-demo ${cmd} `));
    }
    const { o, io: i } = io();
    await runCliAsync(["--help"], i);
    expect(o.out).toMatch(/^ {2}serve /m);
    expect(o.out).toMatch(/^ {2}exec /m);
  });

  it.each([
    [["exec", "--board", "x86-q35-vtd"], /exec needs a program after --/],
    [["exec", "--board", "pdp11", "--", "true"], /unknown board 'pdp11'/],
    [["exec", "--devices", "9", "--", "true"], /--devices is 1\.\.8/],
    [["exec", "stray", "--", "true"], /a program goes after --/],
    [["exec", "--door", "ptrace", "--", "true"], /unknown door 'ptrace' \(one of preload, seccomp\)/],
    [["exec", "--door", "--", "true"], /--door needs a value/],
    [["serve", "--door", "seccomp"], /unknown option --door for 'serve'/],
    [["serve", "--naive"], /unknown option --naive for 'serve'/],
  ])("%j is a usage error (exit 2), nothing started", async (argv, why) => {
    const { o, io: i } = io();
    expect(await runCliAsync(argv, i)).toBe(EXIT.USAGE);
    expect(o.err).toMatch(why);
  });
});
