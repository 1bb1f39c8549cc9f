/**
 * A GICv3 Interrupt Translation Service as QEMU's virt machine has it: an MMIO frame at 0x08080000
 * whose GITS_TRANSLATER register (at +0x10040, in the second 64 KiB page) turns a write into an LPI.
 * The write's requester id is the DeviceID and the written value the EventID; the pair is looked up
 * in the translation the ITS driver installed (MAPD/MAPTI, modelled as `mapEvent`). A write without a
 * requester id (QEMU's edu DMA) or with an unmapped pair raises nothing, as on QEMU.
 */
import type { MemTxAttrs, MmioHandler } from "@iommu/core";
import type { InterruptController } from "./interrupt-controller.js";

export const VIRT_ITS_BASE = 0x08080000n;
export const ITS_FRAME_SIZE = 0x20000n;
export const GITS_CTLR = 0x0000n;
export const GITS_IIDR = 0x0004n;
export const GITS_TYPER = 0x0008n;
export const GITS_TRANSLATER = 0x10040n;
/** Linux's first LPI INTID (8192). */
export const FIRST_LPI = 8192;

export interface ItsDrop {
  readonly deviceId: number | null;
  readonly eventId: number;
  readonly why: "no requester id" | "unmapped device/event" | "ITS disabled";
}

export class Gicv3Its implements MmioHandler {
  readonly base: bigint;
  private readonly table = new Map<string, number>();
  private ctlr = 1;
  private nextLpi = FIRST_LPI;
  /** Translater writes that raised nothing, with the reason. */
  readonly drops: ItsDrop[] = [];
  /** Deliveries by this ITS (LPI numbers, in order). */
  translated = 0;

  constructor(
    private readonly gic: InterruptController,
    opts: { base?: bigint; deviceName?: (requesterId: number) => string } = {},
  ) {
    this.base = opts.base ?? VIRT_ITS_BASE;
    this.deviceName = opts.deviceName ?? ((rid) => `rid:0x${rid.toString(16)}`);
  }

  private readonly deviceName: (requesterId: number) => string;

  /** Physical address of GITS_TRANSLATER: the MSI doorbell every device writes to. */
  get doorbell(): bigint {
    return this.base + GITS_TRANSLATER;
  }

  /** Allocate an LPI number (the ITS driver's lpi_range allocator, lowest first). */
  allocLpi(): number {
    return this.nextLpi++;
  }

  /** MAPD + MAPTI: (DeviceID, EventID) → LPI. */
  mapEvent(deviceId: number, eventId: number, lpi: number): void {
    this.table.set(`${deviceId}:${eventId}`, lpi);
  }

  /** DISCARD */
  unmapEvent(deviceId: number, eventId: number): void {
    this.table.delete(`${deviceId}:${eventId}`);
  }

  lookup(deviceId: number, eventId: number): number | undefined {
    return this.table.get(`${deviceId}:${eventId}`);
  }

  read(offset: bigint, size: 1 | 2 | 4 | 8): bigint {
    if (offset === GITS_CTLR) return BigInt(this.ctlr);
    if (offset === GITS_IIDR) return 0x4347n; // implementer 'C','G' (QEMU)
    if (offset === GITS_TYPER) return size === 8 ? 0x0000_0001_0007_ff01n : 0x0007_ff01n;
    return 0n;
  }

  write(offset: bigint, size: 1 | 2 | 4 | 8, value: bigint, attrs: MemTxAttrs): void {
    if (offset === GITS_CTLR) {
      this.ctlr = Number(value & 1n);
      return;
    }
    if (offset !== GITS_TRANSLATER || (size !== 2 && size !== 4)) return;
    const eventId = Number(value & 0xffffffffn);
    if (!this.ctlr) {
      this.drops.push({ deviceId: attrs.requesterId ?? null, eventId, why: "ITS disabled" });
      return;
    }
    if (attrs.requesterId === undefined) {
      this.drops.push({ deviceId: null, eventId, why: "no requester id" });
      return;
    }
    const lpi = this.lookup(attrs.requesterId, eventId);
    if (lpi === undefined) {
      this.drops.push({ deviceId: attrs.requesterId, eventId, why: "unmapped device/event" });
      return;
    }
    this.translated++;
    this.gic.deliver(`its:${this.deviceName(attrs.requesterId)}`, lpi);
  }
}
