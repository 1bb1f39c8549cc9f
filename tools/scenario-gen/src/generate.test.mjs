import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GENERATOR_VERSION, generateScenario, MAP_SAFE_MAX, PIN_BUDGET } from "./generate.mjs";
import { generateIommufdScenario } from "./generate-iommufd.mjs";
import { bitmapBytes, checkBody, checkScenario, EDU_DMA_MAX, parseNum } from "./grammar.mjs";
import { EDU_DMA_REACH, PLATFORMS } from "./platforms.mjs";

const ARCHES = ["x86", "arm64"];
const VERSIONS = [1, 2, GENERATOR_VERSION];
const SEEDS = Array.from({ length: 150 }, (_, i) => i);
const U64_MAX = (1n << 64n) - 1n;

/** Body lines of a scenario as token lists (comments stripped). */
function bodyTokens(text) {
  const lines = text.split("\n").map((l) => l.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean));
  return lines.slice(lines.findIndex((t) => t[0] === "---") + 1).filter((t) => t.length);
}

/** type1's checks before pinning, from the platform's facts: true when a map cannot pin anything. */
function refusedBeforePinning(arch, tok) {
  const p = PLATFORMS[arch];
  const [iova, size] = [parseNum(tok[1]), parseNum(tok[2])];
  const v = tok.find((t) => t.startsWith("vaddr="));
  const va = !v
    ? 0x1000_0000_0000n
    : v.startsWith("vaddr=+")
      ? 0x1000_0000_0000n + parseNum(v.slice(7))
      : parseNum(v.slice(10));
  if (size === 0n || tok[3] === "-" || (iova | size | va) % 0x1000n) return true;
  const last = iova + size - 1n;
  return (
    last > U64_MAX || va + size - 1n > U64_MAX || last > p.apertureLast || (iova <= p.msiLast && last >= p.msiStart)
  );
}

describe("scenario-gen: every scenario is one the probe accepts and the recorder's VMs survive", () => {
  for (const [arch, version] of ARCHES.flatMap((a) => VERSIONS.map((v) => [a, v]))) {
    it(`${arch} v${version}: ${SEEDS.length} seeds, every line valid for the probe's grammar`, () => {
      for (const seed of SEEDS) {
        const text = generateScenario(seed, arch, version);
        expect(checkScenario(text), `seed ${seed}`).toEqual([]);
        expect(text).toContain(`platform ${PLATFORMS[arch].name}\n`);
      }
    });

    it(`${arch} v${version}: DMA within edu's limits, pins within the budget, dirty bitmaps small`, () => {
      for (const seed of SEEDS) {
        let pinnable = 0n;
        for (const tok of bodyTokens(generateScenario(seed, arch, version))) {
          if (tok[0] === "dma") {
            const [iova, len] = [parseNum(tok[1]), parseNum(tok[2])];
            expect(len).toBeLessThanOrEqual(EDU_DMA_MAX);
            expect(iova + len, `seed ${seed}: ${tok.join(" ")}`).toBeLessThanOrEqual(EDU_DMA_REACH);
          }
          if (tok[0] === "map" && !refusedBeforePinning(arch, tok)) {
            expect(parseNum(tok[2]), `seed ${seed}: ${tok.join(" ")}`).toBeLessThanOrEqual(MAP_SAFE_MAX);
            pinnable += parseNum(tok[2]);
          }
          if (tok[0] === "touch") pinnable += parseNum(tok[2]);
        }
        expect(pinnable, `seed ${seed}`).toBeLessThanOrEqual(PIN_BUDGET);
      }
    });
  }

  it("is deterministic per seed and carries the seed in its header", () => {
    for (const arch of ARCHES) {
      for (const seed of [0, 1, 17, 0xffff_ffff]) {
        const text = generateScenario(seed, arch);
        expect(generateScenario(seed, arch)).toBe(text);
        expect(text.split("\n")[0]).toBe(
          `# random scenario, seed ${seed}, ${arch} (tools/scenario-gen v${GENERATOR_VERSION})`,
        );
      }
      expect(generateScenario(1, arch)).not.toBe(generateScenario(2, arch));
    }
    expect(() => generateScenario(-1, "x86")).toThrow(RangeError);
    expect(() => generateScenario(1, "riscv")).toThrow(RangeError);
    expect(() => generateScenario(1, "x86", 4)).toThrow(RangeError);
  });

  it("regenerates every committed random fixture byte for byte from the seed, platform and version in its header", () => {
    const root = fileURLToPath(new URL("../../../", import.meta.url));
    const found = [];
    const walk = (dir) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.name === "node_modules" || e.name.startsWith(".")) continue;
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (/^random-\d+\.scn$/.test(e.name) && /conformance/.test(dir)) found.push(join(dir, e.name));
      }
    };
    walk(join(root, "apps"));
    walk(join(root, "packages"));
    expect(found.length).toBeGreaterThan(0);
    for (const file of found) {
      const text = readFileSync(file, "utf8");
      const m =
        /^# random (iommufd )?scenario, seed (\d+), (x86|arm64) \(tools\/scenario-gen (?:iommufd )?v(\d+)\)/.exec(text);
      expect(m, file).not.toBeNull();
      const gen = m[1] ? generateIommufdScenario : generateScenario;
      expect(gen(Number(m[2]), m[3], Number(m[4])), file).toBe(text);
    }
  });

  it("property: any u32 seed gives a valid scenario", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffff_ffff }),
        fc.constantFrom(...ARCHES),
        fc.constantFrom(...VERSIONS),
        (seed, arch, v) => {
          expect(checkScenario(generateScenario(seed, arch, v))).toEqual([]);
        },
      ),
      { numRuns: 100, seed: 13 },
    );
  });

  it("mixes every type1 probe command, header and interaction across 60 seeds", () => {
    const seen = new Set();
    for (const arch of ARCHES) {
      for (const seed of SEEDS.slice(0, 60)) {
        const text = generateScenario(seed, arch);
        for (const line of text.split("\n")) {
          const [cmd, a, b] = line.replace(/#.*/, "").trim().split(/\s+/);
          if (cmd)
            seen.add(
              ["irq", "dirty", "group", "device"].includes(cmd)
                ? `${cmd} ${cmd === "irq" && a === "msi" ? b : cmd === "group" || cmd === "device" ? b : a}`
                : cmd,
            );
          const note = line.split("# ")[1];
          if (note && !line.startsWith("#")) seen.add(`note: ${note.replace(/ 0x.*/, "")}`);
        }
        if (/ vaddr=\+0x3ffff000/.test(text)) seen.add("vaddr: buffer end");
        if (/ dirty 0x/.test(text)) seen.add("unmap dirty");
        if (/^unmap .* vaddr/m.test(text)) seen.add("unmap vaddr");
      }
    }
    const want = [
      "ext",
      "resv",
      "info",
      "map",
      "mapv",
      "unmap",
      "locked",
      "dma",
      "touch",
      "set-iommu",
      "dirty start",
      "dirty stop",
      "dirty get",
      "irq on",
      "irq off",
      "irq raise",
      "group set",
      "group unset",
      "group status",
      "device open",
      "device close",
      "platform",
      "devices",
      "memlock",
      "param",
      "iommu",
      "note: adjacent after",
      "note: adjacent before",
      "note: overlaps, starts inside",
      "note: bisects",
      "note: ends at the MSI window",
      "note: inside the MSI window",
      "note: ends at the aperture end",
      "note: past the aperture",
      "note: u64 last page",
      "note: wraps past 2^64",
      "note: the ITS doorbell IOVA",
      "note: crosses the end of a mapping",
      "note: re-supply the vaddr",
      "vaddr: buffer end",
      "unmap dirty",
      "unmap vaddr",
    ];
    expect(want.filter((w) => !seen.has(w))).toEqual([]);
  });
});

describe("scenario-gen grammar: rejects what the probe rejects", () => {
  it.each([
    ["dma 0x0 0x1000 to-dev", "edu aborts QEMU 7.2 on a 4096-byte DMA"],
    ["dma 0x0 0x0 to-dev", "LEN must be 1..4096"],
    ["dma 0x0 0x10 from-dev fill=0x1", "bad argument"],
    ["dma 0x0 0x10 sideways", "direction must be to-dev or from-dev"],
    ["map 0x0 0x1000 x", "bad PROT"],
    ["map 0x0 0x1000", "missing PROT"],
    ["map 0x0 0x1000 rw vaddr=0x5", "bad argument"],
    ["mapv 0x0 0x1000 rw", "bad argument"],
    ["unmap 0 0x1000000000 dirty 0x1", "dirty bitmap too large for one record"],
    ["unmap 0 0x1000 everything", "bad argument"],
    ["dirty get 0x100000 0x1000000000 0x1", "dirty bitmap too large for one record"],
    ["dirty get 0x0 0x1000", "usage: dirty start|stop|get IOVA SIZE PGSIZE"],
    ["group 2 set", "usage: group"],
    ["device 0 reopen", "usage: device"],
    ["irq msi maybe", "usage: irq"],
    ["irq raise value=0x100000000", "usage: irq raise"],
    ["irq msi on dev=2", "bad dev=K"],
    ["info argsz=0x100000000", "bad argsz"],
    ["touch 0x0 0x1000", "usage: touch"],
    ["touch +0x3ffff000 0x2000", "usage: touch"],
    ["set-iommu type2", "usage: set-iommu"],
    ["locked now", "extra arguments"],
    ["iommufd open", "unknown command"],
  ])("%s", (line, why) => {
    expect(checkBody(line.split(" "), 2)).toBe(why);
  });

  it("parses numbers as probe.c's parse_num", () => {
    expect(parseNum("0xffff_ffff_ffff_ffff")).toBe(U64_MAX);
    expect(parseNum("0x1_0000_0000_0000_0000")).toBeNull();
    expect(parseNum("18446744073709551616")).toBeNull();
    expect(parseNum("0x")).toBeNull();
    expect(parseNum("12ab")).toBeNull();
    expect(parseNum("1_000")).toBe(1000n);
    expect(bitmapBytes(0x1000n * 64n, 0x1000n)).toBe(8n);
    expect(bitmapBytes(0x1000n * 65n, 0x1000n)).toBe(16n);
    expect(bitmapBytes(0n, 0n)).toBe(8n);
  });
});
