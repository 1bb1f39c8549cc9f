/**
 * The arm-smmu-v3 driver's `iommu_ops`: probe the SMMU through its registers, claim devices by
 * stream id, one group per PCI function (QEMU virt's root bus isolates functions), domains of
 * stage 1 (or 2), reserved regions, and the event-queue interrupt that reports faults upward.
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
import { EVTF, STE, STE_CONFIG } from "../arch/structures.js";
import { SmmuDomain, type SmmuMaster } from "./domain.js";
import { decodedEventLines } from "./event-log.js";
import { type ResvRegionOptions, smmuResvRegions } from "./resv-regions.js";
import { SmmuDevice, type SmmuFeatures } from "./smmu-device.js";

export interface ArmSmmuV3DriverOptions extends ResvRegionOptions {
  readonly memory: PhysicalMemory;
  /** Where the SMMU's register frame is (firmware: DT `reg` / IORT base address). */
  readonly mmioBase: bigint;
  /** Frames for stream tables, queues, CDs and page tables. */
  readonly pageAllocator: PageAllocator;
  /** Device name used in log lines, default `<mmioBase hex>.smmuv3` (QEMU virt: `9050000.smmuv3`). */
  readonly name?: string;
  /** The CPU page size: io-pgtable uses that granule when the SMMU supports it. Default 4096. */
  readonly pageSize?: 4096 | 16384 | 65536;
  /** Translation stage for paging domains; default 1 when supported, else 2. */
  readonly stage?: 1 | 2;
  /**
   * IORT/DT id mapping: the stream id of `dev` on this SMMU, or null when it is not behind it
   * (probe answers ENODEV). Default: the PCI requester id / platform stream id.
   */
  readonly streamIdOf?: (dev: Device) => number | null;
  /**
   * Model time in ms for the event printer's ratelimit (10 events per 5 s, as `arm_smmu_evtq_thread`).
   * Default: time never passes, so only the first 10 events of a boot print (a recorder run is shorter
   * than 5 s). Faults are reported to the core whether printed or not.
   */
  readonly now?: () => number;
  /**
   * "iommu/arm-smmu-v3: Improve events logging" (Linux 6.15): after the raw dump, each printed event also gets
   * its decoded lines (`event: F_TRANSLATION client: 0000:00:01.0 sid: 0x8 …`). Default false (Linux 6.1).
   */
  readonly decodedEventLog?: boolean;
  /**
   * `arm_smmu_ops.blocked_domain` (Linux 6.9 on; 6.12, 7.3): a BLOCKED domain whose attach writes an abort STE,
   * so a claimed-but-unattached device's DMA is terminated without an event. Default false (6.1: no BLOCKED
   * domain; the core falls back to an empty UNMANAGED one, whose misses are F_TRANSLATION events).
   */
  readonly blockedDomain?: boolean;
}

/** What `createArmSmmuV3Driver` gives the host: core's driver shape plus the event interrupt and probe's findings. */
export interface ArmSmmuV3Driver extends IommuDriver {
  /** The event queue interrupt handler: drains records, logs, reports faults. Returns records handled. */
  handleEventIrq(): number;
  readonly features: SmmuFeatures;
}

/** Probe the SMMU at `mmioBase`, reset it, and return its driver. Throws ENODEV / EIO on a bad SMMU. */
export function createArmSmmuV3Driver(opts: ArmSmmuV3DriverOptions): ArmSmmuV3Driver {
  const smmu = new SmmuDevice(opts.memory, opts.mmioBase, opts.pageAllocator, opts.name);
  const f = smmu.features;
  const stage: 1 | 2 = opts.stage ?? (f.stage1 ? 1 : 2);
  if ((stage === 1 && !f.stage1) || (stage === 2 && !f.stage2)) {
    throw new ErrnoError("ENODEV", "arm_smmu_domain_finalise", `stage ${stage} not supported by this SMMU`);
  }
  const pageShift = opts.pageSize === 65536 ? 16 : opts.pageSize === 16384 ? 14 : 12;
  const streamIdOf = opts.streamIdOf ?? ((dev: Device) => dev.requesterId);
  const masters = new Map<number, SmmuMaster>();
  const log = new LogBuffer();
  // arm_smmu_evtq_thread's `static DEFINE_RATELIMIT_STATE(rs, DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST)`.
  const rs = new Ratelimit(DEFAULT_RATELIMIT_INTERVAL_MS, DEFAULT_RATELIMIT_BURST, opts.now);

  const masterOf = (dev: Device): SmmuMaster => {
    const m = dev.iommuPriv as SmmuMaster | undefined;
    if (!m || masters.get(m.sid) !== m) {
      throw new ErrnoError("ENODEV", "arm_smmu_probe_device", "device not probed by this SMMU", { dev: dev.name });
    }
    return m;
  };

  const handleEventIrq = (): number => {
    const { records, overflow } = smmu.drainEvents();
    if (overflow) log.printk(`arm-smmu-v3 ${smmu.name}: EVTQ overflow detected -- events lost`);
    for (const r of records) {
      const [d0, d1, d2] = r as [bigint, bigint, bigint, bigint];
      const id = Number(d0 & 0xffn);
      const printed = rs.allow();
      if (printed) {
        log.printk(`arm-smmu-v3 ${smmu.name}: event 0x${id.toString(16).padStart(2, "0")} received:`);
        for (const d of r) log.printk(`arm-smmu-v3 ${smmu.name}: \t0x${d.toString(16).padStart(16, "0")}`);
      }
      const m = masters.get(Number(d0 >> EVTF.SID_SHIFT));
      if (printed && opts.decodedEventLog) {
        for (const l of decodedEventLines(r, m ? m.dev.name : null)) log.printk(`arm-smmu-v3 ${smmu.name}: ${l}`);
      }
      const dom = m?.domain;
      if (m && dom && dom.stage !== "bypass") {
        dom.ctx.reportFault(m.dev, d2, (d1 & EVTF.RNW) !== 0n ? IOMMU_FAULT_READ : IOMMU_FAULT_WRITE);
      }
    }
    return records.length;
  };

  const ops = {
    name: "arm-smmu-v3",
    pgsizeBitmap: f.pgsizeBitmap,

    probeDevice(dev: Device): void {
      const sid = streamIdOf(dev);
      if (sid === null)
        throw new ErrnoError("ENODEV", "arm_smmu_probe_device", "device not behind this SMMU", { dev: dev.name });
      const existing = masters.get(sid);
      if (existing?.dev === dev) return;
      if (existing) throw new ErrnoError("EBUSY", "arm_smmu_insert_master", "stream id already in use", { sid });
      if (sid < 0 || sid >= 2 ** smmu.strtabSidBits) {
        throw new ErrnoError("ERANGE", "arm_smmu_probe_device", "stream id beyond the stream table", {
          sid,
          sidBits: smmu.strtabSidBits,
        });
      }
      smmu.ensureSte(sid);
      const master: SmmuMaster = { dev, sid, domain: null };
      masters.set(sid, master);
      dev.iommuPriv = master;
    },

    releaseDevice(dev: Device): void {
      const m = masterOf(dev);
      m.domain?.detach(m);
      // Back to abort: the stream is no longer ours.
      smmu.writeSte(m.sid, [1n]);
      masters.delete(m.sid);
      dev.iommuPriv = undefined;
    },

    deviceGroup(dev: Device): string {
      const m = masterOf(dev);
      // pci_device_group: ACS-isolated functions each get a group; platform devices get their own.
      return dev.bus === "pci" ? `pci:${m.sid}` : `platform:${dev.name}`;
    },

    domainAlloc(type: DomainType, ctx: DomainAllocContext): DriverDomain | null {
      // 6.1 arm_smmu_domain_alloc: UNMANAGED, DMA, DMA_FQ and IDENTITY; no blocked domain.
      if (type === "blocked") {
        if (!opts.blockedDomain) return null;
        return {
          pgsizeBitmap: 0n,
          geometry: { apertureStart: 0n, apertureEnd: 0n, forceAperture: false },
          // arm_smmu_attach_dev_blocked: the master leaves its domain and its STE becomes abort (Config 0b000).
          attachDev: (dev) => {
            const m = masterOf(dev);
            m.domain?.detach(m);
            smmu.writeSte(m.sid, [STE.V | (BigInt(STE_CONFIG.ABORT) << STE.CONFIG_SHIFT)]);
          },
          free: () => {},
        };
      }
      try {
        return new SmmuDomain({ smmu, type, ctx, stage, pageShift });
      } catch (e) {
        if (e instanceof ErrnoError) return null;
        throw e;
      }
    },

    getResvRegions(dev: Device): ResvRegion[] {
      return smmuResvRegions(dev, masterOf(dev).sid, opts);
    },

    capable(_dev: Device, cap: IommuCap): boolean {
      // arm_smmu_capable (6.1): coherent walks give CACHE_COHERENCY; XN is always expressible.
      if (cap === "CACHE_COHERENCY") return f.coherent;
      return cap === "NOEXEC";
    },
  } satisfies IommuOps;

  return { ops: Object.freeze(ops), drainLog: () => log.drain(), handleEventIrq, features: f };
}
