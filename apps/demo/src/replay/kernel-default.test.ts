/**
 * Issue 16's promise that adding kernel profiles changed nothing for 6.1: for any scenario, the default host
 * and one built with an explicit `kernel: "6.1"` give byte-identical transcripts (klog and raw bytes
 * included). The conformance suite pins those transcripts to the real 6.1 kernel's; this pins the default to
 * the 6.1 profile, over the whole linux-6.1 set and over scenarios recombined from its lines.
 */
import { ARCHES, type Fixture, listFixtures, readScenario } from "@iommu-sim/conformance";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { replayScenario } from "./replay.js";

const SET = "linux-6.1";
const fixtures = ARCHES.flatMap((arch) => listFixtures(SET, arch));

/** A scenario's header (through `---`) and its body lines. */
function split(text: string): { header: string[]; body: string[] } {
  const lines = text.split("\n");
  const sep = lines.findIndex((l) => l.trim() === "---");
  return { header: lines.slice(0, sep + 1), body: lines.slice(sep + 1).filter((l) => l.trim() !== "") };
}

describe("the 6.1 profile is the default: transcripts unchanged by kernel profiles", () => {
  it("every linux-6.1 scenario: default and --kernel 6.1 are byte-identical", () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(25);
    for (const f of fixtures) {
      const scn = readScenario(f);
      const file = `${f.arch}/${f.name}.scn`;
      expect(replayScenario(scn, { file, kernel: "6.1" }), file).toBe(replayScenario(scn, { file }));
    }
  });

  it("scenarios recombined from the set's lines (one platform's header, any lines of that platform's scenarios)", () => {
    const byArch = new Map(ARCHES.map((a) => [a, fixtures.filter((f: Fixture) => f.arch === a).map(readScenario)]));
    const arb = fc
      .constantFrom(...ARCHES)
      .chain((arch) => {
        const texts = byArch.get(arch) ?? [];
        const bodyLines = texts.flatMap((t) => split(t).body);
        return fc.record({
          header: fc.constantFrom(...texts.map((t) => split(t).header.join("\n"))),
          body: fc.array(fc.constantFrom(...bodyLines), { minLength: 1, maxLength: 25 }),
        });
      })
      .map(({ header, body }) => `${header}\n${body.join("\n")}\n`);
    fc.assert(
      fc.property(arb, (scn) => {
        expect(replayScenario(scn, { kernel: "6.1" })).toBe(replayScenario(scn));
      }),
      { numRuns: 25, seed: 16 },
    );
  });
});
