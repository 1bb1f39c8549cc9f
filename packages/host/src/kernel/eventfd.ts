/**
 * An eventfd(2) counter: the interrupt handler adds 1 per interrupt, a read returns the sum and
 * resets it (EFD_SEMAPHORE off), and a read of a zero counter would block (returns 0n here).
 */
export class EventFd {
  private value = 0n;
  /** Total signals ever received (never reset; for narration and tests). */
  signals = 0;

  constructor(readonly label = "eventfd") {}

  /** eventfd_signal from the kernel side. */
  signal(n = 1n): void {
    this.value += n;
    this.signals++;
  }

  /** read(2): the counter, reset to 0. */
  read(): bigint {
    const v = this.value;
    this.value = 0n;
    return v;
  }

  /** poll(2) readiness without consuming. */
  get readable(): boolean {
    return this.value > 0n;
  }
}
