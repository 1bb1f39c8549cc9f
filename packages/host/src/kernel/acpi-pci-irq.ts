/**
 * `acpi_pci_irq_enable` / `acpi_pci_irq_disable` (drivers/acpi/pci_irq.c, pci_link.c in 6.1): x86's
 * `pcibios_enable_irq` / `pcibios_disable_irq`, run by `pci_enable_device` / `pci_disable_device`.
 * Enabling looks the device's INTx pin up in the `_PRT` (the board's routing), allocates the
 * interrupt link (its first allocation evaluates `_SRS` and logs "ACPI: \_SB_.LNK: Enabled at IRQ n";
 * the link's reference count is never dropped in 6.1, so it stays initialized and never logs again),
 * then registers the GSI with the IOAPIC, which gives the pin an IRTE if it had none. Disabling
 * unregisters the GSI (its IRTE goes with the pin's last user) and logs nothing above debug level.
 */
import type { EduDevice } from "../devices/edu.js";
import type { IoapicGsiMap } from "../irq/ioapic.js";
import type { KernelLog } from "./kernel-log.js";

/** Where the firmware's `_PRT` routes a device's INTx pin: an interrupt link (by ACPI path) and its GSI. */
export interface PciIrqRoute {
  readonly link: string;
  readonly gsi: number;
}

export class AcpiPciIrq {
  /** Links already allocated (`link->irq.initialized`). */
  private readonly initialized = new Set<string>();
  /** Devices whose INTx is registered (`dev->irq_managed`), with their GSI. */
  private readonly managed = new Map<EduDevice, number>();

  constructor(
    private readonly klog: KernelLog,
    private readonly ioapic: IoapicGsiMap,
    /** The `_PRT` lookup for INTx pin `pin` (1 = INTA) of `dev`; null when the table has no entry. */
    private readonly route: (dev: EduDevice, pin: number) => PciIrqRoute | null,
  ) {}

  /** acpi_pci_irq_enable. Throws an ErrnoError when the GSI cannot be registered (pci_enable_device fails). */
  enable(dev: EduDevice): void {
    const pin = dev.config.read(0x3d, 1);
    if (pin === 0 || this.managed.has(dev)) return;
    const r = this.route(dev, pin);
    if (!r) return;
    if (!this.initialized.has(r.link)) {
      this.initialized.add(r.link);
      this.klog.printk(`ACPI: ${r.link}: Enabled at IRQ ${r.gsi}`);
    }
    this.ioapic.map(r.gsi);
    this.managed.set(dev, r.gsi);
  }

  /** acpi_pci_irq_disable → acpi_unregister_gsi → mp_unmap_irq. */
  disable(dev: EduDevice): void {
    const gsi = this.managed.get(dev);
    if (gsi === undefined) return;
    this.managed.delete(dev);
    this.ioapic.unmap(gsi);
  }
}
