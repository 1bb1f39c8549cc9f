/**
 * Devices that master DMA: PCI functions (segment/bus/devfn, class code, requester id) and platform
 * devices (a stream id). A device's DMA goes through the IOMMU hardware upstream of it (set by the
 * board: bus topology), or straight to memory when there is none.
 */
import type { DmaAccess, IommuHardware, IommuOps, Translation } from "./iommu-ops.js";
import type { MemTxAttrs, PhysicalMemory } from "./phys-mem.js";

/** What the core records on a device it probed (`dev->iommu`). */
export interface DeviceIommuState {
  readonly ops: IommuOps;
  /** IOMMU group id (sysfs `/sys/kernel/iommu_groups/<id>`). */
  groupId: number;
  /** Set when a DIRECT reserved region demands a 1:1 mapping at all times (`require_direct`). */
  requireDirect: boolean;
}

/** Outcome of a device DMA: data for reads, or the first fault (nothing was read or written). */
export type DmaResult =
  | { readonly ok: true; readonly data: Uint8Array }
  | { readonly ok: false; readonly iova: bigint; readonly access: DmaAccess; readonly reason: string };

export abstract class Device {
  abstract readonly bus: "pci" | "platform";
  /** Linux's device name (`0000:00:01.0` for PCI). */
  abstract readonly name: string;
  /** Id the IOMMU sees on the bus for this device's transactions. */
  abstract readonly requesterId: number;
  /** IOMMU hardware that translates this device's DMA; null = untranslated. Set by the board. */
  upstream: IommuHardware | null = null;
  /** Core state once an IOMMU driver has probed the device. */
  iommu: DeviceIommuState | null = null;
  /** Driver-private per-device data (`dev_iommu_priv`). */
  iommuPriv: unknown = undefined;

  constructor(readonly memory: PhysicalMemory) {}

  /** DMA read of `len` bytes at `iova`. */
  dmaRead(iova: bigint, len: number): DmaResult {
    const plan = this.plan(iova, len, "read", undefined);
    if (!Array.isArray(plan)) return plan;
    const out = new Uint8Array(len);
    for (const c of plan) {
      if (c.phys !== null) out.set(this.memory.read(c.phys, c.len, this.attrs()), c.at);
    }
    return { ok: true, data: out };
  }

  /** DMA write of `data` at `iova`. A fault anywhere in the range writes nothing. */
  dmaWrite(iova: bigint, data: Uint8Array): DmaResult {
    const plan = this.plan(iova, data.length, "write", data);
    if (!Array.isArray(plan)) return plan;
    for (const c of plan) {
      if (c.phys !== null) this.memory.write(c.phys, data.subarray(c.at, c.at + c.len), this.attrs());
    }
    return { ok: true, data };
  }

  protected attrs(): MemTxAttrs {
    return { requesterId: this.requesterId };
  }

  /** Translate every chunk first, so a fault leaves memory untouched. phys null = consumed as an interrupt. */
  private plan(
    iova: bigint,
    len: number,
    access: DmaAccess,
    data: Uint8Array | undefined,
  ): { at: number; len: number; phys: bigint | null }[] | Extract<DmaResult, { ok: false }> {
    const chunks: { at: number; len: number; phys: bigint | null }[] = [];
    const hw = this.upstream;
    if (!hw) return [{ at: 0, len, phys: iova }];
    let at = 0;
    while (at < len) {
      const a = iova + BigInt(at);
      const req = data
        ? { device: this, requesterId: this.requesterId, iova: a, access, data: data.subarray(at) }
        : { device: this, requesterId: this.requesterId, iova: a, access, len: len - at };
      const t: Translation = hw.translate(req);
      if (t.kind === "fault") return { ok: false, iova: a, access, reason: t.reason };
      if (t.kind === "interrupt") {
        chunks.push({ at, len: len - at, phys: null });
        break;
      }
      const n = Number(t.span < BigInt(len - at) ? t.span : BigInt(len - at));
      if (n <= 0) return { ok: false, iova: a, access, reason: "hardware returned an empty translation" };
      chunks.push({ at, len: n, phys: t.phys });
      at += n;
    }
    return chunks;
  }
}

/** Format a PCI device name: `0000:00:01.0`. */
export function pciName(segment: number, bus: number, devfn: number): string {
  const h = (v: number, w: number) => v.toString(16).padStart(w, "0");
  return `${h(segment, 4)}:${h(bus, 2)}:${h(devfn >> 3, 2)}.${devfn & 7}`;
}

export interface PciDeviceInit {
  readonly segment?: number;
  readonly bus: number;
  /** Device number 0-31. */
  readonly slot: number;
  /** Function number 0-7. */
  readonly fn?: number;
  /** 24-bit class code (class << 16 | subclass << 8 | prog-if). */
  readonly classCode: number;
  readonly vendorId?: number;
  readonly deviceId?: number;
  /** The bridge this device sits behind (for RMRR scopes and group aliasing). */
  readonly parent?: PciDevice | null;
}

export class PciDevice extends Device {
  readonly bus = "pci" as const;
  readonly segment: number;
  readonly busNr: number;
  readonly devfn: number;
  readonly classCode: number;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly parent: PciDevice | null;

  constructor(memory: PhysicalMemory, init: PciDeviceInit) {
    super(memory);
    const fn = init.fn ?? 0;
    if (init.slot < 0 || init.slot > 31 || fn < 0 || fn > 7 || init.bus < 0 || init.bus > 255) {
      throw new RangeError(`bad PCI address bus ${init.bus} slot ${init.slot} fn ${fn}`);
    }
    this.segment = init.segment ?? 0;
    this.busNr = init.bus;
    this.devfn = (init.slot << 3) | fn;
    this.classCode = init.classCode;
    this.vendorId = init.vendorId ?? 0x1234;
    this.deviceId = init.deviceId ?? 0x11e8;
    this.parent = init.parent ?? null;
  }

  get name(): string {
    return pciName(this.segment, this.busNr, this.devfn);
  }

  get requesterId(): number {
    return (this.busNr << 8) | this.devfn;
  }

  /** Base class byte (0x0c serial bus, 0x03 display, 0x06 bridge, ...). */
  get baseClass(): number {
    return (this.classCode >> 16) & 0xff;
  }

  get subClass(): number {
    return (this.classCode >> 8) & 0xff;
  }
}

export class PlatformDevice extends Device {
  readonly bus = "platform" as const;
  constructor(
    memory: PhysicalMemory,
    readonly name: string,
    readonly requesterId: number,
  ) {
    super(memory);
  }
}
