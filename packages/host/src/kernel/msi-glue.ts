/**
 * The contract between vfio-pci and a board's MSI plumbing (the kernel's PCI/MSI irq domains):
 * allocate an interrupt for a device's single MSI vector, compose the message the device must write
 * (through the IOMMU on ARM, to the remapping window on x86), program the device's MSI capability,
 * and route the arriving interrupt to a handler. Implementations: `irq-glue.ts`.
 */
import type { EduDevice } from "../devices/edu.js";

export interface MsiSetup {
  /** Bus address programmed into the device's MSI capability. */
  readonly address: bigint;
  readonly data: number;
  /** The interrupt as the CPU sees it (LPI number or IDT vector). */
  readonly vector: number;
  /** ARM: the IOVA the ITS doorbell page is mapped at in the device's domain (null without a cookie). */
  readonly doorbellIova: bigint | null;
  /** What the glue did, one short line per step (for narration). */
  readonly steps: readonly string[];
}

export interface MsiGlue {
  /** pci_alloc_irq_vectors + request_irq for vector 0. Throws ErrnoError (ENOMEM, ENOSPC, ...). */
  enable(dev: EduDevice, handler: () => void): MsiSetup;
  /** free_irq + pci_free_irq_vectors: the irq domain writes a zero message and the enable bit drops. */
  disable(dev: EduDevice): void;
  /** The current setup of a device, if MSI is enabled. */
  current(dev: EduDevice): MsiSetup | null;
}
