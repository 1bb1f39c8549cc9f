/**
 * The interrupt-remapping driver (Linux intel/irq_remapping.c): IRTEs are handed out first-fit from a
 * bitmap (`alloc_irte` → `bitmap_find_free_region`, power-of-two aligned blocks for multi-vector MSI),
 * written into the unit's table and made visible with an interrupt-entry-cache invalidation; a device's
 * MSI is then programmed with the remappable-format address (`fill_msi_msg`): 0xfee00000 | handle[14:0]
 * << 5 | format (bit 4) | SHV (bit 3) | handle[15] << 2, data = subhandle.
 *
 * Why the first edu MSI on QEMU q35 gets IRTE 16 (`0xfee00218`): at boot Linux sets up the IOAPIC pins
 * that have ISA interrupt entries — the 16 legacy IRQs minus IRQ2, whose pin 2 is taken by IRQ0's MADT
 * override — in pin order, one IRTE each: indices 0-14. Opening the device with vfio-pci enables it and
 * maps its INTx (GSI 21 on the q35 root bus) through the IOAPIC: index 15 (`allocIoapicPin` in ops.ts,
 * freed when the device is disabled again). The MSI comes next: 16. The boot part and the pin's users
 * are the board's (the q35 board in @iommu-sim/host calls `allocIoapicEntry` per ISA pin).
 */
import { type Device, ErrnoError, type MsiMsg, PciDevice } from "@iommu/core";
import type { DmarUnit } from "./dmar-unit.js";

export const MSI_ADDR_BASE = 0xfee00000;

/** How an IRTE delivers: vector and APIC destination (physical, fixed, edge unless told). */
export interface IrteTarget {
  readonly vector: number;
  readonly destination: number;
  readonly triggerMode?: 0 | 1;
  /** Requester id the hardware must see (source-id verification, SVT=1 SQ=0); null = no check. */
  readonly sourceId?: number | null;
}

export interface MsiAllocation {
  /** First IRTE of the block. */
  readonly index: number;
  /** Number of vectors (the block is 2^ceil(log2 count) entries). */
  readonly count: number;
  /** One message per vector (subhandle 0..count-1). */
  readonly messages: readonly MsiMsg[];
}

export class IrqRemapping {
  private readonly used: Uint8Array;

  constructor(readonly unit: DmarUnit) {
    if (!unit.irEnabled)
      throw new ErrnoError("ENODEV", "intel_setup_irq_remapping", `${unit.name}: interrupt remapping is off`, {});
    this.used = new Uint8Array(unit.irtEntries);
  }

  /** Entries in use. */
  get inUse(): number {
    let n = 0;
    for (const u of this.used) n += u;
    return n;
  }

  /** `alloc_irte`: the first free block of 2^order entries aligned to its size. */
  allocIrte(count = 1): number {
    if (count < 1) throw new ErrnoError("EINVAL", "alloc_irte", "count must be positive", { count });
    const size = 2 ** Math.ceil(Math.log2(count));
    for (let i = 0; i + size <= this.used.length; i += size) {
      let free = true;
      for (let j = i; j < i + size; j++) if (this.used[j]) free = false;
      if (free) {
        this.used.fill(1, i, i + size);
        return i;
      }
    }
    throw new ErrnoError("ENOSPC", "alloc_irte", `IR${this.unit.name}: can't allocate an IRTE`, { count });
  }

  /** `modify_irte`: write one entry (present, remapped format) and invalidate its cache entry. */
  programIrte(index: number, t: IrteTarget): void {
    const eim = this.unit.eim;
    const dest = BigInt(eim ? t.destination >>> 0 : (t.destination & 0xff) << 8);
    // P | RH (redirection hint, as prepare_irte sets) | TM | DLM fixed | vector | destination
    const lo = 1n | (1n << 3n) | (BigInt(t.triggerMode ?? 0) << 4n) | (BigInt(t.vector & 0xff) << 16n) | (dest << 32n);
    const sid = t.sourceId ?? null;
    const hi = sid === null ? 0n : BigInt(sid & 0xffff) | (0n << 16n) | (1n << 18n);
    this.unit.writeIrte(index, lo, hi);
    this.unit.flushIec(index, 0);
  }

  /** `clear_entries` + free: zero the block, release it, invalidate. */
  freeIrte(index: number, count = 1): void {
    const size = 2 ** Math.ceil(Math.log2(count));
    for (let i = index; i < index + size; i++) {
      this.unit.writeIrte(i, 0n, 0n);
      this.used[i] = 0;
    }
    this.unit.flushIec(index, Math.log2(size));
  }

  /** An IOAPIC pin's entry (the board calls this for the pins Linux sets up). */
  allocIoapicEntry(ioapicSourceId: number, vector: number, triggerMode: 0 | 1 = 0): number {
    const index = this.allocIrte(1);
    this.programIrte(index, { vector, destination: 0, triggerMode, sourceId: ioapicSourceId });
    return index;
  }

  /**
   * MSI for a PCI device: allocate `count` entries, program them to deliver `vector + i` to `destination`
   * with the device's requester id verified, and return the remappable-format messages.
   */
  allocMsi(dev: Device, vector: number, destination = 0, count = 1): MsiAllocation {
    const index = this.allocIrte(count);
    const sid = dev instanceof PciDevice ? dev.requesterId : dev.requesterId;
    const messages: MsiMsg[] = [];
    for (let i = 0; i < count; i++) {
      this.programIrte(index + i, { vector: vector + i, destination, sourceId: sid });
      messages.push(composeRemappableMsi(index, i));
    }
    return { index, count, messages };
  }
}

/** `fill_msi_msg`: remappable format with SHV set; the subhandle travels in the data. */
export function composeRemappableMsi(index: number, subHandle: number): MsiMsg {
  const addressLo = (MSI_ADDR_BASE | ((index & 0x7fff) << 5) | 0x10 | 0x8 | (((index >> 15) & 1) << 2)) >>> 0;
  return { addressLo, addressHi: 0, data: subHandle & 0xffff };
}
