/**
 * A small seeded generator (splitmix32 state stepping, mulberry32 output): the same seed gives the same
 * scenario on every machine and Node version, which is what makes a recorded seed reproducible.
 */
export class Rng {
  /** @param {number} seed any 32-bit integer */
  constructor(seed) {
    this.state = seed >>> 0;
  }

  /** Uniform 32-bit unsigned integer. */
  u32() {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Integer in [0, n). */
  int(n) {
    return n <= 1 ? 0 : this.u32() % n;
  }

  /** True with probability p. */
  chance(p) {
    return this.u32() / 0x1_0000_0000 < p;
  }

  /** One element of a non-empty array. */
  pick(items) {
    return items[this.int(items.length)];
  }

  /** One key of `{ key: weight }`, chosen by weight. */
  weighted(table) {
    const entries = Object.entries(table).filter(([, w]) => w > 0);
    let r = this.int(entries.reduce((s, [, w]) => s + w, 0));
    for (const [k, w] of entries) {
      if (r < w) return k;
      r -= w;
    }
    return entries[entries.length - 1][0];
  }
}
