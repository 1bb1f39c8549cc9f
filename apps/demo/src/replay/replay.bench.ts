/**
 * Cost of a replay: every committed fixture through the model, against parsing the same scenarios
 * (the reference run in the same process). Prints the ratio.
 */
import { ARCHES, listFixtures, parseCommand, parseScenario, readScenario } from "@iommu-sim/conformance";
import { afterAll, bench, describe } from "vitest";
import { replayScenario } from "./replay.js";

const scenarios = ARCHES.flatMap((arch) => listFixtures("linux-6.1", arch)).map(readScenario);

const times: Record<string, number> = {};
function timed(name: string, fn: () => void): () => void {
  return () => {
    const t0 = performance.now();
    fn();
    times[name] = (times[name] ?? 0) + (performance.now() - t0);
  };
}

describe(`replay ${scenarios.length} fixtures`, () => {
  bench(
    "parse only (reference)",
    timed("parse", () => {
      for (const s of scenarios) {
        const scn = parseScenario(s);
        for (const b of scn.body) parseCommand(b, scn.header.devices || 1);
      }
    }),
    { iterations: 20 },
  );
  bench(
    "replay through the model",
    timed("replay", () => {
      for (const s of scenarios) {
        try {
          replayScenario(s);
        } catch {
          // a lower layer still missing: the conformance test reports it; the bench measures what runs
        }
      }
    }),
    { iterations: 20 },
  );
  afterAll(() => {
    if (times.parse && times.replay) {
      console.log(`replay/parse time ratio: ${(times.replay / times.parse).toFixed(1)}x`);
    }
  });
});
