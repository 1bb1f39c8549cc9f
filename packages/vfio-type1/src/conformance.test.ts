/**
 * Linux 6.1 transcripts replayed against the model: every command's return value, errno, written-back
 * bytes (GET_INFO raw buffers, unmapped sizes, dirty bitmaps), group status and VmLck must match.
 */
import { describe, expect, it } from "vitest";
import { pick, replayScenario } from "./test-support/replay.js";

const SCENARIOS = [
  "basic",
  "info-argsz",
  "map-errors-args",
  "map-overlap",
  "map-aperture-msi",
  "map-unmap-happy",
  "unmap-v2",
  "dirty",
  "dma-entry-limit",
  "two-groups",
  "msi",
  "edu-dma",
];

describe.each(["x86", "arm64"] as const)("Linux 6.1 %s transcripts", (arch) => {
  it.each(SCENARIOS)("%s", (name) => {
    const { got, want } = replayScenario(arch, name);
    expect(got.length).toBe(want.length);
    for (const [i, g] of got.entries()) expect({ i, ...g }).toEqual({ i, ...pick(want[i]!, g) });
  });
  if (arch === "arm64") {
    it("iova-range-48bit", () => {
      const { got, want } = replayScenario(arch, "iova-range-48bit");
      expect(got.length).toBe(want.length);
      for (const [i, g] of got.entries()) expect({ i, ...g }).toEqual({ i, ...pick(want[i]!, g) });
    });
  }
});
