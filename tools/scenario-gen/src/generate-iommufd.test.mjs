import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generateScenario, MAP_SAFE_MAX, PIN_BUDGET } from "./generate.mjs";
import { generateIommufdScenario, IOMMUFD_GENERATOR_VERSION, iommufdHeaderLine } from "./generate-iommufd.mjs";
import { EDU_DMA_MAX, parseNum } from "./grammar.mjs";
import { checkIommufdBody, checkIommufdScenario, parseIopts } from "./grammar-iommufd.mjs";
import { EDU_DMA_REACH, PLATFORMS } from "./platforms.mjs";

const ARCHES = ["x86", "arm64"];
const VERSIONS = [1, IOMMUFD_GENERATOR_VERSION];
const SEEDS = Array.from({ length: 150 }, (_, i) => i);
const U64_MAX = (1n << 64n) - 1n;

/** Body lines of a scenario as token lists (comments stripped). */
function bodyTokens(text) {
  const lines = text.split("\n").map((l) => l.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean));
  return lines.slice(lines.findIndex((t) => t[0] === "---") + 1).filter((t) => t.length);
}

/** iommufd's checks before any pinning: a zero, unaligned or wrapping length never pins. */
function cannotPin(iova, len, auto) {
  if (len === 0n || len % 0x1000n) return true;
  return !auto && iova + len - 1n > U64_MAX;
}

describe("scenario-gen --mode iommufd: scenarios the probe accepts and the recorder's VMs survive", () => {
  for (const [arch, version] of ARCHES.flatMap((a) => VERSIONS.map((v) => [a, v]))) {
    it(`${arch} v${version}: ${SEEDS.length} seeds, every line valid for the probe's iommufd grammar`, () => {
      for (const seed of SEEDS) {
        const text = generateIommufdScenario(seed, arch, version);
        expect(checkIommufdScenario(text), `seed ${seed}`).toEqual([]);
        expect(text).toContain(`platform ${PLATFORMS[arch].name}\n`);
        expect(text).toContain("modset iommufd\n");
        expect(text).toMatch(/^mode (iommufd|none)$/m);
      }
    });

    it(`${arch} v${version}: DMA within edu's limits, every map and copy that could pin within the budget`, () => {
      for (const seed of SEEDS) {
        let pinnable = 0n;
        for (const tok of bodyTokens(generateIommufdScenario(seed, arch, version))) {
          if (tok[0] === "dma") {
            const [iova, len] = [parseNum(tok[1]), parseNum(tok[2])];
            expect(len).toBeLessThanOrEqual(EDU_DMA_MAX);
            expect(iova + len, `seed ${seed}: ${tok.join(" ")}`).toBeLessThanOrEqual(EDU_DMA_REACH);
          }
          if (tok[0] === "ioas" && (tok[1] === "map" || tok[1] === "copy")) {
            const o = parseIopts(
              tok.slice(2).filter((t) => !t.startsWith("src=")),
              3,
            );
            const [iova, len] = o.nums;
            if (cannotPin(iova, len, o.auto)) continue;
            expect(len, `seed ${seed}: ${tok.join(" ")}`).toBeLessThanOrEqual(MAP_SAFE_MAX);
            pinnable += len;
          }
        }
        expect(pinnable, `seed ${seed}`).toBeLessThanOrEqual(PIN_BUDGET);
      }
    });
  }

  it("is deterministic per seed, names seed, platform and version in its first line", () => {
    for (const arch of ARCHES) {
      for (const seed of [0, 1, 17, 0xffff_ffff]) {
        const text = generateIommufdScenario(seed, arch);
        expect(generateIommufdScenario(seed, arch)).toBe(text);
        expect(text.split("\n")[0]).toBe(iommufdHeaderLine(seed, arch, IOMMUFD_GENERATOR_VERSION));
      }
      expect(generateIommufdScenario(1, arch)).not.toBe(generateIommufdScenario(2, arch));
      // a grammar of its own: the type1 scenario of the same seed is another text
      expect(generateIommufdScenario(1, arch)).not.toBe(generateScenario(1, arch));
    }
    expect(() => generateIommufdScenario(-1, "x86")).toThrow(RangeError);
    expect(() => generateIommufdScenario(1, "riscv")).toThrow(RangeError);
    expect(() => generateIommufdScenario(1, "x86", 3)).toThrow(RangeError);
  });

  it("property: any u32 seed gives a valid iommufd scenario", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffff_ffff }),
        fc.constantFrom(...ARCHES),
        fc.constantFrom(...VERSIONS),
        (seed, arch, v) => {
          expect(checkIommufdScenario(generateIommufdScenario(seed, arch, v))).toEqual([]);
        },
      ),
      { numRuns: 100, seed: 29 },
    );
  });

  it("mixes every iommufd and cdev command and each interaction across 60 seeds", () => {
    const seen = new Set();
    for (const arch of ARCHES) {
      for (const seed of SEEDS.slice(0, 60)) {
        const text = generateIommufdScenario(seed, arch);
        for (const line of text.split("\n")) {
          const tok = line.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean);
          if (!tok.length) continue;
          const two = ["iommufd", "ioas", "cdev", "vfio-ioas", "hwpt"].includes(tok[0]);
          seen.add(
            two ? `${tok[0]} ${tok[1]}` : tok[0] === "group" || tok[0] === "device" ? `${tok[0]} ${tok[2]}` : tok[0],
          );
          if (tok.some((t) => t.startsWith("size="))) seen.add("size=");
          if (tok.some((t) => t.startsWith("tail="))) seen.add("tail=");
          if (tok.includes("auto")) seen.add(`${tok[1]} auto`);
          const note = line.startsWith("#") ? null : line.split("# ")[1];
          if (note) seen.add(`note: ${note.replace(/ 0x.*/, "").replace(/^episode (\w+).*/, "episode $1")}`);
        }
      }
    }
    const want = [
      "iommufd open",
      "iommufd close",
      "ioas alloc",
      "ioas ranges",
      "ioas allow",
      "ioas map",
      "ioas unmap",
      "ioas copy",
      "ioas destroy",
      "destroy",
      "option",
      "vfio-ioas get",
      "vfio-ioas set",
      "vfio-ioas clear",
      "hw-info",
      "hwpt alloc",
      "cdev open",
      "cdev bind",
      "cdev attach",
      "cdev detach",
      "cdev close",
      "devinfo",
      "group open",
      "group close",
      "group set-iommufd",
      "group status",
      "device open",
      "device close",
      "dma",
      "irq",
      "locked",
      "resv",
      "platform",
      "devices",
      "memlock",
      "mode",
      "modset",
      "size=",
      "tail=",
      "map auto",
      "copy auto",
      "note: adjacent after",
      "note: overlaps the start",
      "note: bisects",
      "note: from one mapping to the end of another",
      "note: wraps past 2^64",
      "note: u64 last page",
      "note: inside the MSI window",
      "note: past the aperture",
      "note: everything",
      "note: iommufd fd -1",
      "note: exactly the MSI window",
      "note: episode dma",
      "note: episode resv",
      "note: episode allow",
      "note: episode busy",
      "note: episode copy",
      "note: episode group",
      "note: episode hwpt",
      "note: episode ranges",
      "note: episode argsz",
      "note: episode share",
      "note: episode pin",
      "note: episode huge",
      "note: episode closefd",
      "note: episode allowfix",
      "note: episode reattach",
      "note: episode msi",
      "note: episode autofill",
    ];
    expect(want.filter((w) => !seen.has(w))).toEqual([]);
  });
});

describe("scenario-gen iommufd grammar: rejects what probe.c rejects", () => {
  it.each([
    ["iommufd reopen", "usage: iommufd open|close"],
    ["ioas", "usage: ioas"],
    ["ioas frob", "usage: ioas alloc|ranges|allow|map|unmap|copy|destroy ..."],
    ["ioas map 0x1000 rw", "usage: ioas map"],
    ["ioas map 0x1000 0x1000", "missing PROT (r, w, rw, -)"],
    ["ioas map 0x1000 0x1000 rx", "bad PROT/argument"],
    ["ioas map 0x1000 0x1000 rw ioas=16", "bad PROT/argument"],
    ["ioas map 0x1000 0x1000 rw vaddr=0x5", "bad vaddr"],
    ["ioas copy 0x1000 0x1000 rw src=0", "usage: ioas copy"],
    ["ioas copy 0x1000 0x1000 0x2000 rw src=16", "bad src=K"],
    ["ioas unmap 0x1000", "usage: ioas unmap IOVA SIZE [ioas=K]"],
    ["ioas allow 0x1000-zz", "usage: ioas allow START-LAST ... [ioas=K]"],
    ["ioas allow -0x1000", "usage: ioas allow START-LAST ... [ioas=K]"],
    ["destroy", "usage: destroy ID|hwpt=K"],
    ["option huge", "usage: option"],
    ["option rlimit set", "set needs a value"],
    ["vfio-ioas put", "usage: vfio-ioas get|set|clear"],
    ["hwpt free", "usage: hwpt alloc [dev=K] [ioas=K] [FLAGS]"],
    ["cdev reset", "usage: cdev"],
    ["group 2 open", "usage: group"],
    ["group 0 steal", "usage: group"],
    ["dma 0x0 0x1000 to-dev", "edu aborts QEMU 7.2 on a 4096-byte DMA"],
    ["map 0x0 0x1000 x", "bad PROT"],
  ])("%s", (line, why) => {
    expect(checkIommufdBody(line.split(" "), 2)).toBe(why);
  });

  it.each([
    "ioas alloc size=0x20 tail=0xff",
    "ioas allow 0x1000-0x1fff 0x3000:0x3fff ioas=1",
    "ioas allow",
    "ioas map 0 0x1000 rw auto vaddr=abs:0x0 ioas=2",
    "ioas copy 0x1000 0x1000 0x2000 rw src=1 ioas=0",
    "destroy hwpt=0",
    "option huge set 1 ioas=1",
    "cdev attach dev=1 hwpt=2",
    "cdev bind bad",
    "group 1 set-iommufd",
  ])("accepts %s", (line) => {
    expect(checkIommufdBody(line.split(" "), 2)).toBeNull();
  });

  it("reads header lines mode and modset", () => {
    const text = (mode) => `platform x86-q35-vtd\nmode ${mode}\nmodset iommufd\n---\niommufd open\n`;
    expect(checkIommufdScenario(text("iommufd"))).toEqual([]);
    expect(checkIommufdScenario(text("vfio"))).toEqual([{ line: 2, why: "bad mode" }]);
  });
});
