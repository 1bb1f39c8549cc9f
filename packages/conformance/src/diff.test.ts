import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { diffTranscripts, formatDiff } from "./diff.js";

const HELLO =
  '{"cmd":"hello","kernel":"6.1.0-56-amd64","kernel_version":"#1 SMP","machine":"x86_64","platform":"x86-q35-vtd","group":1,"base":"0x100000000000"}';
const MAP = '{"cmd":"map","iova":"0x100000","size":"0x1000","prot":"rw","vaddr":"0x100000000000","ret":0}';
const DMA = '{"cmd":"dma","iova":"0x400000","completed":1,"klog":["DMAR: fault"]}';
const DONE = '{"cmd":"done"}';
const T = [HELLO, MAP, DMA, DONE].join("\n");

describe("diffTranscripts", () => {
  it("agrees with itself", () => {
    expect(diffTranscripts(T, T)).toBeNull();
    expect(diffTranscripts(`${T}\n`, T)).toBeNull();
  });
  it("ignores the recording host in hello and kernel log text", () => {
    const model = [
      HELLO.replace("6.1.0-56-amd64", "iommu-sim").replace('"x86_64"', '"model"').replace("#1 SMP", "v0"),
      MAP,
      DMA.replace('["DMAR: fault"]', "[]"),
      DONE,
    ].join("\n");
    expect(diffTranscripts(T, model)).toBeNull();
  });
  it("does not ignore host-like fields outside hello", () => {
    const e = '{"cmd":"x","machine":"a"}';
    expect(diffTranscripts(e, '{"cmd":"x","machine":"b"}')?.field).toBe("machine");
  });
  it("names the first differing line and field", () => {
    const d = diffTranscripts(T, T.replace('"ret":0', '"ret":-1,"errno":"EEXIST"'));
    expect(d).toMatchObject({ line: 2, cmd: "map", field: "ret", expected: "0", actual: "-1" });
    expect(formatDiff(d!)).toContain("line 2 (map) field ret");
  });
  it("sees field order, missing and extra fields", () => {
    const swapped = MAP.replace('"prot":"rw","vaddr":"0x100000000000"', '"vaddr":"0x100000000000","prot":"rw"');
    expect(diffTranscripts(MAP, swapped)?.field).toBe("prot");
    expect(diffTranscripts(MAP, MAP.replace(',"ret":0', ""))?.field).toBe("ret");
    expect(diffTranscripts(MAP, MAP.replace("}", ',"errno":"E"}'))?.field).toBe("errno");
  });
  it("sees missing and extra lines, and non-JSON lines", () => {
    expect(diffTranscripts(T, [HELLO, MAP, DMA].join("\n"))).toMatchObject({ line: 4, field: "(line)", cmd: "done" });
    expect(diffTranscripts([HELLO].join("\n"), T)).toMatchObject({ line: 2, field: "(line)" });
    expect(diffTranscripts("garbage", "garbage")).toBeNull();
    expect(diffTranscripts("garbage", "other")).toMatchObject({ line: 1, field: "(line)" });
  });
  it("any change to one compared field value is found at that line and field", () => {
    const lines = [MAP, '{"cmd":"info","argsz":4096,"raw":"0010"}', '{"cmd":"unmap","flags":["all"],"ret":0}'];
    fc.assert(
      fc.property(fc.nat(lines.length - 1), fc.nat(10), fc.string({ minLength: 1, maxLength: 4 }), (li, fi, s) => {
        const obj = JSON.parse(lines[li]!) as Record<string, unknown>;
        const keys = Object.keys(obj).filter((k) => k !== "cmd");
        const key = keys[fi % keys.length]!;
        const changed = { ...obj, [key]: `${JSON.stringify(obj[key])}${s}` };
        const actual = lines.map((l, i) => (i === li ? JSON.stringify(changed) : l)).join("\n");
        const d = diffTranscripts(lines.join("\n"), actual);
        expect(d).toMatchObject({ line: li + 1, field: key });
      }),
      { numRuns: 200, seed: 13 },
    );
  });
});
