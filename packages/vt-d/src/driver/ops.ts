/**
 * `intel_iommu_ops` for Linux 6.1 in legacy (non-scalable) mode: the driver the core calls, built over
 * the DMAR units the firmware table describes. Units are programmed through their registers when the
 * driver is created (`intel_iommu_init` → `init_dmars`), so the hardware models must be mapped first.
 */
import {
  DEFAULT_RATELIMIT_BURST,
  DEFAULT_RATELIMIT_INTERVAL_MS,
  type Device,
  type DomainType,
  type DriverDomain,
  ErrnoError,
  type HwInfo,
  type IommuCap,
  type IommuDriver,
  type IommuOps,
  isErrno,
  LogBuffer,
  type MsiMsg,
  msiMsgAddress,
  type PageAllocator,
  PciDevice,
  type PhysicalMemory,
  Ratelimit,
  type ResvRegion,
} from "@iommu/core";
import { type DmarTable, findDrhd } from "./dmar-table.js";
import { DmarUnit } from "./dmar-unit.js";
import {
  type DeviceDomainInfo,
  type PgsizeBitmapMode,
  pgsizeBitmapFor,
  type SecondLevelPteFormat,
  VtdDomain,
} from "./domain.js";
import { IrqRemapping } from "./irq-remapping.js";
import type { SuperpageUnmap } from "./pgtable.js";
import { deviceHasRmrr, intelResvRegions, rmrrIsRelaxable } from "./resv-regions.js";

export interface IntelIommuDriverOptions {
  readonly memory: PhysicalMemory;
  /** Frames for root/context/page tables, the invalidation queue and the IR table. */
  readonly pageAllocator: PageAllocator;
  readonly dmar: DmarTable;
  /** Register base of the single include-all unit when `dmar.drhds` is omitted (QEMU q35: 0xfed90000). */
  readonly mmioBase?: bigint;
  /** Page-size bitmap generation (default "linux-6.1": 4K | 2M | 1G on QEMU). */
  readonly pgsizeBitmap?: PgsizeBitmapMode;
  /** The second-level leaf rights the driver writes (default "dma_pte", as Linux 6.1: no write-only leaf). */
  readonly slPteFormat?: SecondLevelPteFormat;
  /**
   * `dmar_fault`'s source-id as `segment:bus:dev.fn` (`[0000:00:01.0]`, what 7.3 prints) rather than
   * `bus:dev.fn` (`[00:01.0]`, 6.1 and 6.12). Default false.
   */
  readonly faultLogSegment?: boolean;
  /**
   * `intel_iommu_ops.blocked_domain` (6.12, 7.3): a BLOCKED domain whose attach is `device_block_translation`,
   * so a claimed-but-unattached device has no context entry and its DMA faults "Present bit in context entry is
   * clear". Default false (Linux 6.1: no BLOCKED domain; the core falls back to an empty UNMANAGED one).
   */
  readonly blockedDomain?: boolean;
  /** Partial superpage unmap (default "whole", as Linux 6.1). */
  readonly superpageUnmap?: SuperpageUnmap;
  /** Enable interrupt remapping when the units have it (`intremap=on`; default true). */
  readonly interruptRemapping?: boolean;
  /** Use queued invalidation (Linux does once IR is on; default true). Register commands otherwise. */
  readonly queuedInvalidation?: boolean;
  /** log2 of IR table entries (default 16: INTR_REMAP_TABLE_ENTRIES = 65536). */
  readonly irtOrder?: number;
  /** x2APIC extended interrupt mode (QEMU TCG q35 runs Linux in x2APIC; default true). */
  readonly eim?: boolean;
  /** CONFIG_INTEL_IOMMU_FLOPPY_WA (default true). */
  readonly floppyWorkaround?: boolean;
  /** `dmar_platform_optin()` (IOMMU_CAP_PRE_BOOT_PROTECTION). Default false. */
  readonly platformOptIn?: boolean;
  /** Model time in ms for the fault-log ratelimit (5 s / 10 lines, as dmar_fault); default: time never passes. */
  readonly now?: () => number;
}

/** The x86 MSI/IOAPIC side the board's irq glue calls (intel_irq_remapping as the parent domain of both). */
export interface IrqRemapper {
  /**
   * Enable MSI for `dev` (X86_IRQ_ALLOC_TYPE_PCI_MSI): an IRTE delivering `vector` to `destination`, and
   * the remappable-format message for the device's capability. The device's INTx entry, if any, is the
   * IOAPIC pin's (`allocIoapicPin`), taken earlier by pci_enable_device: MSI takes nothing else.
   */
  alloc(dev: Device, vector: number, destination?: number): { address: bigint; data: number; index: number };
  /** Disable MSI: free the device's MSI IRTE. */
  free(dev: Device): void;
  /**
   * `intel_irq_remapping_alloc` for an IOAPIC pin (X86_IRQ_ALLOC_TYPE_IOAPIC), run when the IOAPIC irq
   * domain maps the pin (`mp_map_pin_to_irq`): `alloc_irte` reserves one entry on the unit whose DRHD
   * scope holds IOAPIC `ioapicId` (`map_ioapic_to_ir`); the entry is written only when the irq is
   * activated (request_irq), so it stays clear here. Returns its index. Throws ENODEV (no unit has that
   * IOAPIC), EBUSY (the pin already has its entry), ENOSPC (table full).
   */
  allocIoapicPin(ioapicId: number, pin: number): number;
  /** `intel_irq_remapping_free` for the pin (the IOAPIC domain freed its irq): the entry goes. */
  freeIoapicPin(ioapicId: number, pin: number): void;
}

/** What `createIntelIommuDriver` gives the host: core's driver shape plus the DMAR units' handles. */
export interface IntelIommuDriver extends IommuDriver {
  readonly units: readonly DmarUnit[];
  /** Interrupt remapping per unit (null when off); the board's irq glue allocates MSIs here. */
  readonly irqRemapping: readonly (IrqRemapping | null)[];
  /** The unit serving a device, or null. */
  unitFor(dev: Device): DmarUnit | null;
  /** The IR instance for a device's unit (throws ENODEV when none). */
  irqRemappingFor(dev: Device): IrqRemapping;
  /** `dmar_fault`, the fault event interrupt of unit `i`: the board wires each unit's fault event here. */
  handleFaultIrq(i: number): void;
  /** The MSI/INTx remapping door for the board's irq glue. */
  readonly irq: IrqRemapper;
}

export function createIntelIommuDriver(opts: IntelIommuDriverOptions): IntelIommuDriver {
  const memory = opts.memory;
  const alloc = opts.pageAllocator;
  const irOn = opts.interruptRemapping ?? true;
  const dmar: DmarTable =
    opts.dmar.drhds || opts.mmioBase === undefined
      ? opts.dmar
      : { ...opts.dmar, drhds: [{ registerBase: opts.mmioBase, includeAll: true }] };
  const log = new LogBuffer();
  // dmar_fault's `static DEFINE_RATELIMIT_STATE`: one budget for every unit's fault lines.
  const faultRatelimit = new Ratelimit(DEFAULT_RATELIMIT_INTERVAL_MS, DEFAULT_RATELIMIT_BURST, opts.now ?? (() => 0));
  const units = (dmar.drhds ?? []).map(
    (d, i) =>
      new DmarUnit({
        memory,
        alloc,
        registerBase: d.registerBase,
        seqId: i,
        queuedInvalidation: opts.queuedInvalidation ?? true,
        interruptRemapping: irOn,
        irtOrder: opts.irtOrder ?? 16,
        eim: opts.eim ?? true,
        log,
        faultRatelimit,
        faultLogSegment: (opts.faultLogSegment ?? false) ? (d.segment ?? 0) : null,
      }),
  );
  const irqRemapping = units.map((u) => (u.irEnabled ? new IrqRemapping(u) : null));
  // irq_remapping_enabled: every unit must remap for the kernel to turn IR on.
  const irqRemappingEnabled = units.length > 0 && irqRemapping.every((r) => r !== null);
  const pgsizeMode = opts.pgsizeBitmap ?? "linux-6.1";
  const superpage = Math.min(...units.map((u) => u.superpage));

  const unitOf = (dev: Device): { unit: DmarUnit; sid: number } | null => {
    const i = findDrhd(dmar, dev);
    const unit = i >= 0 ? units[i] : undefined;
    return unit ? { unit, sid: dev.requesterId & 0xffff } : null;
  };
  // device_is_rmrr_locked: an RMRR names the device and it is not USB/graphics.
  const rmrrLocked = (dev: Device) => deviceHasRmrr(dmar, dev) && !rmrrIsRelaxable(dev);
  const env = {
    memory,
    alloc,
    unitOf,
    rmrrLocked,
    superpageUnmap: opts.superpageUnmap ?? "whole",
    pgsizeMode,
    slPteFormat: opts.slPteFormat ?? "dma_pte",
  } as const;
  const devicesBySid = new Map<string, Device>();
  const sidKey = (unit: DmarUnit, sid: number) => `${unit.name}:${sid}`;
  const faultSinks = new Map<VtdDomain, (dev: Device, iova: bigint, flags: number) => number>();

  /** `device_block_translation`: leave the domain and clear the context entry (legacy mode). */
  const blockTranslation = (dev: Device): void => {
    const info = dev.iommuPriv as DeviceDomainInfo | undefined;
    if (!info)
      throw new ErrnoError("ENODEV", "blocking_domain_attach_dev", "device not probed by intel-iommu", {
        dev: dev.name,
      });
    if (info.domain) info.domain.detachDev(dev);
    else if (info.unit.contextPresent(info.sid)) info.unit.clearContext(info.sid);
  };

  const ops = {
    name: "intel-iommu",
    pgsizeBitmap: pgsizeBitmapFor(pgsizeMode, superpage),

    probeDevice(dev: Device): void {
      const u = unitOf(dev);
      if (!u)
        throw new ErrnoError("ENODEV", "intel_iommu_probe_device", "no DMAR unit serves this device", {
          dev: dev.name,
        });
      const info: DeviceDomainInfo = { unit: u.unit, sid: u.sid, domain: null };
      dev.iommuPriv = info;
      devicesBySid.set(sidKey(u.unit, u.sid), dev);
    },

    releaseDevice(dev: Device): void {
      const info = dev.iommuPriv as DeviceDomainInfo | undefined;
      if (!info) return;
      if (info.domain) info.domain.detachDev(dev);
      else if (info.unit.contextPresent(info.sid)) info.unit.clearContext(info.sid);
      devicesBySid.delete(sidKey(info.unit, info.sid));
      dev.iommuPriv = undefined;
    },

    /** pci_device_group without ACS/alias quirks: on q35's root bus every function is its own group. */
    deviceGroup(dev: Device): string {
      if (dev instanceof PciDevice) return `pci:${dev.segment}:${dev.requesterId}`;
      return `dev:${dev.name}`;
    },

    defDomainType(_dev: Device): DomainType | undefined {
      // device_def_domain_type: identity only for gfx/azalia quirks (off by default); the core decides.
      return undefined;
    },

    domainAlloc(type: DomainType, ctx): DriverDomain | null {
      if (units.length === 0) return null;
      if (type === "DMA" || type === "DMA-FQ" || type === "unmanaged") {
        let d: VtdDomain;
        try {
          d = new VtdDomain(env, type, units);
        } catch (e) {
          // alloc_pgtable_page returned NULL: intel_iommu_domain_alloc answers NULL.
          if (isErrno(e, "ENOMEM")) return null;
          throw e;
        }
        faultSinks.set(d, (dev, iova, flags) => ctx.reportFault(dev, iova, flags));
        return d;
      }
      if (type === "blocked") {
        if (!opts.blockedDomain) return null;
        return {
          pgsizeBitmap: 0n,
          geometry: { apertureStart: 0n, apertureEnd: 0n, forceAperture: false },
          attachDev: (dev) => blockTranslation(dev),
          free: () => {},
        };
      }
      if (type === "identity") {
        // si_domain with hardware pass-through: context entries with TT=2, no page table.
        const d = new VtdDomain(env, "identity", units);
        return {
          pgsizeBitmap: d.pgsizeBitmap,
          geometry: d.geometry,
          attachDev: (dev) => d.attachDev(dev),
          free: () => d.free(),
        };
      }
      return null;
    },

    getResvRegions(dev: Device): ResvRegion[] {
      return intelResvRegions(dmar, dev, { floppyWorkaround: opts.floppyWorkaround ?? true });
    },

    /** intel_iommu_capable (6.1): CACHE_COHERENCY is always true; INTR_REMAP is irq_remapping_enabled. */
    capable(_dev: Device, cap: IommuCap): boolean {
      if (cap === "CACHE_COHERENCY") return true;
      if (cap === "INTR_REMAP") return irqRemappingEnabled;
      if (cap === "PRE_BOOT_PROTECTION") return opts.platformOptIn ?? false;
      return false;
    },

    /**
     * intel_iommu_hw_info (6.12): `struct iommu_hw_info_vtd` of the device's unit — flags
     * IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 (always set), CAP_REG, ECAP_REG — type 1 (INTEL_VTD).
     */
    hwInfo(dev: Device): HwInfo {
      const u = unitOf(dev);
      if (!u) throw new ErrnoError("ENODEV", "intel_iommu_hw_info", "no DMAR unit for this device", { dev: dev.name });
      const data = new Uint8Array(24);
      const v = new DataView(data.buffer);
      v.setUint32(0, 1, true);
      v.setBigUint64(8, u.unit.cap, true);
      v.setBigUint64(16, u.unit.ecap, true);
      return { type: 1, data };
    },
  } satisfies IommuOps;

  const irqOf = (dev: Device): IrqRemapping => {
    const u = unitOf(dev);
    const i = u ? units.indexOf(u.unit) : -1;
    const ir = i >= 0 ? irqRemapping[i] : null;
    if (!ir)
      throw new ErrnoError("ENODEV", "map_dev_to_ir", "no interrupt remapping for this device", { dev: dev.name });
    return ir;
  };
  // map_ioapic_to_ir: the IR unit whose DRHD device scope lists the IOAPIC.
  const irqOfIoapic = (ioapicId: number): IrqRemapping => {
    const i = (dmar.drhds ?? []).findIndex((d) => d.ioapics?.some((io) => io.ioapicId === ioapicId));
    const ir = i >= 0 ? irqRemapping[i] : null;
    if (!ir)
      throw new ErrnoError("ENODEV", "map_ioapic_to_ir", "no interrupt remapping unit has this IOAPIC in scope", {
        ioapicId,
      });
    return ir;
  };
  const msiIrte = new Map<Device, number>();
  // The IRTE of each mapped IOAPIC pin, keyed `ioapicId:pin`.
  const pinIrte = new Map<string, { ir: IrqRemapping; index: number }>();
  const irq: IrqRemapper = {
    allocIoapicPin(ioapicId, pin) {
      const key = `${ioapicId}:${pin}`;
      if (pinIrte.has(key))
        throw new ErrnoError("EBUSY", "intel_irq_remapping_alloc", "IOAPIC pin already has its IRTE", {
          ioapicId,
          pin,
        });
      const ir = irqOfIoapic(ioapicId);
      const index = ir.allocIrte(1);
      pinIrte.set(key, { ir, index });
      return index;
    },
    freeIoapicPin(ioapicId, pin) {
      const key = `${ioapicId}:${pin}`;
      const e = pinIrte.get(key);
      if (!e) return;
      e.ir.freeIrte(e.index);
      pinIrte.delete(key);
    },
    alloc(dev, vector, destination = 0) {
      const ir = irqOf(dev);
      const old = msiIrte.get(dev);
      if (old !== undefined) ir.freeIrte(old);
      const a = ir.allocMsi(dev, vector, destination, 1);
      msiIrte.set(dev, a.index);
      const m = a.messages[0] as MsiMsg;
      return { address: msiMsgAddress(m), data: m.data, index: a.index };
    },
    free(dev) {
      const index = msiIrte.get(dev);
      if (index === undefined) return;
      irqOf(dev).freeIrte(index);
      msiIrte.delete(dev);
    },
  };

  return {
    irq,
    ops: Object.freeze(ops),
    units,
    irqRemapping,
    unitFor: (dev) => unitOf(dev)?.unit ?? null,
    irqRemappingFor: irqOf,
    handleFaultIrq(i: number): void {
      const unit = units[i];
      if (!unit) return;
      for (const f of unit.handleFault()) {
        if (f.interrupt) continue;
        // 6.1's dmar_fault only logs; we also report upward so a domain's fault handler can see it.
        const dev = devicesBySid.get(sidKey(unit, f.sourceId));
        const info = dev?.iommuPriv as DeviceDomainInfo | undefined;
        const sink = info?.domain ? faultSinks.get(info.domain) : undefined;
        if (dev && sink) sink(dev, f.addr, f.isRead ? 0 : 1);
      }
    },
    drainLog: () => log.drain(),
  };
}

export { deviceHasRmrr, rmrrIsRelaxable };
