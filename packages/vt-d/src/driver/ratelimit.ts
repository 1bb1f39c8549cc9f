/**
 * `struct ratelimit_state` / `___ratelimit` (lib/ratelimit.c): at most `burst` messages per `interval`.
 * dmar_fault keeps one static state (DEFAULT_RATELIMIT_INTERVAL 5 s, DEFAULT_RATELIMIT_BURST 10) shared
 * by every DMAR unit, and spends a token on the status line and on every fault-record check.
 */
export class Ratelimit {
  private begin: number | null = null;
  private printed = 0;
  /** Messages refused since the window began (Linux prints "N callbacks suppressed" when it rolls over). */
  missed = 0;

  constructor(
    readonly intervalMs = 5000,
    readonly burst = 10,
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
