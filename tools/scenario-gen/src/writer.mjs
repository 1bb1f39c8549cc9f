// What both generators (type1 and iommufd) share: the seeded choice source, the platform, the pin budget and the
// way a line is written (padded, with a trailing comment saying what it aims at).
import { HUGE, PAGE } from "./numbers.mjs";
import { PLATFORMS } from "./platforms.mjs";
import { Rng } from "./rng.mjs";

/** Most bytes a scenario may ask to pin or touch in all. */
export const PIN_BUDGET = 0x300_0000n;

export class ScenarioWriter {
  constructor(seed, arch, version) {
    this.v = version;
    this.rng = new Rng(seed);
    this.p = PLATFORMS[arch];
    this.arch = arch;
    this.seed = seed;
    this.lines = [];
    this.nextOff = 0n;
    this.budget = PIN_BUDGET;
  }

  emit(line, note) {
    this.lines.push(note ? `${line.padEnd(48)} # ${note}` : line);
  }

  /** An IOVA below 96 MiB, 2 MiB-aligned or a page or half a huge page past it. */
  lowIova() {
    return BigInt(1 + this.rng.int(48)) * HUGE + this.rng.pick([0n, 0n, PAGE, HUGE / 2n]);
  }
}
