/**
 * QEMU's big lock (the BQL, `qemu_mutex_lock_iothread` in 7.2): a device model's callback (an MMIO access
 * to its registers, the edu DMA timer) runs under it, and so does every access a vCPU makes to an emulated
 * device's registers. An IOMMU's fault or event interrupt is sent while the DMA that faulted still runs,
 * but the kernel's handler (`dmar_fault`, `arm_smmu_evtq_thread`) starts by reading the IOMMU's registers,
 * so it waits for the lock: it runs when the outermost callback returns, after every access of that burst
 * has been translated. Model order, not time: no clock is involved.
 */
export class Bql {
  private depth = 0;
  private readonly waiting: (() => void)[] = [];

  /** Runs a device callback under the lock; the handlers that waited for it run when the outermost returns. */
  run<T>(callback: () => T): T {
    this.depth++;
    try {
      return callback();
    } finally {
      this.depth--;
      if (this.depth === 0) this.release();
    }
  }

  /** An interrupt whose handler accesses device registers: serviced now if the lock is free, else on release. */
  interrupt(handler: () => void): void {
    if (this.depth > 0) this.waiting.push(handler);
    else handler();
  }

  /** True while a device callback runs. */
  get held(): boolean {
    return this.depth > 0;
  }

  private release(): void {
    // a handler runs unlocked and may itself raise an interrupt, which runs at once (depth is 0)
    for (let h = this.waiting.shift(); h; h = this.waiting.shift()) h();
  }
}
