/**
 * The CPU side of interrupt delivery: what reached the interrupt controller (an LPI from the GICv3
 * ITS, or a vector at the x86 local APIC after VT-d interrupt remapping), counted per source and
 * vector, and dispatched to the host kernel's handler for that vector (vfio's eventfd signaller).
 */

export interface InterruptRecord {
  /** Who delivered it: the controller and the device it came from, e.g. `its:0000:00:01.0`. */
  readonly source: string;
  /** LPI number (GIC) or IDT vector (x86). */
  readonly vector: number;
  count: number;
}

export type InterruptHandler = (vector: number, source: string) => void;

export class InterruptController {
  private readonly records: InterruptRecord[] = [];
  private readonly handlers = new Map<number, InterruptHandler>();
  /** Interrupts delivered to a vector nobody requested (spurious in Linux terms). */
  spurious = 0;

  constructor(readonly name: string) {}

  /** request_irq: route `vector` to `handler`. */
  request(vector: number, handler: InterruptHandler): void {
    this.handlers.set(vector, handler);
  }

  /** free_irq */
  free(vector: number): void {
    this.handlers.delete(vector);
  }

  hasHandler(vector: number): boolean {
    return this.handlers.has(vector);
  }

  /** An interrupt arrived at the CPU interface. */
  deliver(source: string, vector: number): void {
    let r = this.records.find((x) => x.source === source && x.vector === vector);
    if (!r) {
      r = { source, vector, count: 0 };
      this.records.push(r);
    }
    r.count++;
    const h = this.handlers.get(vector);
    if (h) h(vector, source);
    else this.spurious++;
  }

  /** Everything delivered so far, in order of first arrival. */
  list(): readonly InterruptRecord[] {
    return this.records.map((r) => ({ ...r }));
  }
}
