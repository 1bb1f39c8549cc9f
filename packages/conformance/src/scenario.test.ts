import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ARCHES, fixtureSets, listFixtures, readScenario } from "./fixtures.js";
import {
  BASE_VA,
  type BodyLine,
  parseCommand,
  parseNum,
  parseScenario,
  parseVaddr,
  readLines,
  toByteString,
  tokenize,
} from "./scenario.js";

function body(text: string, line = 5): BodyLine {
  return { line, text, tokens: tokenize(text.split("#")[0]!) };
}

describe("parseNum (probe.c parse_num)", () => {
  it("reads hex and decimal with _ separators", () => {
    expect(parseNum("0x1000")).toBe(0x1000n);
    expect(parseNum("0X1f")).toBe(0x1fn);
    expect(parseNum("4096")).toBe(4096n);
    expect(parseNum("0x1_0000_0000")).toBe(0x1_0000_0000n);
    expect(parseNum("1_000")).toBe(1000n);
    expect(parseNum("_")).toBe(0n);
  });
  it("rejects what the probe rejects", () => {
    for (const s of ["", "0x", "-1", "+1", "12a", "0xg", "1 ", "0x10000000000000000", "18446744073709551616"]) {
      expect(parseNum(s), s).toBeNull();
    }
    expect(parseNum("0xffffffffffffffff")).toBe((1n << 64n) - 1n);
    expect(parseNum("18446744073709551615")).toBe((1n << 64n) - 1n);
  });
  it("round-trips every u64 in both bases, whatever the separators", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat(20), (v, cut) => {
        const h = v.toString(16);
        const at = Math.min(cut, h.length);
        expect(parseNum(`0x${h.slice(0, at)}_${h.slice(at)}`)).toBe(v);
        expect(parseNum(v.toString())).toBe(v);
      }),
      { numRuns: 300, seed: 10 },
    );
  });
});

describe("lines and tokens", () => {
  it("splits like fgets(4096): CR/LF stripped, long lines in 4095-byte pieces, NUL ends a line", () => {
    expect(readLines("a\r\nb\n\nc")).toEqual(["a", "b", "", "c"]);
    const long = "x".repeat(5000);
    expect(readLines(`${long}\n`).map((l) => l.length)).toEqual([4095, 905]);
    expect(readLines("ab\0cd\nef")).toEqual(["ab", "ef"]);
  });
  it("keeps at most 16 tokens", () => {
    const t = tokenize(Array.from({ length: 20 }, (_, i) => `t${i}`).join(" \t"));
    expect(t).toHaveLength(16);
    expect(t[15]).toBe("t15");
  });
  it("treats text as bytes (UTF-8)", () => {
    expect(toByteString("é")).toBe("\u00c3\u00a9");
  });
  it("parses vaddr=+OFF and vaddr=abs:ADDR", () => {
    expect(parseVaddr("vaddr=+0x1000")).toBe(BASE_VA + 0x1000n);
    expect(parseVaddr("vaddr=abs:0xfffffffffffff000")).toBe(0xfffffffffffff000n);
    expect(parseVaddr("vaddr=0x1000")).toBeNull();
    expect(parseVaddr("vaddr=+")).toBeNull();
  });
});

describe("parseScenario", () => {
  it("reads the header and reports unknown header lines with their line number", () => {
    const s = parseScenario(
      [
        "# c",
        "platform arm64-virt-smmuv3 # x",
        "param dma_entry_limit=3",
        "param foo.bar=1",
        "memlock 0x10000",
        "devices 2",
        "iommu type1",
        "devices 9",
        "bogus",
        "---",
        "ext",
        "",
        "  # only a comment",
        "locked",
      ].join("\n"),
    );
    expect(s.header).toEqual({
      platform: "arm64-virt-smmuv3",
      params: "dma_entry_limit=3 foo.bar=1",
      memlock: 0x10000n,
      devices: 2,
      iommu: "type1",
      mode: "type1",
      modset: "",
    });
    expect(s.headerErrors).toEqual([
      { kind: "error", line: 8, text: "devices 9", why: "unknown header line" },
      { kind: "error", line: 9, text: "bogus", why: "unknown header line" },
    ]);
    expect(s.body.map((b) => [b.line, b.tokens])).toEqual([
      [11, ["ext"]],
      [14, ["locked"]],
    ]);
  });
  it("without a --- line everything is header and there is no body", () => {
    const s = parseScenario("platform x\next\n");
    expect(s.body).toEqual([]);
    expect(s.headerErrors.map((e) => e.line)).toEqual([2]);
  });
  it("keeps the probe's buffer limits (platform 63 bytes, params 511)", () => {
    const s = parseScenario(`platform ${"p".repeat(100)}\n${"param x=1\n".repeat(200)}---\n`);
    expect(s.header.platform).toHaveLength(63);
    expect(s.header.params).toHaveLength(511);
  });
  it("every committed type1 fixture parses without errors", () => {
    const sets = fixtureSets().filter((set) => !set.endsWith("-iommufd"));
    expect(sets).toEqual(["linux-6.1", "linux-6.12", "linux-6.12-iommufd-compat", "linux-7.3"]);
    let files = 0;
    for (const set of sets) {
      for (const f of ARCHES.flatMap((arch) => listFixtures(set, arch))) {
        const key = `${f.set}/${f.arch}/${f.name}`;
        const s = parseScenario(readScenario(f));
        expect(s.headerErrors, key).toEqual([]);
        const ndev = s.header.devices || 1;
        for (const b of s.body) expect(parseCommand(b, ndev).kind, `${key}:${b.line}`).not.toBe("error");
        files++;
      }
    }
    expect(files).toBeGreaterThanOrEqual(4 * 25);
  });
});

describe("parseCommand (probe.c cmd_* argument checks)", () => {
  const why = (text: string, ndev = 1): string => {
    const c = parseCommand(body(text), ndev);
    return c.kind === "error" ? c.why : `(ok ${c.kind})`;
  };
  it("gives the probe's error text for each malformed form", () => {
    expect(why("ext 1")).toBe("unknown command");
    expect(why("locked now")).toBe("unknown command");
    expect(why("frobnicate")).toBe("unknown command");
    expect(why("resv dev=1")).toBe("bad dev=K");
    expect(why("resv x")).toBe("usage: resv [dev=K]");
    expect(why("info argsz=0x100000000")).toBe("bad argsz");
    expect(why("info fill=0x100")).toBe("bad fill");
    expect(why("info foo")).toBe("unknown info argument");
    expect(why("info argsz=0x4000000")).toBe("argsz too large for probe buffer");
    expect(why("map 0x1000")).toBe("usage: map IOVA SIZE PROT [vaddr=+OFF|vaddr=abs:ADDR]");
    expect(why("map 0x1000 0x1000")).toBe("missing PROT");
    expect(why("map 0x1000 0x1000 x")).toBe("bad PROT (r, w, rw, -)");
    expect(why("map 0x1000 0x1000 rw vaddr=1")).toBe("bad argument");
    expect(why("mapv 0x1000 0x1000 rw")).toBe("bad argument");
    expect(why("unmap 0 0 dirty")).toBe("bad argument");
    expect(why("unmap 0")).toBe("usage: unmap IOVA SIZE [all] [dirty PGSIZE] [vaddr]");
    expect(why("dirty")).toBe("usage: dirty start|stop|get IOVA SIZE PGSIZE");
    expect(why("dirty start now")).toBe("extra arguments");
    expect(why("dirty get 0 0")).toBe("usage: dirty start|stop|get IOVA SIZE PGSIZE");
    expect(why("dma 0 0x10 to-dev dev=3", 2)).toBe("bad dev=K");
    expect(why("dma 0 0x10")).toBe("usage: dma IOVA LEN to-dev|from-dev [vaddr=+OFF] [fill=0xBB] [klog=all] [dev=K]");
    expect(why("dma 0 0x10 sideways")).toBe("direction must be to-dev or from-dev");
    expect(why("dma 0 0x10 from-dev fill=0x1")).toBe("bad argument");
    expect(why("dma 0 0x1001 to-dev")).toBe("LEN must be 1..4096 (edu buffer) and inside the probe buffer");
    expect(why("dma 0 0x10 to-dev vaddr=+0x3ffffff8")).toBe(
      "LEN must be 1..4096 (edu buffer) and inside the probe buffer",
    );
    expect(why("touch 0 0x1000")).toBe("usage: touch +OFF SIZE (inside the probe buffer)");
    expect(why("touch +0x3ffff000 0x2000")).toBe("usage: touch +OFF SIZE (inside the probe buffer)");
    expect(why("irq raise value=0x100000000")).toBe("usage: irq raise [value=V] [dev=K]");
    expect(why("irq msi maybe")).toBe("usage: irq msi on|off [dev=K] | irq raise [value=V] [dev=K]");
    expect(why("group 1 set")).toBe("usage: group K set|unset|status|open|close|set-iommufd (K < number of devices)");
    expect(why("device 0 reopen")).toBe("usage: device K open|close");
    expect(why("set-iommu type2")).toBe("usage: set-iommu [type1|type1v2]");
  });
  it("reads the iommufd header lines (mode, modset) and leaves the iommufd commands to the probe", () => {
    const s = parseScenario(["mode none", "modset iommufd", "mode bogus", "---", "ioas alloc size=8"].join("\n"));
    expect(s.header).toMatchObject({ mode: "none", modset: "iommufd" });
    expect(s.headerErrors).toEqual([{ kind: "error", line: 3, text: "mode bogus", why: "unknown header line" }]);
    expect(parseCommand(s.body[0]!, 1)).toEqual({
      kind: "iommufd",
      tokens: ["ioas", "alloc", "size=8"],
      text: "ioas alloc size=8",
    });
    expect(parseCommand(body("group 0 set-iommufd"), 1)).toEqual({ kind: "group", dev: 0, op: "set-iommufd" });
  });
  it("decodes well-formed commands", () => {
    expect(parseCommand(body("map 0x100000 0x2000 rw vaddr=+0x10000"), 1)).toEqual({
      kind: "map",
      iova: 0x100000n,
      size: 0x2000n,
      flags: 3,
      vaddr: BASE_VA + 0x10000n,
      vaddrOnly: false,
    });
    expect(parseCommand(body("unmap 0 0 all dirty 0x1000 vaddr"), 1)).toMatchObject({
      kind: "unmap",
      flags: 2 | 1 | 4,
      pgsize: 0x1000n,
    });
    expect(parseCommand(body("dma dev=1 0x10 4 from-dev klog=all"), 2)).toMatchObject({
      kind: "dma",
      dev: 1,
      devGiven: true,
      toDev: false,
      klogAll: true,
      fill: null,
    });
    expect(parseCommand(body("irq raise value=2 dev=1"), 2)).toEqual({ kind: "irq", dev: 1, op: "raise", value: 2n });
    expect(parseCommand(body("set-iommu"), 1)).toEqual({ kind: "set-iommu", iommu: "type1v2" });
  });
  it("never throws, whatever the tokens", () => {
    const word = fc.oneof(
      fc.constantFrom("ext", "resv", "info", "map", "mapv", "unmap", "dirty", "locked", "dma", "touch", "irq"),
      fc.constantFrom("group", "device", "set-iommu", "all", "dirty", "vaddr", "rw", "to-dev", "msi", "on"),
      fc.constantFrom("dev=1", "dev=x", "argsz=", "fill=0x1", "vaddr=+", "+0x10", "0x", "0x1000", "-"),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 8 }), (toks, ndev) => {
        const b: BodyLine = { line: 1, text: toks.join(" "), tokens: toks.filter((t) => t.length) };
        if (b.tokens.length === 0) return;
        const c = parseCommand(b, ndev);
        expect(typeof c.kind).toBe("string");
      }),
      { numRuns: 500, seed: 11 },
    );
  });
});
