/**
 * The arm-smmu (SMMUv2) driver's `iommu_ops`, Linux 6.1 `drivers/iommu/arm/arm-smmu/arm-smmu.c`
 * in outline: each device gets a stream match entry (SMR + S2CR), each paging domain a stage-1
 * context bank, and context faults read from FSR/FAR/FSYNR0/CBFRSYNRA go to `report_iommu_fault`.
 * Same reserved regions as SMMUv3 (reference §4.1).
 */
import {
  DEFAULT_RATELIMIT_BURST,
  DEFAULT_RATELIMIT_INTERVAL_MS,
  type Device,
  type DomainAllocContext,
  type DomainType,
  type DriverDomain,
  ErrnoError,
  IOMMU_FAULT_READ,
  IOMMU_FAULT_WRITE,
  type IommuCap,
  type IommuDriver,
  type IommuOps,
  LogBuffer,
  type PageAllocator,
  type PhysicalMemory,
  Ratelimit,
  type ResvRegion,
} from "@iommu/core";
import { V2_CB, V2_FSR, V2_FSYNR0_WNR, V2_GR0, V2_GR1, V2_S2CR, V2_SMR } from "../../arch/smmu-v2-regs.js";
import { type ResvRegionOptions, smmuResvRegions } from "../resv-regions.js";
import { SmmuV2Domain, type SmmuV2Master } from "./domain.js";
import { SmmuV2Device, type SmmuV2Features } from "./smmu-device.js";

export interface ArmSmmuV2DriverOptions extends ResvRegionOptions {
  readonly memory: PhysicalMemory;
  readonly mmioBase: bigint;
  readonly pageAllocator: PageAllocator;
  /** Device name in log lines, default `<mmioBase hex>.iommu`. */
  readonly name?: string;
  readonly pageSize?: 4096 | 16384 | 65536;
  readonly streamIdOf?: (dev: Device) => number | null;
  /** Model time in ms for the context-fault line's ratelimit (`dev_err_ratelimited`); default: never passes. */
  readonly now?: () => number;
}

/** What `createArmSmmuV2Driver` gives the host: core's driver shape plus the context interrupt and probe's findings. */
export interface ArmSmmuV2Driver extends IommuDriver {
  /** Context bank `cb`'s fault interrupt (`arm_smmu_context_fault`). */
  handleContextIrq(cb: number): void;
  readonly features: SmmuV2Features;
}

/** Probe the SMMUv2 at `mmioBase`, reset it, and return its driver. Throws ENODEV. */
export function createArmSmmuV2Driver(opts: ArmSmmuV2DriverOptions): ArmSmmuV2Driver {
  const smmu = new SmmuV2Device(opts.memory, opts.mmioBase, opts.pageAllocator, opts.name);
  const f = smmu.features;
  const log = new LogBuffer();
  // dev_err_ratelimited's per-call-site state (DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST).
  const rs = new Ratelimit(DEFAULT_RATELIMIT_INTERVAL_MS, DEFAULT_RATELIMIT_BURST, opts.now);
  const pageShift = opts.pageSize === 65536 ? 16 : opts.pageSize === 16384 ? 14 : 12;
  const streamIdOf = opts.streamIdOf ?? ((dev: Device) => dev.requesterId);
  const masters = new Map<number, SmmuV2Master>();

  const masterOf = (dev: Device): SmmuV2Master => {
    const m = dev.iommuPriv as SmmuV2Master | undefined;
    if (!m || masters.get(m.sid) !== m) {
      throw new ErrnoError("ENODEV", "arm_smmu_probe_device", "device not probed by this SMMU", { dev: dev.name });
    }
    return m;
  };

  const handleContextIrq = (cb: number): void => {
    const base = smmu.cbBase(cb);
    const fsr = smmu.rd(base + V2_CB.FSR);
    if ((fsr & (V2_FSR.TF | V2_FSR.AFF | V2_FSR.PF | V2_FSR.EF)) === 0) return;
    const fsynr = smmu.rd(base + V2_CB.FSYNR0);
    const iova = smmu.rd64(base + V2_CB.FAR);
    const cbfrsynra = smmu.rd(smmu.gr1 + V2_GR1.CBFRSYNRA + 4 * cb);
    const dom = smmu.cbOwner(cb);
    const m = masters.get(cbfrsynra);
    const flags = fsynr & V2_FSYNR0_WNR ? IOMMU_FAULT_WRITE : IOMMU_FAULT_READ;
    const ret = dom && m ? dom.ctx.reportFault(m.dev, iova, flags) : -38;
    if (ret === -38 && rs.allow()) {
      const hexIova = iova.toString(16).padStart(8, "0");
      log.printk(
        `arm-smmu ${smmu.name}: Unhandled context fault: fsr=0x${fsr.toString(16)}, iova=0x${hexIova}, fsynr=0x${fsynr.toString(16)}, cbfrsynra=0x${cbfrsynra.toString(16)}, cb=${cb}`,
      );
    }
    smmu.wr(base + V2_CB.FSR, fsr);
  };

  const ops = {
    name: "arm-smmu",
    pgsizeBitmap: f.pgsizeBitmap,

    probeDevice(dev: Device): void {
      const sid = streamIdOf(dev);
      if (sid === null) {
        throw new ErrnoError("ENODEV", "arm_smmu_probe_device", "device not behind this SMMU", { dev: dev.name });
      }
      if (masters.get(sid)?.dev === dev) return;
      if (masters.has(sid)) throw new ErrnoError("EBUSY", "arm_smmu_master_alloc_smes", "stream id in use", { sid });
      if (sid < 0 || sid >= 2 ** f.sidBits) {
        throw new ErrnoError("ERANGE", "arm_smmu_probe_device", "stream id beyond ID0.NUMSIDB", { sid });
      }
      const smr = smmu.allocSmr();
      if (smr === null) throw new ErrnoError("ENOSPC", "arm_smmu_find_sme", "no free stream match register", { sid });
      // S2CR first (fault until attached), then the SMR that makes the stream match it.
      smmu.wr(V2_GR0.S2CR + 4 * smr, V2_S2CR.TYPE_FAULT << V2_S2CR.TYPE_SHIFT);
      smmu.wr(V2_GR0.SMR + 4 * smr, (V2_SMR.VALID | (sid & V2_SMR.ID_MASK)) >>> 0);
      const m: SmmuV2Master = { dev, sid, smr, domain: null };
      masters.set(sid, m);
      dev.iommuPriv = m;
    },

    releaseDevice(dev: Device): void {
      const m = masterOf(dev);
      m.domain?.masters.delete(m);
      smmu.wr(V2_GR0.SMR + 4 * m.smr, 0);
      smmu.wr(V2_GR0.S2CR + 4 * m.smr, V2_S2CR.TYPE_FAULT << V2_S2CR.TYPE_SHIFT);
      smmu.freeSmr(m.smr);
      masters.delete(m.sid);
      dev.iommuPriv = undefined;
    },

    deviceGroup(dev: Device): string {
      const m = masterOf(dev);
      return dev.bus === "pci" ? `pci:${m.sid}` : `platform:${dev.name}`;
    },

    domainAlloc(type: DomainType, ctx: DomainAllocContext): DriverDomain | null {
      // 6.1 arm_smmu_domain_alloc: UNMANAGED, DMA, DMA_FQ, IDENTITY; the bank comes at first attach.
      if (type === "blocked") return null;
      return new SmmuV2Domain(smmu, type, ctx, pageShift);
    },

    getResvRegions(dev: Device): ResvRegion[] {
      return smmuResvRegions(dev, masterOf(dev).sid, opts);
    },

    capable(_dev: Device, cap: IommuCap): boolean {
      // arm_smmu_capable: coherent walks give CACHE_COHERENCY; NOEXEC always.
      if (cap === "CACHE_COHERENCY") return f.coherentWalk;
      return cap === "NOEXEC";
    },
  } satisfies IommuOps;

  return { ops: Object.freeze(ops), drainLog: () => log.drain(), handleContextIrq, features: f };
}
