/**
 * A PCI function's 256-byte configuration space: the type 0 header, a capability list and the MSI
 * capability (PCI Local Bus 3.0 §6.8.1). Bytes are little-endian; each byte has a write mask so
 * read-only fields (ids, class, capability links) ignore writes, as the hardware does.
 */
import type { MsiMsg } from "@iommu/core";

export const PCI_COMMAND = 0x04;
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CAP_ID_MSI = 0x05;

/** MSI capability layout for the 64-bit, no per-vector-masking form edu uses. */
export const MSI_FLAGS = 0x02;
export const MSI_ADDRESS_LO = 0x04;
export const MSI_ADDRESS_HI = 0x08;
export const MSI_DATA_64 = 0x0c;
export const MSI_FLAGS_ENABLE = 0x0001;
export const MSI_FLAGS_64BIT = 0x0080;

export interface PciHeaderInit {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  readonly revision: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
}

export class PciConfigSpace {
  readonly bytes = new Uint8Array(256);
  private readonly wmask = new Uint8Array(256);
  /** Offset of the MSI capability, or 0 when absent. */
  msiCap = 0;
  private lastCap = 0;

  constructor(init: PciHeaderInit) {
    this.set(0x00, 2, init.vendorId);
    this.set(0x02, 2, init.deviceId);
    this.set(0x08, 1, init.revision);
    this.set(0x09, 3, init.classCode);
    this.set(0x2c, 2, init.subsystemVendorId ?? 0x1af4);
    this.set(0x2e, 2, init.subsystemId ?? 0x1100);
    // Command register: I/O, memory, bus master, INTx disable are writable.
    this.setMask(PCI_COMMAND, 2, 0x0407);
    this.set(0x3d, 1, 1); // interrupt pin INTA
    this.setMask(0x3c, 1, 0xff); // interrupt line (firmware scratch)
  }

  /** A 32-bit memory BAR of `size` bytes at BAR index `bar` (size-aligned base, writable address bits). */
  addMemBar(bar: number, size: number): void {
    const off = 0x10 + 4 * bar;
    this.setMask(off, 4, ~(size - 1) >>> 0);
  }

  /** Append a capability of `len` bytes with id `id`; returns its offset. */
  addCapability(id: number, at: number, len: number): number {
    this.set(at, 1, id);
    this.set(at + 1, 1, 0);
    if (this.lastCap === 0) this.set(0x34, 1, at);
    else this.set(this.lastCap + 1, 1, at);
    this.lastCap = at;
    this.set(0x06, 2, this.get(0x06, 2) | PCI_STATUS_CAP_LIST);
    void len;
    return at;
  }

  /** MSI capability, 64-bit addresses, one vector (Multiple Message Capable = 0), no masking. */
  addMsiCapability(at: number): void {
    this.msiCap = this.addCapability(PCI_CAP_ID_MSI, at, 0x10);
    this.set(at + MSI_FLAGS, 2, MSI_FLAGS_64BIT);
    this.setMask(at + MSI_FLAGS, 2, 0x0071); // enable + Multiple Message Enable
    this.setMask(at + MSI_ADDRESS_LO, 4, 0xfffffffc);
    this.setMask(at + MSI_ADDRESS_HI, 4, 0xffffffff);
    this.setMask(at + MSI_DATA_64, 2, 0xffff);
  }

  read(offset: number, size: 1 | 2 | 4): number {
    if (offset < 0 || offset + size > 256) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return this.get(offset, size);
  }

  /** A config write as the bus performs it: only the writable bits change. */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (offset < 0 || offset + size > 256) return;
    for (let i = 0; i < size; i++) {
      const m = this.wmask[offset + i] as number;
      const b = (value >>> (8 * i)) & 0xff;
      this.bytes[offset + i] = ((this.bytes[offset + i] as number) & ~m) | (b & m);
    }
  }

  get command(): number {
    return this.get(PCI_COMMAND, 2);
  }

  get busMaster(): boolean {
    return (this.command & PCI_COMMAND_MASTER) !== 0;
  }

  get msiEnabled(): boolean {
    return this.msiCap !== 0 && (this.get(this.msiCap + MSI_FLAGS, 2) & MSI_FLAGS_ENABLE) !== 0;
  }

  /** The programmed MSI message (msi_get_message). */
  /** The message the capability holds (`struct msi_msg`; the device sends `data` to `msiMsgAddress` of it). */
  msiMessage(): MsiMsg {
    const c = this.msiCap;
    return {
      addressLo: this.get(c + MSI_ADDRESS_LO, 4),
      addressHi: this.get(c + MSI_ADDRESS_HI, 4),
      data: this.get(c + MSI_DATA_64, 2),
    };
  }

  private get(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.bytes[offset + i] as number);
    return v;
  }

  private set(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.bytes[offset + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
  }

  private setMask(offset: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.wmask[offset + i] = (mask >>> (8 * i)) & 0xff;
  }
}
