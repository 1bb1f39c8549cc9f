import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { errname, errorLine, hex, jsonStr, Line } from "./transcript.js";

describe("jsonStr (probe.c o_str)", () => {
  it("escapes quote and backslash with a backslash, control and high bytes as \\u00XX", () => {
    expect(jsonStr('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(jsonStr("\t\u007f\u00c3")).toBe('"\\u0009\\u007f\\u00c3"');
    expect(jsonStr("ACPI: \\x5c_SB_")).toBe('"ACPI: \\\\x5c_SB_"');
  });
  it("is valid JSON that decodes back to the same byte string", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const s = String.fromCharCode(...bytes);
        const j = jsonStr(s);
        expect(JSON.parse(j)).toBe(s);
        expect(/^[\x20-\x7e]*$/.test(j)).toBe(true);
      }),
      { numRuns: 300, seed: 12 },
    );
  });
});

describe("Line (probe.c o_begin … o_end)", () => {
  it("writes fields in call order with the probe's value formats", () => {
    const line = new Line("map")
      .hex("iova", 0xfee00000n)
      .hex("size", 0x1000)
      .str("prot", "rw")
      .hex("vaddr", 0x100000000000n)
      .ret(-1, 22)
      .end();
    // line 3 of linux-6.1/x86/map-aperture-msi.jsonl
    expect(line).toBe(
      '{"cmd":"map","iova":"0xfee00000","size":"0x1000","prot":"rw","vaddr":"0x100000000000","ret":-1,"errno":"EINVAL"}',
    );
    expect(
      new Line("x")
        .ret(0, 0)
        .int("n", 2779096485)
        .bytes("raw", new Uint8Array([0, 0xa5]))
        .end(),
    ).toBe('{"cmd":"x","ret":0,"n":2779096485,"raw":"00a5"}');
  });
  it("formats hex in lowercase without padding and refuses negatives", () => {
    expect(hex(0n)).toBe('"0x0"');
    expect(hex((1n << 64n) - 1n)).toBe('"0xffffffffffffffff"');
    expect(() => hex(-1)).toThrow(RangeError);
  });
  it("names errnos like errname(), unknown ones as E<n>", () => {
    expect(errname(28)).toBe("ENOSPC");
    expect(errname(524)).toBe("ENOTSUPP");
    expect(errname(200)).toBe("E200");
  });
  it("writes the error record", () => {
    expect(errorLine(7, "map 1", "missing PROT")).toBe('{"cmd":"error","line":7,"text":"map 1","why":"missing PROT"}');
  });
});

describe("probe.c's 1 MiB line buffer", () => {
  it("cuts an over-long line at 2^20 - 1 bytes without its closing brace and newline", async () => {
    const { Probe } = await import("./probe.js");
    const big = new Line("dirty").bytes("bitmap", new Uint8Array(1 << 20).fill(0xab)).end();
    const t = Probe.text([big, '{"cmd":"done"}']);
    expect(t.length).toBe((1 << 20) - 1 + '{"cmd":"done"}\n'.length);
    expect(t.startsWith('{"cmd":"dirty","bitmap":"abab')).toBe(true);
    expect(t.slice((1 << 20) - 1)).toBe('{"cmd":"done"}\n');
    const small = new Line("x").bytes("b", new Uint8Array(4)).end();
    expect(Probe.text([small])).toBe(`${small}\n`);
  });
});
