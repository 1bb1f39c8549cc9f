#!/usr/bin/env node
// scenario-gen: write seeded random recorder scenarios (random-<seed>.scn) for one platform.
//   node tools/scenario-gen/src/cli.mjs [--mode type1|iommufd] --platform x86|arm64 --seed N [--count K] [--out DIR] [--gen VERSION]
// Without --out the single scenario goes to stdout. `--mode iommufd` writes /dev/iommu + VFIO cdev scenarios
// (generate-iommufd.mjs, its own version numbers).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { generateScenario } from "./generate.mjs";
import { generateIommufdScenario } from "./generate-iommufd.mjs";

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "type1" },
    platform: { type: "string" },
    seed: { type: "string" },
    count: { type: "string", default: "1" },
    out: { type: "string" },
    gen: { type: "string" },
    help: { type: "boolean" },
  },
});
const seed = Number(values.seed);
const count = Number(values.count);
if (
  values.help ||
  !["type1", "iommufd"].includes(values.mode) ||
  !values.platform ||
  !Number.isInteger(seed) ||
  !Number.isInteger(count) ||
  count < 1
) {
  console.error(
    "usage: scenario-gen [--mode type1|iommufd] --platform x86|arm64 --seed N [--count K] [--out DIR] [--gen VERSION]",
  );
  process.exit(values.help ? 0 : 2);
}
if (!values.out && count > 1) {
  console.error("scenario-gen: --count needs --out");
  process.exit(2);
}
for (let s = seed; s < seed + count; s++) {
  const gen = values.mode === "iommufd" ? generateIommufdScenario : generateScenario;
  const text = gen(s, values.platform, values.gen ? Number(values.gen) : undefined);
  if (!values.out) process.stdout.write(text);
  else {
    mkdirSync(values.out, { recursive: true });
    writeFileSync(join(values.out, `random-${s}.scn`), text);
  }
}
