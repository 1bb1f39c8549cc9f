/**
 * QEMU's `edu` teaching device (hw/misc/edu.c, QEMU 7.2) as a PCI function: BAR0 registers, a
 * factorial unit, a DMA engine between its 4 KiB buffer and a bus address (an IOVA when an IOMMU
 * sits upstream), an interrupt status register raised by MSI (or INTx), and an MSI capability.
 * QEMU behaviours that show in the conformance transcripts are on with `qemuQuirks` (README of
 * /work/shared/conformance/recorder): the 28-bit DMA mask and DMA without a requester id.
 */
import type { DmaResult, MemTxAttrs, MmioHandler, PhysicalMemory } from "@iommu/core";
import { msiMsgAddress, PciDevice } from "@iommu/core";
import { PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PciConfigSpace } from "./pci-config.js";

export const EDU_VENDOR_ID = 0x1234;
export const EDU_DEVICE_ID = 0x11e8;
/** PCI_CLASS_OTHERS (0xff) as class 0x00 / subclass 0xff. */
export const EDU_CLASS_CODE = 0x00ff00;
export const EDU_BAR0_SIZE = 0x100000;
/** edu's identification register: version 1.0, 0xed. */
export const EDU_ID = 0x010000ed;

/** BAR0 register offsets. */
export const EDU_REG = {
  ID: 0x00,
  LIVENESS: 0x04,
  FACTORIAL: 0x08,
  STATUS: 0x20,
  IRQ_STATUS: 0x24,
  IRQ_RAISE: 0x60,
  IRQ_ACK: 0x64,
  DMA_SRC: 0x80,
  DMA_DST: 0x88,
  DMA_COUNT: 0x90,
  DMA_CMD: 0x98,
} as const;

export const EDU_STATUS_COMPUTING = 0x01;
export const EDU_STATUS_IRQFACT = 0x80;
export const EDU_DMA_RUN = 0x1;
/** Direction bit: set = edu buffer → RAM. */
export const EDU_DMA_TO_RAM = 0x2;
export const EDU_DMA_IRQ = 0x4;
export const EDU_DMA_IRQ_VALUE = 0x100;
export const EDU_FACT_IRQ_VALUE = 0x001;
/** The device-side window of the DMA buffer. */
export const EDU_BUF_START = 0x40000n;
export const EDU_BUF_SIZE = 4096;
/** QEMU's edu masks DMA addresses to 28 bits (`dma_mask = (1 << 28) - 1`). */
export const EDU_DMA_MASK_28 = (1n << 28n) - 1n;

export interface EduInit {
  readonly bus?: number;
  readonly slot: number;
  /** QEMU 7.2 behaviour (default true): 28-bit DMA mask, DMA writes without a requester id. */
  readonly qemuQuirks?: boolean;
  /**
   * The board's big lock (`irq/bql.ts`): every BAR0 access, and so the DMA it starts, runs under it, so an
   * IOMMU fault handler waits for the whole burst. Without one, handlers run where the IOMMU raises them.
   */
  readonly lock?: DeviceLock;
}

/** What a device needs of QEMU's big lock: to run its callbacks under it. */
export interface DeviceLock {
  run<T>(callback: () => T): T;
}

/** One DMA transfer as the device saw it (for narration and tests). */
export interface EduDmaRecord {
  readonly toRam: boolean;
  /** Bus address after the 28-bit clamp. */
  readonly busAddr: bigint;
  /** Address the driver programmed (before the clamp). */
  readonly programmed: bigint;
  readonly len: number;
  /** Pages (chunks) that faulted in the IOMMU: their bytes were not transferred. */
  readonly faults: readonly { iova: bigint; reason: string }[];
  readonly clamped: boolean;
}

export class EduDevice extends PciDevice {
  readonly config: PciConfigSpace;
  readonly qemuQuirks: boolean;
  /** The DMA buffer (device memory). */
  readonly buffer = new Uint8Array(EDU_BUF_SIZE);
  /** Physical address of BAR0 (assigned by the board's firmware), or null before enumeration. */
  bar0Base: bigint | null = null;
  /** INTx line level changes (the board may wire it; nobody listens by default). */
  onIntx: ((level: boolean) => void) | null = null;
  /** Every DMA transfer and MSI write, most recent last (bounded). */
  readonly dmaLog: EduDmaRecord[] = [];
  /** Console lines QEMU would print (e.g. `EDU: clamping DMA ...`). */
  readonly console: string[] = [];
  /** MSI writes that the IOMMU refused (a fault on the MSI address). */
  msiFaults = 0;

  private liveness = 0;
  private fact = 0;
  private status = 0;
  private irqStatus = 0;
  private dmaSrc = 0n;
  private dmaDst = 0n;
  private dmaCount = 0n;
  private dmaCmd = 0n;
  private intxLevel = false;
  /** True while the DMA engine runs: QEMU's edu issues those without MemTxAttrs (no requester id). */
  private engineActive = false;
  private readonly lock: DeviceLock | null;

  constructor(memory: PhysicalMemory, init: EduInit) {
    super(memory, {
      bus: init.bus ?? 0,
      slot: init.slot,
      classCode: EDU_CLASS_CODE,
      vendorId: EDU_VENDOR_ID,
      deviceId: EDU_DEVICE_ID,
    });
    this.qemuQuirks = init.qemuQuirks ?? true;
    this.lock = init.lock ?? null;
    this.config = new PciConfigSpace({
      vendorId: EDU_VENDOR_ID,
      deviceId: EDU_DEVICE_ID,
      classCode: EDU_CLASS_CODE,
      revision: 0x10,
    });
    this.config.addMemBar(0, EDU_BAR0_SIZE);
    // edu_pci_realize: msi_init(pdev, 0, 1, true, false) puts the capability at 0x40.
    this.config.addMsiCapability(0x40);
  }

  /** BAR0's MMIO handler (registered in physical memory by the board, mmapped by vfio-pci), under the lock. */
  readonly bar0: MmioHandler = {
    read: (offset, size) => this.locked(() => this.mmioRead(Number(offset), size)),
    write: (offset, size, value) => this.locked(() => this.mmioWrite(Number(offset), size, value)),
  };

  /** Interrupt status register (0x24). */
  get interruptStatus(): number {
    return this.irqStatus;
  }

  get intxAsserted(): boolean {
    return this.intxLevel;
  }

  protected override attrs(): MemTxAttrs {
    // pci_dma_rw uses MEMTXATTRS_UNSPECIFIED in QEMU 7.2; msi_send_message sets requester_id.
    return this.engineActive && this.qemuQuirks ? {} : { requesterId: this.requesterId };
  }

  private locked<T>(callback: () => T): T {
    return this.lock ? this.lock.run(callback) : callback();
  }

  private mmioRead(addr: number, size: number): bigint {
    // edu_mmio_read: registers below 0x80 are 32-bit only; the DMA block allows 4 or 8.
    if (addr < 0x80 && size !== 4) return ~0n & ((1n << BigInt(8 * size)) - 1n);
    if (addr >= 0x80 && size !== 4 && size !== 8) return ~0n & ((1n << BigInt(8 * size)) - 1n);
    switch (addr) {
      case EDU_REG.ID:
        return BigInt(EDU_ID);
      case EDU_REG.LIVENESS:
        return BigInt(~this.liveness >>> 0);
      case EDU_REG.FACTORIAL:
        return BigInt(this.fact >>> 0);
      case EDU_REG.STATUS:
        return BigInt(this.status);
      case EDU_REG.IRQ_STATUS:
        return BigInt(this.irqStatus >>> 0);
      case EDU_REG.DMA_SRC:
        return this.dmaSrc;
      case EDU_REG.DMA_DST:
        return this.dmaDst;
      case EDU_REG.DMA_COUNT:
        return this.dmaCount;
      case EDU_REG.DMA_CMD:
        return this.dmaCmd;
      default:
        return 0xffffffffn & ((1n << BigInt(8 * size)) - 1n);
    }
  }

  private mmioWrite(addr: number, size: number, value: bigint): void {
    if (addr < 0x80 && size !== 4) return;
    if (addr >= 0x80 && size !== 4 && size !== 8) return;
    const v32 = Number(value & 0xffffffffn);
    switch (addr) {
      case EDU_REG.LIVENESS:
        this.liveness = v32;
        return;
      case EDU_REG.FACTORIAL:
        if (this.status & EDU_STATUS_COMPUTING) return;
        this.status |= EDU_STATUS_COMPUTING;
        this.fact = factorial32(v32);
        this.status &= ~EDU_STATUS_COMPUTING;
        if (this.status & EDU_STATUS_IRQFACT) this.raise(EDU_FACT_IRQ_VALUE);
        return;
      case EDU_REG.STATUS:
        if (v32 & EDU_STATUS_IRQFACT) this.status |= EDU_STATUS_IRQFACT;
        else this.status &= ~EDU_STATUS_IRQFACT;
        return;
      case EDU_REG.IRQ_RAISE:
        this.raise(v32);
        return;
      case EDU_REG.IRQ_ACK:
        this.lower(v32);
        return;
      case EDU_REG.DMA_SRC:
        if (!(this.dmaCmd & 1n)) this.dmaSrc = size === 4 ? (this.dmaSrc & ~0xffffffffn) | BigInt(v32) : value;
        return;
      case EDU_REG.DMA_DST:
        if (!(this.dmaCmd & 1n)) this.dmaDst = size === 4 ? (this.dmaDst & ~0xffffffffn) | BigInt(v32) : value;
        return;
      case EDU_REG.DMA_COUNT:
        if (!(this.dmaCmd & 1n)) this.dmaCount = size === 4 ? BigInt(v32) : value;
        return;
      case EDU_REG.DMA_CMD:
        if (!(value & 1n) || this.dmaCmd & 1n) return;
        this.dmaCmd = value;
        // QEMU runs the transfer from a 100 ms timer; the model completes it before the next access.
        this.runDma();
        return;
      default:
        return;
    }
  }

  /** edu_raise_irq: OR into the status register, then MSI if enabled, else assert INTx. */
  private raise(val: number): void {
    this.irqStatus = (this.irqStatus | val) >>> 0;
    if (this.config.msiEnabled) this.sendMsi();
    else this.setIntx(true);
  }

  /** edu_lower_irq: clear bits; INTx drops when nothing is pending. */
  private lower(val: number): void {
    this.irqStatus = (this.irqStatus & ~val) >>> 0;
    if (!this.irqStatus && !this.config.msiEnabled) this.setIntx(false);
  }

  private setIntx(level: boolean): void {
    if (this.intxLevel === level) return;
    this.intxLevel = level;
    this.onIntx?.(level);
  }

  /**
   * msi_send_message: a 32-bit write of the data word to the programmed address, issued on the bus
   * with this function's requester id (through the IOMMU upstream, if any). Needs bus mastering.
   */
  sendMsi(): DmaResult | null {
    if (!this.config.busMaster) return null;
    const msg = this.config.msiMessage();
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, msg.data, true);
    const r = this.dmaWrite(msiMsgAddress(msg), bytes);
    if (!r.ok) this.msiFaults++;
    return r;
  }

  private runDma(): void {
    const toRam = (this.dmaCmd & BigInt(EDU_DMA_TO_RAM)) !== 0n;
    const programmed = toRam ? this.dmaDst : this.dmaSrc;
    const bufAddr = toRam ? this.dmaSrc : this.dmaDst;
    const len = Number(this.dmaCount > BigInt(EDU_BUF_SIZE) ? BigInt(EDU_BUF_SIZE) + 1n : this.dmaCount);
    const finish = () => {
      this.dmaCmd &= ~1n;
      if (this.dmaCmd & BigInt(EDU_DMA_IRQ)) this.raise(EDU_DMA_IRQ_VALUE);
    };
    // edu_check_range: the buffer side must lie inside [0x40000, 0x41000); QEMU aborts otherwise.
    if (bufAddr < EDU_BUF_START || bufAddr + BigInt(len) > EDU_BUF_START + BigInt(EDU_BUF_SIZE) || len === 0) {
      this.console.push(
        `EDU: DMA range 0x${bufAddr.toString(16)}-0x${(bufAddr + BigInt(len)).toString(16)} out of bounds`,
      );
      finish();
      return;
    }
    let busAddr = programmed;
    let clamped = false;
    if (this.qemuQuirks && (busAddr & ~EDU_DMA_MASK_28) !== 0n) {
      busAddr &= EDU_DMA_MASK_28;
      clamped = true;
      this.console.push(`EDU: clamping DMA 0x${hex16(programmed)} to 0x${hex16(busAddr)}!`);
    }
    if (!this.config.busMaster) {
      finish();
      return;
    }
    const off = Number(bufAddr - EDU_BUF_START);
    const faults: { iova: bigint; reason: string }[] = [];
    this.engineActive = true;
    try {
      // Like QEMU's address_space_rw through an IOMMU: one translation per page; a faulting page
      // is skipped (reads return zeros, writes are dropped) and the rest of the burst goes on.
      let done = 0;
      while (done < len) {
        const a = busAddr + BigInt(done);
        const n = Math.min(len - done, 4096 - Number(a & 0xfffn));
        if (toRam) {
          const r = this.dmaWrite(a, this.buffer.slice(off + done, off + done + n));
          if (!r.ok) faults.push({ iova: r.iova, reason: r.reason });
        } else {
          const r = this.dmaRead(a, n);
          if (r.ok) this.buffer.set(r.data, off + done);
          else {
            this.buffer.fill(0, off + done, off + done + n);
            faults.push({ iova: r.iova, reason: r.reason });
          }
        }
        done += n;
      }
    } finally {
      this.engineActive = false;
    }
    this.dmaLog.push({ toRam, busAddr, programmed, len, faults, clamped });
    if (this.dmaLog.length > 256) this.dmaLog.shift();
    finish();
  }

  /** Enable memory decoding and bus mastering (what a driver does before using the device). */
  enableBusMaster(): void {
    this.config.write(4, 2, this.config.command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  }
}

function factorial32(n: number): number {
  let r = 1;
  for (let i = n; i > 1; i--) r = Math.imul(r, i) >>> 0;
  return r >>> 0;
}

function hex16(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}
