/**
 * The DMA-FQ flush queue (Linux 6.1 `drivers/iommu/dma-iommu.c`, moved there from iova.c in 5.17;
 * reference §1.7): unmapped IOVAs wait in a per-CPU ring until an IOTLB flush that *started after
 * they were queued* has finished; only then are they handed back to the allocator. The 10 ms timer
 * is not simulated with a clock: the board calls `timeout()` when it decides the timer fired.
 */

import type { Pfn, PfnCount } from "@iova/allocator";

/** IOVA_FQ_SIZE: ring slots per CPU; one slot stays empty, so a ring holds 255 entries. */
export const IOVA_FQ_SIZE = 256;
/** IOVA_FQ_TIMEOUT in ms: how long after the first queued entry the timer fires (informative here). */
export const IOVA_FQ_TIMEOUT_MS = 10;

/** One queued unmap: a pfn range and the flush-start count when it was queued. */
export interface FqEntry {
  readonly pfn: Pfn;
  readonly pages: PfnCount;
  readonly counter: number;
}

interface Ring {
  readonly entries: (FqEntry | undefined)[];
  head: number;
  tail: number;
}

export interface FlushQueueHooks {
  /** `domain->ops->flush_iotlb_all`. */
  flushIotlbAll(): void;
  /** `free_iova_fast` into the allocator, on the CPU doing the freeing. */
  freeIova(pfn: Pfn, pages: PfnCount, cpu: number): void;
}

export class FlushQueue {
  private readonly rings: Ring[];
  /** fq_flush_start_cnt: IOTLB flushes started. */
  private startCnt = 0;
  /** fq_flush_finish_cnt: IOTLB flushes finished. */
  private finishCnt = 0;
  /** fq_timer_on: a timeout is pending (set by the first queue after a timeout). */
  private timerOn = false;

  constructor(
    readonly cpus: number,
    private readonly hooks: FlushQueueHooks,
  ) {
    if (!Number.isInteger(cpus) || cpus < 1) throw new RangeError(`flush queue needs >= 1 cpu, got ${cpus}`);
    this.rings = Array.from({ length: cpus }, () => ({
      entries: new Array<FqEntry | undefined>(IOVA_FQ_SIZE).fill(undefined),
      head: 0,
      tail: 0,
    }));
  }

  /** Flushes started / finished so far (the two atomics of the cookie). */
  get flushStartCount(): number {
    return this.startCnt;
  }
  get flushFinishCount(): number {
    return this.finishCnt;
  }
  /** True while the 10 ms timer is armed. */
  get timerPending(): boolean {
    return this.timerOn;
  }

  /** `queue_iova`: free what is already flushed, flush if the ring is full, then append. */
  queue(pfn: Pfn, pages: PfnCount, cpu = 0): void {
    const ring = this.ring(cpu);
    // Entries another CPU's flush already covered go first (fq_ring_free).
    this.ringFree(ring, cpu);
    if (this.full(ring)) {
      this.flushIotlb();
      this.ringFree(ring, cpu);
    }
    const idx = ring.tail;
    ring.tail = (idx + 1) % IOVA_FQ_SIZE;
    // The entry waits for a flush that *starts* after now: hence the start count.
    ring.entries[idx] = { pfn, pages, counter: this.startCnt };
    this.timerOn = true;
  }

  /** `fq_flush_timeout`: disarm, flush the IOTLB once, then free every CPU's flushed entries on `cpu`. */
  timeout(cpu = 0): void {
    this.timerOn = false;
    this.flushIotlb();
    for (const ring of this.rings) this.ringFree(ring, cpu);
  }

  /** Entries waiting in every ring, oldest first per CPU. */
  pending(): FqEntry[] {
    const out: FqEntry[] = [];
    for (const ring of this.rings) {
      for (let i = ring.head; i !== ring.tail; i = (i + 1) % IOVA_FQ_SIZE) {
        const e = ring.entries[i];
        if (e) out.push(e);
      }
    }
    return out;
  }

  /** Granules waiting to be recycled. */
  pendingPages(): number {
    let n = 0;
    for (const e of this.pending()) n += e.pages;
    return n;
  }

  /** `iommu_dma_free_fq`: the cookie is going away with its allocator; entries are dropped, not freed. */
  destroy(): void {
    this.timerOn = false;
    for (const ring of this.rings) {
      ring.entries.fill(undefined);
      ring.head = 0;
      ring.tail = 0;
    }
  }

  private ring(cpu: number): Ring {
    const ring = this.rings[cpu];
    if (!ring) throw new RangeError(`cpu ${cpu} out of range (flush queue has ${this.cpus})`);
    return ring;
  }

  private full(ring: Ring): boolean {
    return (ring.tail + 1) % IOVA_FQ_SIZE === ring.head;
  }

  /** `fq_flush_iotlb`: the counters bracket the driver's flush_iotlb_all. */
  private flushIotlb(): void {
    this.startCnt++;
    this.hooks.flushIotlbAll();
    this.finishCnt++;
  }

  /** `fq_ring_free`: recycle, oldest first, every entry queued before a flush that has finished. */
  private ringFree(ring: Ring, cpu: number): void {
    const finished = this.finishCnt;
    while (ring.head !== ring.tail) {
      const e = ring.entries[ring.head];
      if (!e || e.counter >= finished) break;
      ring.entries[ring.head] = undefined;
      ring.head = (ring.head + 1) % IOVA_FQ_SIZE;
      this.hooks.freeIova(e.pfn, e.pages, cpu);
    }
  }
}
