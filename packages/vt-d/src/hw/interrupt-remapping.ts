/**
 * Interrupt requests: a device write of a dword to 0xFEEx_xxxx (VT-d spec 5.1). With remapping enabled
 * (GSTS.IRES) a remappable-format request (address bit 4) names an IRTE by its 16-bit handle (address bits
 * 19:5 and 2) plus, when SHV (bit 3) is set, the subhandle in the data; the entry is read from the table
 * IRTA points at. A bad index, a non-present entry or a source-id mismatch is a fault; compatibility-format
 * requests pass only while CFI is set.
 */
import type { PhysicalMemory } from "@iommu/core";
import { FAULT } from "../arch/regs.js";

/** What the hardware delivers to the interrupt controller (the board's hook). */
export interface DeliveredInterrupt {
  readonly requesterId: number;
  readonly vector: number;
  /** APIC destination id. */
  readonly destination: number;
  /** 0 fixed, 1 lowest priority, ... */
  readonly deliveryMode: number;
  /** 0 physical, 1 logical. */
  readonly destinationMode: number;
  /** 0 edge, 1 level. */
  readonly triggerMode: number;
  /** The IRTE index used, or null for a compatibility-format (not remapped) request. */
  readonly irteIndex: number | null;
}

/** Outcome of decoding one interrupt request. */
export type InterruptDecode =
  | { readonly kind: "deliver"; readonly irq: DeliveredInterrupt }
  | { readonly kind: "fault"; readonly reason: number; readonly index: number };

export interface IrState {
  readonly enabled: boolean;
  /** Compatibility-format interrupts allowed (GSTS.CFIS). */
  readonly cfis: boolean;
  readonly tableBase: bigint;
  readonly entries: number;
  readonly eim: boolean;
}

export function decodeInterrupt(
  memory: PhysicalMemory,
  ir: IrState,
  requesterId: number,
  addr: number,
  data: number,
): InterruptDecode {
  const remappable = (addr & 0x10) !== 0;
  if (!ir.enabled || !remappable) {
    if (ir.enabled && !ir.cfis) return { kind: "fault", reason: FAULT.IR_COMPAT_BLOCKED, index: 0 };
    return {
      kind: "deliver",
      irq: {
        requesterId,
        vector: data & 0xff,
        destination: (addr >>> 12) & 0xff,
        deliveryMode: (data >>> 8) & 7,
        destinationMode: (addr >>> 2) & 1,
        triggerMode: (data >>> 15) & 1,
        irteIndex: null,
      },
    };
  }
  const handle = ((addr >>> 5) & 0x7fff) | (((addr >>> 2) & 1) << 15);
  const index = handle + ((addr & 0x8) !== 0 ? data & 0xffff : 0);
  if (index >= ir.entries) return { kind: "fault", reason: FAULT.IR_INDEX, index };
  const at = ir.tableBase + BigInt(index) * 16n;
  const lo = memory.read64(at);
  const hi = memory.read64(at + 8n);
  if ((lo & 1n) === 0n) return { kind: "fault", reason: FAULT.IR_NOT_PRESENT, index };
  // Source validation (IRTE SVT/SQ/SID): 1 = requester id under the SQ mask, 2 = bus range.
  const svt = Number((hi >> 18n) & 3n);
  const sq = Number((hi >> 16n) & 3n);
  const sid = Number(hi & 0xffffn);
  if (svt === 1) {
    const mask = sq === 0 ? 0xffff : sq === 1 ? 0xfffb : sq === 2 ? 0xfff9 : 0xfff8;
    if ((requesterId & mask) !== (sid & mask)) return { kind: "fault", reason: FAULT.IR_SID, index };
  } else if (svt === 2) {
    const bus = requesterId >> 8;
    if (bus < sid >> 8 || bus > (sid & 0xff)) return { kind: "fault", reason: FAULT.IR_SID, index };
  } else if (svt === 3) {
    return { kind: "fault", reason: FAULT.IR_IRTE_RESERVED, index };
  }
  const dst = Number(lo >> 32n);
  return {
    kind: "deliver",
    irq: {
      requesterId,
      vector: Number((lo >> 16n) & 0xffn),
      destination: ir.eim ? dst : (dst >>> 8) & 0xff,
      deliveryMode: Number((lo >> 5n) & 7n),
      destinationMode: Number((lo >> 2n) & 1n),
      triggerMode: Number((lo >> 4n) & 1n),
      irteIndex: index,
    },
  };
}
