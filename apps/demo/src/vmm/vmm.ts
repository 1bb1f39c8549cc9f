/**
 * A VMM in userspace terms, doing what QEMU's vfio code does for one passthrough device: open the
 * container and the group, read the usable IOVA ranges, lay out guest RAM (q35 or virt defaults),
 * detect conflicts with reserved regions and react, map guest RAM with MAP_DMA (GPA = IOVA), open the
 * device, let the guest drive edu's DMA engine through the IOMMU and the device's MSI reach an eventfd.
 * With `naive` it ignores the ranges and maps a flat layout, failing the way users hit it.
 */
import { msiMsgAddress, U64_MAX } from "@iommu/core";
import type { BarMapping, Board, EduDevice, VfioPciDevice } from "@iommu-sim/host";
import { EDU_BUF_START, EDU_DMA_IRQ, EDU_DMA_TO_RAM, EDU_REG, EventFd } from "@iommu-sim/host";
import {
  type IommuType1Info,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_MSI_IRQ_INDEX,
} from "@vfio/uapi";
import { type IoasRanges, type IommufdUser, openIommufdUser } from "./iommufd-user.js";
import {
  type FittedLayout,
  fitLayout,
  flatLayout,
  type IovaRange,
  type LayoutKind,
  q35Layout,
  type RamBlock,
  sizeText,
  virtLayout,
} from "./layout.js";
import { openVfioUser, type VfioUser } from "./vfio-user.js";

/** Which VFIO uAPI the VMM uses: the type1 container, or iommufd with the device cdev (QEMU >= 9's iommufd backend). */
export type VmmUapi = "type1" | "iommufd";

export interface VmmOptions {
  /** Guest RAM size in bytes (default 1 GiB). */
  readonly guestRam?: bigint;
  /** Ignore the valid IOVA ranges (and map a flat layout from 0). */
  readonly naive?: boolean;
  /** "machine" (q35/virt default) or "flat" (from GPA 0). Default: machine, or flat when naive. */
  readonly layout?: LayoutKind;
  /** The edu device to pass through (default the board's first). */
  readonly device?: EduDevice;
  /** Name for narration (two VMMs on one host). */
  readonly name?: string;
  /** Host virtual address of guest RAM in the VMM process. */
  readonly ramVaddr?: bigint;
  /** Called after each step (progress on a TTY). */
  readonly onStep?: (s: VmmStep) => void;
  /** The VFIO uAPI (default type1); iommufd needs a board whose module set has /dev/iommu. */
  readonly uapi?: VmmUapi;
}

export interface VmmStep {
  readonly title: string;
  readonly lines: string[];
  readonly ok: boolean;
}

export interface MappedBlock {
  readonly iova: bigint;
  readonly size: bigint;
  readonly vaddr: bigint;
  readonly name: string;
  /** 0 or a negative errno from MAP_DMA. */
  readonly ret: number;
  readonly errno?: string;
}

export interface VmmReport {
  readonly board: string;
  /** The Linux the host models (its kernel profile: "6.1", "6.12", "7.3"). */
  readonly kernel: string;
  readonly vmm: string;
  readonly device: string;
  readonly group: number;
  readonly naive: boolean;
  readonly uapi: VmmUapi;
  /** type1: VFIO_IOMMU_GET_INFO (null over iommufd). */
  readonly info: IommuType1Info | null;
  /** iommufd: the IOAS, the device's id and HWPT, and the IOAS's usable ranges (null over type1). */
  readonly ioas: ({ ioasId: number; devId: number; hwptId: number } & IoasRanges) | null;
  readonly layout: FittedLayout | null;
  readonly mappings: MappedBlock[];
  readonly dma: {
    readonly gpa: bigint;
    readonly len: number;
    readonly roundTrip: boolean;
    readonly faults: number;
  } | null;
  readonly msi: {
    readonly address: bigint;
    readonly data: number;
    readonly eventfdCount: number;
    readonly doorbellIova: bigint | null;
  } | null;
  readonly interrupts: readonly { source: string; vector: number; count: number }[];
  readonly steps: VmmStep[];
  readonly ok: boolean;
  /** Why the story stopped or what went wrong (the naive failure, say). */
  readonly failure: string | null;
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;
const GiB = 1n << 30n;

export class Vmm {
  readonly device: EduDevice;
  readonly name: string;
  readonly guestRam: bigint;
  readonly naive: boolean;
  readonly layoutKind: LayoutKind;
  readonly ramVaddr: bigint;
  user: VfioUser | null = null;
  readonly uapi: VmmUapi;
  /** The iommufd side (`uapi: "iommufd"`). */
  fd: IommufdUser | null = null;
  ioas: VmmReport["ioas"] = null;
  handle: VfioPciDevice | null = null;
  bar: BarMapping | null = null;
  readonly eventfd = new EventFd("msi");
  readonly mappings: MappedBlock[] = [];
  info: IommuType1Info | null = null;
  layout: FittedLayout | null = null;
  private readonly steps: VmmStep[] = [];

  constructor(
    readonly board: Board,
    private readonly opts: VmmOptions = {},
  ) {
    this.device = opts.device ?? (board.edus[0] as EduDevice);
    this.name = opts.name ?? "vmm";
    this.guestRam = opts.guestRam ?? GiB;
    this.naive = opts.naive ?? false;
    this.layoutKind = opts.layout ?? (this.naive ? "flat" : "machine");
    this.ramVaddr = opts.ramVaddr ?? 0x7f0000000000n;
    this.uapi = opts.uapi ?? "type1";
  }

  get groupId(): number {
    return this.board.groupIdOf(this.device);
  }

  private step(title: string, lines: string[], ok = true): VmmStep {
    const s = { title, lines, ok };
    this.steps.push(s);
    this.opts.onStep?.(s);
    return s;
  }

  /** The VMM process (type1 or iommufd side). */
  get process() {
    const p = this.user?.process ?? this.fd?.process;
    if (!p) throw new Error("VMM not opened");
    return p;
  }

  /** The valid IOVA ranges the layout must keep to (GET_INFO's cap, or the IOAS's ranges). */
  get validRanges(): readonly IovaRange[] {
    return this.info?.iovaRanges ?? this.ioas?.ranges ?? [];
  }

  /** Hugepage-backed guest RAM, as passthrough VMMs use: pinning walks 2 MiB runs, not 4 KiB pages. */
  private mmapGuestRam(p: { mmap: VfioUser["process"]["mmap"] }): void {
    const huge = this.guestRam % (2n << 20n) === 0n;
    p.mmap({ start: this.ramVaddr, size: this.guestRam, kind: huge ? "hugetlb-2M" : "anon", name: "guest-ram" });
  }

  /** Steps 1-2 over iommufd: /dev/iommu, an IOAS, the device cdev bound and attached; IOAS_IOVA_RANGES. */
  private openIommufd(memlock: bigint): void {
    const f = openIommufdUser(this.board, this.device, memlock);
    this.fd = f;
    this.mmapGuestRam(f.process);
    this.step("open /dev/iommu, an IOAS and the device cdev", [
      `process ${f.process.name}: guest RAM ${sizeText(this.guestRam)} mmapped at ${hex(this.ramVaddr)} (RLIMIT_MEMLOCK ${sizeText(memlock)})`,
      `/dev/iommu: IOMMU_IOAS_ALLOC -> IOAS ${f.ioasId}`,
      `${f.cdevPath}: VFIO_DEVICE_BIND_IOMMUFD -> dev_id ${f.devId}; ATTACH_IOMMUFD_PT(IOAS ${f.ioasId}) -> HWPT ${f.hwptId}`,
    ]);
    const r = f.ranges();
    this.ioas = { ioasId: f.ioasId, devId: f.devId, hwptId: f.hwptId, ...r };
    const lines = [`out_iova_alignment ${hex(r.alignment)}, ${r.ranges.length} usable range(s)`];
    for (const x of r.ranges) lines.push(`usable IOVA range [${hex(x.start)}, ${hex(x.end)}]`);
    lines.push("the holes are the attached device's reserved regions: they go when it detaches");
    const group = this.board.iommu.groupById(this.groupId);
    if (group) {
      for (const l of group.resvRegionsText().trim().split("\n").filter(Boolean)) lines.push(`reserved_regions: ${l}`);
    }
    this.step("IOMMU_IOAS_IOVA_RANGES", lines);
  }

  /** Steps 1-3: process, container, group, IOMMU backend, GET_INFO (or the iommufd doors). */
  open(): void {
    const memlock = this.guestRam + (64n << 20n);
    if (this.uapi === "iommufd") {
      this.openIommufd(memlock);
      return;
    }
    const u = openVfioUser(this.board, this.groupId, memlock);
    this.user = u;
    this.mmapGuestRam(u.process);
    this.step("open container and group", [
      `process ${u.process.name}: guest RAM ${sizeText(this.guestRam)} mmapped at ${hex(this.ramVaddr)} (RLIMIT_MEMLOCK ${sizeText(memlock)})`,
      `/dev/vfio/vfio: API version ${u.apiVersion}, TYPE1v2 ${u.hasType1v2 ? "supported" : "missing"}`,
      `/dev/vfio/${this.groupId}: viable, SET_CONTAINER, SET_IOMMU(TYPE1v2) = ${u.setIommuRet}`,
    ]);
    this.info = u.getInfo();
    const lines = [`iova_pgsizes ${hex(this.info.iovaPgsizes)}, DMA mappings available ${this.info.dmaAvail ?? "?"}`];
    for (const r of this.info.iovaRanges) lines.push(`valid IOVA range [${hex(r.start)}, ${hex(r.end)}]`);
    for (const r of this.info.reservedRanges) lines.push(`seed: reserved IOVA range [${hex(r.start)}, ${hex(r.end)}]`);
    const group = this.board.iommu.groupById(this.groupId);
    if (group) {
      for (const l of group.resvRegionsText().trim().split("\n").filter(Boolean)) lines.push(`reserved_regions: ${l}`);
    }
    this.step("VFIO_IOMMU_GET_INFO", lines);
  }

  /** Step 4: guest RAM layout, conflict detection and reaction. */
  planLayout(): RamBlock[] {
    const want =
      this.layoutKind === "flat"
        ? flatLayout(this.guestRam)
        : this.board.arch === "x86_64"
          ? q35Layout(this.guestRam)
          : virtLayout(this.guestRam);
    const lines = want.map(
      (b) => `wants ${b.name}: GPA [${hex(b.gpa)}, ${hex(b.gpa + b.size - 1n)}] (${sizeText(b.size)})`,
    );
    if (this.naive) {
      lines.push("--naive: the valid ranges are ignored; guest RAM is mapped where the layout puts it");
      this.step(`guest RAM layout (${this.layoutKind})`, lines);
      return want;
    }
    const valid: readonly IovaRange[] = this.validRanges.length ? this.validRanges : [{ start: 0n, end: U64_MAX }];
    const fitted = fitLayout(want, valid);
    this.layout = fitted;
    if (fitted.conflicts.length === 0) lines.push("no conflict with the reserved IOVA ranges");
    for (const c of fitted.conflicts) lines.push(`conflict: reserved [${hex(c.start)}, ${hex(c.end)}]`);
    for (const r of fitted.reactions) if (r.kind !== "fits") lines.push(`react: ${r.text}`);
    for (const b of fitted.blocks) lines.push(`final ${b.name}: GPA [${hex(b.gpa)}, ${hex(b.gpa + b.size - 1n)}]`);
    this.step(`guest RAM layout (${this.layoutKind})`, lines);
    return fitted.blocks;
  }

  /** Step 5: MAP_DMA every RAM block. Returns false when a map failed. */
  mapRam(blocks: readonly RamBlock[]): boolean {
    const lines: string[] = [];
    let ok = true;
    const what = this.fd ? "IOMMU_IOAS_MAP" : "MAP_DMA";
    for (const b of blocks) {
      const vaddr = this.ramVaddr + b.offset;
      const r = this.fd ? this.fd.map(vaddr, b.gpa, b.size) : this.need().mapDma(vaddr, b.gpa, b.size);
      this.mappings.push({
        iova: b.gpa,
        size: b.size,
        vaddr,
        name: b.name,
        ret: r.ret,
        ...(r.errno ? { errno: r.errno } : {}),
      });
      lines.push(
        `${what} iova ${hex(b.gpa)} size ${hex(b.size)} vaddr ${hex(vaddr)} -> ${r.ret === 0 ? "0" : `-1 ${r.errno}`}`,
      );
      if (r.ret !== 0) ok = false;
    }
    // type1 charges locked_vm (VmLck); iommufd charges pinned_vm (VmPin)
    const [counter, pages] = this.fd ? ["pinned_vm", this.process.pinnedVm] : ["locked_vm", this.process.lockedVm];
    lines.push(`${counter} ${pages} pages (${sizeText(BigInt(pages) * 4096n)})`);
    this.step("map guest RAM", lines, ok);
    return ok;
  }

  /** Step 6: open the device, mmap BAR0, enable bus mastering, arm MSI with an eventfd. */
  openDevice(): void {
    // over iommufd the cdev's BIND_IOMMUFD opened the device already
    const h = this.fd?.device ?? this.board.vfioPci.openDevice(this.groupId, this.device.name);
    this.handle = h;
    this.bar = h.mmapBar0();
    h.configWrite(4, 2, h.configRead(4, 2) | 0x6);
    const info = h.getIrqInfo(VFIO_PCI_MSI_IRQ_INDEX);
    const ret = h.setIrqs({
      flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
      index: VFIO_PCI_MSI_IRQ_INDEX,
      start: 0,
      count: 1,
      eventfds: [this.eventfd],
    });
    const lines = [
      `${this.fd ? `${this.fd.cdevPath} (bound)` : `VFIO_GROUP_GET_DEVICE_FD ${this.device.name}`}; BAR0 ${sizeText(BigInt(this.bar.size))} mmapped; bus master on`,
      `edu id ${hex(this.bar.read32(EDU_REG.ID))}`,
      `GET_IRQ_INFO(MSI): flags ${hex(info.flags)} count ${info.count}; SET_IRQS(EVENTFD|TRIGGER) = ${ret}`,
    ];
    const setup = this.board.vfioPci.msiSetupOf(this.device);
    if (setup) {
      lines.push(...setup.steps.map((x) => `host: ${x}`));
      const seen = h.configRead(this.device.config.msiCap + 4, 4);
      lines.push(
        `device MSI capability: address ${hex(setup.address)} data ${hex(setup.data)} (user space sees ${hex(seen)})`,
      );
    }
    this.step("open the device and arm its MSI", lines, ret === 0);
  }

  /** Guest RAM access from the VMM (the guest's view of its own memory). */
  writeGuest(gpa: bigint, bytes: Uint8Array): void {
    this.process.writeUser(this.vaddrOf(gpa), bytes);
  }

  readGuest(gpa: bigint, len: number): Uint8Array {
    return this.process.readUser(this.vaddrOf(gpa), len);
  }

  private vaddrOf(gpa: bigint): bigint {
    const m = this.mappings.find((x) => x.iova <= gpa && gpa < x.iova + x.size);
    if (m) return m.vaddr + (gpa - m.iova);
    const blocks = this.layout?.blocks ?? [];
    const b = blocks.find((x) => x.gpa <= gpa && gpa < x.gpa + x.size);
    if (b) return this.ramVaddr + b.offset + (gpa - b.gpa);
    return this.ramVaddr + gpa;
  }

  /** Program edu: RAM(gpa) -> buffer, then buffer -> RAM(gpa2). Returns faults seen. */
  eduCopy(srcGpa: bigint, dstGpa: bigint, len: number, irq = false): { faults: number; completed: boolean } {
    const bar = this.bar;
    if (!bar) throw new Error("device not open");
    let faults = 0;
    const run = (src: bigint, dst: bigint, toRam: boolean) => {
      const before = this.device.dmaLog.length;
      bar.write64(EDU_REG.DMA_SRC, src);
      bar.write64(EDU_REG.DMA_DST, dst);
      bar.write64(EDU_REG.DMA_COUNT, BigInt(len));
      bar.write64(EDU_REG.DMA_CMD, BigInt(1 | (toRam ? EDU_DMA_TO_RAM : 0) | (irq && toRam ? EDU_DMA_IRQ : 0)));
      for (const rec of this.device.dmaLog.slice(before)) faults += rec.faults.length;
      return (bar.read64(EDU_REG.DMA_CMD) & 1n) === 0n;
    };
    const a = run(srcGpa, EDU_BUF_START, false);
    const b = run(EDU_BUF_START, dstGpa, true);
    return { faults, completed: a && b };
  }

  /** Step 7-8: the guest's DMA through the IOMMU and the completion MSI. */
  exercise(): { dma: VmmReport["dma"]; msi: VmmReport["msi"] } {
    const blocks = this.mappings.filter((m) => m.ret === 0);
    const lines: string[] = [];
    // The guest's buffers: near the start of its RAM, and 1 MiB further (both inside the 28-bit edu reach on q35).
    const first = this.layout?.blocks[0] ?? blocks[0];
    const base = first ? ("gpa" in first ? first.gpa : first.iova) : 0n;
    const src = base + 0x100000n;
    const dst = base + 0x200000n;
    const pattern = Uint8Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff);
    this.writeGuest(src, pattern);
    this.writeGuest(dst, new Uint8Array(256));
    this.eventfd.read();
    const consoleBefore = this.device.console.length;
    const r = this.eduCopy(src, dst, 256, true);
    for (const l of this.device.console.slice(consoleBefore)) lines.push(`QEMU edu: ${l} (edu's 28-bit DMA mask)`);
    const back = this.readGuest(dst, 256);
    const roundTrip = back.every((v, i) => v === pattern[i]);
    lines.push(`guest writes 256 bytes at GPA ${hex(src)}; edu DMA ${hex(src)} -> buffer -> ${hex(dst)}`);
    lines.push(`IOMMU faults: ${r.faults}; data ${roundTrip ? "arrived intact" : "did NOT arrive"} at GPA ${hex(dst)}`);
    const count = Number(this.eventfd.read());
    const msg = this.device.config.msiMessage();
    const setup = { address: msiMsgAddress(msg), data: msg.data };
    lines.push(`DMA-complete MSI: device wrote ${hex(setup.data)} to ${hex(setup.address)}; eventfd count ${count}`);
    for (const i of this.board.interrupts()) {
      const v = this.board.arch === "x86_64" ? `vector ${hex(i.vector)}` : `LPI ${i.vector}`;
      lines.push(`interrupt controller: ${i.source} ${v} x${i.count}`);
    }
    this.step("guest DMA and MSI through the IOMMU", lines, roundTrip && count > 0);
    return {
      dma: { gpa: dst, len: 256, roundTrip, faults: r.faults },
      msi: {
        address: setup.address,
        data: setup.data,
        eventfdCount: count,
        doorbellIova: this.board.vfioPci.msiSetupOf(this.device)?.doorbellIova ?? null,
      },
    };
  }

  /** The whole story. Never throws for model errors: they become the failure line. */
  run(): VmmReport {
    let failure: string | null = null;
    let dma: VmmReport["dma"] = null;
    let msi: VmmReport["msi"] = null;
    try {
      this.open();
      const blocks = this.planLayout();
      const mapped = this.mapRam(blocks);
      if (!mapped && this.naive) {
        const bad = this.mappings.find((m) => m.ret !== 0);
        failure = `MAP_DMA of ${bad?.name} at ${hex(bad?.iova ?? 0n)} failed with ${bad?.errno}: it overlaps a reserved IOVA range (Linux 6.1 vfio_dma_do_map: not inside one valid range)`;
      }
      this.openDevice();
      const e = this.exercise();
      dma = e.dma;
      msi = e.msi;
      if (this.naive && dma && !dma.roundTrip && !failure) failure = "the guest's DMA faulted in the IOMMU";
      if (this.naive && failure) {
        this.step(
          "what went wrong",
          [failure, "a VMM must read VFIO_IOMMU_GET_INFO's IOVA ranges and keep guest RAM out of the holes"],
          false,
        );
      }
    } catch (e) {
      failure = e instanceof Error ? e.message : String(e);
      this.step("error", [failure], false);
    }
    const ok = failure === null && this.steps.every((s) => s.ok);
    return {
      board: this.board.name,
      kernel: this.board.kernel.version,
      vmm: this.name,
      device: this.device.name,
      group: this.groupId,
      naive: this.naive,
      uapi: this.uapi,
      info: this.info,
      ioas: this.ioas,
      layout: this.layout,
      mappings: this.mappings,
      dma,
      msi,
      interrupts: this.board.interrupts(),
      steps: this.steps,
      ok,
      failure,
    };
  }

  private need(): VfioUser {
    if (!this.user) throw new Error("VMM not opened");
    return this.user;
  }
}
