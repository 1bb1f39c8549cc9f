/**
 * The IOAPIC irq domain's GSI mappings (arch/x86/kernel/apic/io_apic.c, 6.1). `mp_map_gsi_to_irq` with
 * IOAPIC_MAP_ALLOC finds the pin of a GSI; the first user of a non-ISA pin allocates its irq
 * (`alloc_irq_from_domain`), and the parent domain, interrupt remapping, reserves an IRTE right then.
 * Later users of the same pin (PCI devices whose INTx route to the same GSI) only count
 * (`mp_chip_data.count`); `mp_unmap_irq` frees the irq, and with it the IRTE, when the last one goes.
 * The ISA pins are set up at boot and never unmapped (the board takes their entries itself).
 */
import { ErrnoError } from "@iommu/core";

/** The parent irq domain's side of a pin: intel_irq_remapping for X86_IRQ_ALLOC_TYPE_IOAPIC. */
export interface IoapicIrqParent {
  allocIoapicPin(ioapicId: number, pin: number): number;
  freeIoapicPin(ioapicId: number, pin: number): void;
}

export interface IoapicInit {
  /** The IOAPIC's APIC id (as the MADT and the DMAR device scope name it). */
  readonly id: number;
  /** First GSI of its pins (MADT `global_irq_base`). */
  readonly gsiBase: number;
  /** Redirection entries (QEMU's IOAPIC: 24). */
  readonly pins: number;
}

export class IoapicGsiMap {
  /** Users of each mapped pin. */
  private readonly count = new Map<number, number>();

  constructor(
    readonly ioapic: IoapicInit,
    private readonly parent: IoapicIrqParent,
  ) {}

  /** `mp_find_ioapic` + `mp_find_ioapic_pin`: ENODEV for a GSI no pin of this IOAPIC serves. */
  pinOf(gsi: number): number {
    const pin = gsi - this.ioapic.gsiBase;
    if (!Number.isInteger(pin) || pin < 0 || pin >= this.ioapic.pins)
      throw new ErrnoError("ENODEV", "mp_map_gsi_to_irq", "no IOAPIC pin serves this GSI", { gsi });
    return pin;
  }

  /** `mp_map_gsi_to_irq(gsi, IOAPIC_MAP_ALLOC)`: the first user of the pin takes its IRTE (throws leaving nothing). */
  map(gsi: number): void {
    const pin = this.pinOf(gsi);
    const n = this.count.get(pin) ?? 0;
    if (n === 0) this.parent.allocIoapicPin(this.ioapic.id, pin);
    this.count.set(pin, n + 1);
  }

  /** `mp_unmap_irq`: the last user of the pin frees its irq and IRTE. */
  unmap(gsi: number): void {
    const pin = this.pinOf(gsi);
    const n = this.count.get(pin) ?? 0;
    if (n === 0) return;
    if (n > 1) {
      this.count.set(pin, n - 1);
      return;
    }
    this.count.delete(pin);
    this.parent.freeIoapicPin(this.ioapic.id, pin);
  }

  /** How many users the pin of `gsi` has (0: unmapped). */
  usersOf(gsi: number): number {
    return this.count.get(this.pinOf(gsi)) ?? 0;
  }
}
