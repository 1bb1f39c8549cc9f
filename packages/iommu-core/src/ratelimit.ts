/**
 * `struct ratelimit_state` / `___ratelimit` (lib/ratelimit.c): at most `burst` messages per `interval`.
 * Drivers keep one static state for a printer (`DEFINE_RATELIMIT_STATE(rs, DEFAULT_RATELIMIT_INTERVAL,
 * DEFAULT_RATELIMIT_BURST)`: 5 s, 10): VT-d's `dmar_fault` (shared by every DMAR unit), arm-smmu-v3's
 * event printer (`arm_smmu_evtq_thread`).
 */
/** DEFAULT_RATELIMIT_INTERVAL (5 * HZ) in ms. */
export const DEFAULT_RATELIMIT_INTERVAL_MS = 5000;
/** DEFAULT_RATELIMIT_BURST. */
export const DEFAULT_RATELIMIT_BURST = 10;

export class Ratelimit {
  private begin: number | null = null;
  private printed = 0;
  /** Messages refused since the window began (Linux prints "N callbacks suppressed" when it rolls over). */
  missed = 0;

  constructor(
    readonly intervalMs = DEFAULT_RATELIMIT_INTERVAL_MS,
    readonly burst = DEFAULT_RATELIMIT_BURST,
    /** Model time in ms; the default never advances, so one window lasts forever (no wall clock). */
    private readonly now: () => number = () => 0,
  ) {}

  /** `__ratelimit`: true when the caller may print. */
  allow(): boolean {
    if (this.intervalMs === 0) return true;
    const t = this.now();
    if (this.begin === null) this.begin = t;
    if (t >= this.begin + this.intervalMs) {
      this.begin = t;
      this.printed = 0;
      this.missed = 0;
    }
    if (this.burst > 0 && this.burst > this.printed) {
      this.printed++;
      return true;
    }
    this.missed++;
    return false;
  }
}
