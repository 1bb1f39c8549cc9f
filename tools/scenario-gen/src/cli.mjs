#!/usr/bin/env node
// scenario-gen: write seeded random recorder scenarios (random-<seed>.scn) for one platform.
//   node tools/scenario-gen/src/cli.mjs --platform x86|arm64 --seed N [--count K] [--out DIR] [--gen VERSION]
// Without --out the single scenario goes to stdout.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { generateScenario } from "./generate.mjs";

const { values } = parseArgs({
  options: {
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
if (values.help || !values.platform || !Number.isInteger(seed) || !Number.isInteger(count) || count < 1) {
  console.error("usage: scenario-gen --platform x86|arm64 --seed N [--count K] [--out DIR] [--gen VERSION]");
  process.exit(values.help ? 0 : 2);
}
if (!values.out && count > 1) {
  console.error("scenario-gen: --count needs --out");
  process.exit(2);
}
for (let s = seed; s < seed + count; s++) {
  const text = generateScenario(s, values.platform, values.gen ? Number(values.gen) : undefined);
  if (!values.out) process.stdout.write(text);
  else {
    mkdirSync(values.out, { recursive: true });
    writeFileSync(join(values.out, `random-${s}.scn`), text);
  }
}
