/**
 * Seeded random iommufd / VFIO cdev scenarios (`--mode iommufd`): /dev/iommu, IOAS objects, the device cdev
 * and the group-on-iommufd path, weighted toward interactions — maps and unmaps that bisect, span or touch
 * each other (fixed and kernel-chosen IOVAs, u64 edges), COPY between IOASes, ALLOW_IOVAS against the
 * reserved MSI window, IOVA_RANGES with small arrays, struct-size (E2BIG/EINVAL) cases, HWPT allocation,
 * cdev open/bind/attach/detach/close in random orders, DMA through the mappings, destroy of busy objects.
 *
 * A grammar of its own with its own version numbers, so the type1 scenarios (generate.mjs) regenerate
 * byte for byte. The same recorder limits hold: DMA length ≤ 0xfff below edu's 28-bit reach, every map
 * that could pin at most MAP_SAFE_MAX and all of them under PIN_BUDGET (iommufd pins at map time once a
 * domain is attached, or at attach time for what is already mapped; COPY counts too).
 */
import { MAP_SAFE_MAX } from "./generate.mjs";
import { BASE_LEN } from "./grammar.mjs";
import { HUGE, hex, PAGE, U64_MAX } from "./numbers.mjs";
import { EDU_DMA_REACH, PLATFORMS } from "./platforms.mjs";
import { ScenarioWriter } from "./writer.mjs";

/** The current iommufd grammar version (independent of the type1 GENERATOR_VERSION). */
export const IOMMUFD_GENERATOR_VERSION = 2;

/** The first line of every iommufd scenario; the regeneration test reads seed, platform and version from it. */
export const iommufdHeaderLine = (seed, arch, v) =>
  `# random iommufd scenario, seed ${seed}, ${arch} (tools/scenario-gen iommufd v${v})`;

class IommufdGen extends ScenarioWriter {
  constructor(seed, arch, version) {
    super(seed, arch, version);
    /** IOAS indexes as the probe numbers them: { obj } (aliases from `vfio-ioas get` share obj). */
    this.ioas = [];
    /** IOAS objects asked for: { maps: [{ iova, size, off }], alive }. */
    this.objs = [];
    /** HWPT indexes: { ioas } (the IOAS index it was allocated on). */
    this.hwpts = [];
    this.fdOpen = false;
    this.compat = null;
  }

  // ---------------------------------------------------------------- state helpers

  /** ` ioas=K` for an existing index (or a stale/unknown one now and then), with K. */
  ioasArg(allowStale = true) {
    const r = this.rng;
    if (!this.ioas.length || (allowStale && r.chance(0.04))) return [` ioas=${this.ioas.length + r.int(2)}`, null];
    const k = r.int(this.ioas.length);
    return [k === 0 && r.chance(0.4) ? "" : ` ioas=${k}`, k];
  }

  mapsOf(k) {
    return k === null || k === undefined ? [] : this.objs[this.ioas[k].obj].maps;
  }

  dev(prefix = " ") {
    return this.ndev > 1 ? `${prefix}dev=${this.rng.int(this.ndev)}` : "";
  }

  devIndex() {
    return this.rng.int(this.ndev);
  }

  devArg(k) {
    return this.ndev > 1 || k !== 0 ? ` dev=${k}` : "";
  }

  freshOff(size) {
    let off = ((this.nextOff + HUGE - 1n) / HUGE) * HUGE + PAGE * BigInt(this.rng.int(3));
    if (off + size + MAP_SAFE_MAX > BASE_LEN) off = 0n;
    this.nextOff = off + size + PAGE;
    return off;
  }

  size() {
    return this.rng.pick([PAGE, PAGE, PAGE, 2n * PAGE, 3n * PAGE, 4n * PAGE, 0x10000n, HUGE - PAGE, HUGE, HUGE + PAGE]);
  }

  /** A map length that pins: at most MAP_SAFE_MAX and what is left of the budget (else a page). */
  charge(size) {
    const s = size > MAP_SAFE_MAX || size > this.budget ? PAGE : size;
    this.budget -= s;
    return s;
  }

  /** An IOVA for a map of `size` in IOAS k, with a note. */
  iovaFor(size, k) {
    const r = this.rng;
    const { msiStart, msiLast, apertureLast } = this.p;
    const maps = this.mapsOf(k);
    const m = maps.length ? r.pick(maps) : null;
    const how = r.weighted({ low: 35, rel: m ? 35 : 0, msi: 10, aperture: 8, edge: 5 });
    switch (how) {
      case "low":
        return [BigInt(1 + r.int(40)) * HUGE + r.pick([0n, 0n, PAGE, HUGE / 2n, HUGE - PAGE]), "low"];
      case "rel": {
        const [iova, note] = r.pick([
          [m.iova + m.size, "adjacent after"],
          [m.iova - size, "adjacent before"],
          [m.iova + PAGE, "overlaps, starts inside"],
          [m.iova - PAGE, "overlaps the start"],
          [m.iova, "same start"],
          [m.iova + m.size - PAGE, "overlaps the last page"],
          [m.iova + m.size + PAGE, "one page gap after"],
        ]);
        return [iova & U64_MAX, `${note} ${hex(m.iova)}+${hex(m.size)}`];
      }
      case "msi":
        return r.pick([
          [msiStart - size, "ends at the MSI window"],
          [msiStart - PAGE, "last page below the MSI window"],
          [msiStart, "MSI window start"],
          [msiStart + 0x4_0000n, "inside the MSI window"],
          [msiLast + 1n, "right after the MSI window"],
          [msiLast + 1n - PAGE, "last page of the MSI window"],
        ]);
      case "aperture":
        return r.pick([
          [apertureLast + 1n - size, "ends at the aperture end"],
          [apertureLast + 1n - PAGE, "last aperture page"],
          [apertureLast + 1n, "past the aperture"],
        ]);
      default:
        return r.pick([
          [U64_MAX - PAGE + 1n, "u64 last page"],
          [1n << 63n, "2^63"],
          [0x10_0800n, "unaligned"],
          [(U64_MAX - size + 1n) & U64_MAX, "ends at 2^64"],
        ]);
    }
  }

  // ---------------------------------------------------------------- commands

  iommufdOpen() {
    this.emit("iommufd open");
    this.fdOpen = true;
  }

  alloc() {
    const r = this.rng;
    const how = r.weighted({ plain: 12, bigZero: 2, bigTail: 1, small: 1, huge: 1 });
    if (how === "plain" || how === "bigZero") {
      this.emit(
        how === "plain" ? "ioas alloc" : "ioas alloc size=0x20",
        how === "plain" ? undefined : "larger struct, zero tail",
      );
      if (this.fdOpen) this.newIoas();
      return;
    }
    if (how === "bigTail")
      this.emit(`ioas alloc size=0x20 tail=${hex(BigInt(1 + r.int(255)))}`, "larger struct, non-zero tail");
    else if (how === "small") this.emit(`ioas alloc size=${r.pick([0, 4, 8, 11])}`, "smaller than the struct");
    else this.emit(`ioas alloc size=${r.pick(["0x1001", "0x2000"])}`, "bigger than a page");
  }

  newIoas() {
    if (this.ioas.length >= 15) return;
    this.objs.push({ maps: [], alive: true });
    this.ioas.push({ obj: this.objs.length - 1 });
  }

  map() {
    const r = this.rng;
    const [arg, k] = this.ioasArg();
    const doomed = r.chance(0.1);
    let size = doomed ? r.pick([0n, 0x800n, PAGE + 1n, U64_MAX]) : this.size();
    let [iova, note] = this.iovaFor(size, k);
    const prot = r.weighted({ rw: 55, r: 15, w: 15, "-": 5 });
    const auto = !doomed && r.chance(0.15);
    let vaddr = "";
    let off = 0n;
    const vhow = r.weighted({ fresh: 60, none: 10, alias: 10, end: 4, unmapped: 4, unaligned: 4 });
    if (vhow === "fresh") off = this.freshOff(size > MAP_SAFE_MAX ? PAGE : size);
    else if (vhow === "alias") off = this.mapsOf(k).find((m) => m.off !== null)?.off ?? 0n;
    else if (vhow === "end") off = BASE_LEN - PAGE;
    else if (vhow === "unaligned") off = 0x800n;
    if (vhow === "unmapped") [vaddr, off] = [" vaddr=abs:0x200000000000", null];
    else if (vhow !== "none") vaddr = ` vaddr=+${hex(off)}`;
    if (!doomed) {
      size = this.charge(size);
      if (k !== null && !auto) {
        this.mapsOf(k).push({ iova: iova & U64_MAX, size, off });
        if (this.mapsOf(k).length > 16) this.mapsOf(k).shift();
      }
    }
    let extra = "";
    if (r.chance(0.06)) {
      const [o, n] = r.pick([
        [" size=0x20", "struct too small"],
        [" size=0x30", "larger struct, zero tail"],
        [" size=0x30 tail=0x1", "larger struct, non-zero tail"],
        [" size=0x28 tail=0xff", "exact size, tail beyond it"],
      ]);
      [extra, note] = [o, `${note}; ${n}`];
    }
    this.emit(
      `ioas map ${hex(iova & U64_MAX)} ${hex(size)} ${prot}${vaddr}${auto ? " auto" : ""}${arg}${extra}`,
      auto ? `${note}, kernel-chosen IOVA` : note,
    );
  }

  unmap() {
    const r = this.rng;
    const [arg, k] = this.ioasArg();
    const maps = this.mapsOf(k);
    const m = maps.length ? r.pick(maps) : null;
    const sorted = [...maps].sort((a, b) => (a.iova < b.iova ? -1 : 1));
    const how = r.weighted({
      exact: m ? 30 : 0,
      bisect: m && m.size > PAGE ? 12 : 0,
      span: sorted.length > 1 ? 10 : 0,
      superset: m ? 8 : 0,
      head: m ? 6 : 0,
      everything: 10,
      edge: 8,
      nothing: 5,
    });
    let iova;
    let size;
    let note;
    switch (how) {
      case "exact":
        [iova, size, note] = [m.iova, m.size, "exactly one mapping"];
        break;
      case "bisect":
        [iova, size, note] = [m.iova + PAGE, PAGE, `bisects ${hex(m.iova)}+${hex(m.size)}`];
        break;
      case "span": {
        const a = sorted[0];
        const b = sorted[1 + r.int(sorted.length - 1)];
        [iova, size, note] = [a.iova, (b.iova + b.size - a.iova) & U64_MAX, "from one mapping to the end of another"];
        break;
      }
      case "superset":
        [iova, size, note] = [m.iova - PAGE, m.size + 2n * PAGE, `a page either side of ${hex(m.iova)}+${hex(m.size)}`];
        break;
      case "head":
        [iova, size, note] = [m.iova, PAGE, `first page of ${hex(m.iova)}+${hex(m.size)}`];
        break;
      case "everything":
        [iova, size, note] = [0n, U64_MAX, "everything"];
        break;
      case "edge":
        [iova, size, note] = r.pick([
          [U64_MAX - PAGE + 1n, 2n * PAGE, "wraps past 2^64"],
          [U64_MAX - PAGE + 1n, PAGE, "ends at 2^64"],
          [0n, U64_MAX - PAGE + 1n, "everything but the last page"],
          [0x10_0800n, PAGE, "unaligned iova"],
          [0x10_0000n, 0n, "length 0"],
          [0n, 1n << 63n, "the lower half of u64"],
        ]);
        break;
      default:
        [iova, size, note] = [0x4000_0000n + BigInt(r.int(64)) * PAGE, PAGE, "nothing mapped there"];
    }
    iova &= U64_MAX;
    size &= U64_MAX;
    if (k !== null) {
      const o = this.objs[this.ioas[k].obj];
      o.maps =
        size === U64_MAX && iova === 0n ? [] : o.maps.filter((x) => x.iova + x.size <= iova || x.iova >= iova + size);
    }
    this.emit(`ioas unmap ${hex(iova)} ${hex(size)}${arg}`, note);
  }

  copy() {
    const r = this.rng;
    if (this.ioas.length === 0) return this.emit("ioas copy 0x100000 0x1000 0x200000 rw src=0", "no IOAS yet");
    const src = r.int(this.ioas.length);
    const dst = r.chance(0.25) ? src : r.int(this.ioas.length);
    const maps = this.mapsOf(src);
    const m = maps.length ? r.pick(maps) : null;
    let [iova, size, note] = m
      ? r.pick([
          [m.iova, m.size, "a whole mapping"],
          [m.iova, m.size, "a whole mapping"],
          [m.iova + PAGE, PAGE, "part of a mapping"],
          [m.iova, m.size + PAGE, "past the mapping's end"],
          [m.iova - PAGE, m.size, "starts before the mapping"],
        ])
      : [0x10_0000n, PAGE, "nothing mapped in the source"];
    iova &= U64_MAX;
    const auto = r.chance(0.25);
    let [dIova, dNote] = auto ? [0n, "kernel-chosen destination"] : this.iovaFor(size, dst);
    dIova &= U64_MAX;
    size = size > MAP_SAFE_MAX ? PAGE : size;
    if (m) size = this.charge(size);
    const prot = r.weighted({ rw: 6, r: 2, w: 2, "-": 1 });
    if (!auto && m) this.mapsOf(dst).push({ iova: dIova, size, off: null });
    this.emit(
      `ioas copy ${hex(iova)} ${hex(size)} ${hex(dIova)} ${prot}${auto ? " auto" : ""} src=${src} ioas=${dst}`,
      `${note} -> ${dNote}${src === dst ? " (same IOAS)" : ""}`,
    );
  }

  ranges() {
    const r = this.rng;
    const n = r.pick(["", "", "", " 0", " 1", " 2", " 3", " 64"]);
    const [arg] = this.ioasArg();
    const extra = r.chance(0.1) ? r.pick([" size=0x10", " size=0x28", " size=0x28 tail=0x7"]) : "";
    this.emit(`ioas ranges${n}${arg}${extra}`);
  }

  allow() {
    const r = this.rng;
    const { msiStart, msiLast, apertureLast } = this.p;
    const ranges = r.pick([
      [[], "none (clears the list)"],
      [[[0x10_0000n, 0xfff_ffffn]], "low, below edu's reach"],
      [[[msiStart, msiLast]], "exactly the MSI window"],
      [[[msiStart - HUGE, msiStart + PAGE - 1n]], "overlaps the MSI window start"],
      [[[0n, U64_MAX]], "all of u64"],
      [
        [
          [0x10_0000n, 0x1f_ffffn],
          [0x40_0000n, 0x7f_ffffn],
        ],
        "two low ranges",
      ],
      [
        [
          [0x10_0000n, 0x1f_ffffn],
          [0x18_0000n, 0x2f_ffffn],
        ],
        "two overlapping ranges",
      ],
      [[[0x20_0000n, 0x10_0000n]], "start after last"],
      [[[0x10_0800n, 0x1f_ffffn]], "unaligned start"],
      [[[0x10_0000n, 0x1f_f7ffn]], "unaligned last"],
      [[[apertureLast - HUGE + 1n, apertureLast + HUGE]], "across the aperture end"],
    ]);
    const [arg] = this.ioasArg();
    const words = ranges[0].map(([s, l]) => ` ${hex(s)}-${hex(l)}`).join("");
    this.emit(`ioas allow${words}${arg}`, ranges[1]);
  }

  destroyIoas() {
    const [arg, k] = this.ioasArg();
    if (k !== null) this.objs[this.ioas[k].obj].maps = [];
    this.emit(`ioas destroy${arg}`, "busy if a device or HWPT uses it");
  }

  destroyRaw() {
    const r = this.rng;
    if (this.hwpts.length && r.chance(0.5)) return this.emit(`destroy hwpt=${r.int(this.hwpts.length)}`, "a HWPT");
    this.emit(`destroy ${r.pick([0, 1, 2, 3, 4, 5, 6, 0xffff_ffff])}`, "a raw object id");
  }

  option() {
    const r = this.rng;
    const which = r.chance(0.5) ? "rlimit" : "huge";
    const op = r.chance(0.5) ? "get" : "set";
    const val = op === "set" ? ` ${r.pick([0, 1, 1, 2])}` : "";
    let obj = "";
    if (which === "huge") obj = this.ioasArg()[0];
    else if (r.chance(0.15)) obj = " id=1";
    const extra = r.chance(0.08) ? r.pick([" size=0x10", " size=0x20", " size=0x20 tail=0x3"]) : "";
    this.emit(`option ${which} ${op}${val}${obj}${extra}`);
  }

  vfioIoas() {
    const r = this.rng;
    const op = r.weighted({ get: 3, set: 3, clear: 1 });
    if (op === "set") {
      const [arg, k] = this.ioasArg();
      this.emit(`vfio-ioas set${arg}`);
      if (k !== null) this.compat = this.ioas[k].obj;
    } else if (op === "get") {
      this.emit("vfio-ioas get");
      if (this.compat !== null && this.ioas.length < 15) this.ioas.push({ obj: this.compat });
    } else {
      this.emit("vfio-ioas clear");
      this.compat = null;
    }
  }

  hwInfo() {
    const len = this.rng.pick(["", "", " 0", " 4", " 8", " 16", " 24", " 0x100"]);
    this.emit(`hw-info${len}${this.dev()}`);
  }

  hwpt() {
    const r = this.rng;
    const flags = r.pick(["", "", "", " 0", " 1", " 2", " 3", " 4", " 0x80000000"]);
    const [arg, k] = this.ioasArg();
    const extra = r.chance(0.08) ? r.pick([" size=0x10", " size=0x30", " size=0x30 tail=0x9"]) : "";
    this.emit(`hwpt alloc${this.dev()}${arg}${flags}${extra}`, flags.trim() ? "flags" : undefined);
    if (!flags.trim() || flags === " 0") if (k !== null && this.hwpts.length < 15) this.hwpts.push({ ioas: k });
  }

  cdev(kOpt) {
    const r = this.rng;
    const k = kOpt ?? this.devIndex();
    const op = r.weighted({ open: 3, bind: 3, attach: 5, detach: 2, close: 2 });
    let arg = "";
    let note;
    if (op === "attach") {
      if (this.hwpts.length && r.chance(0.25)) arg = ` hwpt=${r.int(this.hwpts.length)}`;
      else if (r.chance(0.08)) [arg, note] = [` id=${r.pick([0, 1, 2, 99, 0xffff_ffff])}`, "raw object id"];
      else arg = this.ioasArg()[0];
    }
    if (op === "bind" && r.chance(0.1)) [arg, note] = [" bad", "iommufd fd -1"];
    const extra =
      (op === "bind" || op === "attach") && r.chance(0.06)
        ? r.pick([" size=0x8", " size=0x20", " size=0x20 tail=0x5"])
        : "";
    this.emit(`cdev ${op}${this.devArg(k)}${arg}${extra}`, note);
  }

  devinfo() {
    this.emit(`devinfo${this.dev()}`);
  }

  group() {
    const k = this.devIndex();
    this.emit(`group ${k} ${this.rng.weighted({ open: 3, "set-iommufd": 3, status: 2, unset: 1, close: 1 })}`);
  }

  /** DMA through a mapping of an IOAS some device may be attached to (edu's limits kept). */
  dma() {
    const r = this.rng;
    const len = r.pick([1n, 8n, 0x40n, 0x100n, 0x800n, 0xfffn]);
    const all = this.objs.flatMap((o) => o.maps).filter((m) => m.iova + m.size <= EDU_DMA_REACH);
    const m = all.length && r.chance(0.8) ? r.pick(all) : null;
    let iova;
    let note;
    if (m)
      [iova, note] = [
        m.iova + (m.size > len ? BigInt(r.int(Number((m.size - len) / 8n))) * 8n : 0n),
        "inside a mapping",
      ];
    else [iova, note] = [0x100_0000n + BigInt(r.int(0x800)) * PAGE, "probably unmapped"];
    if (m && r.chance(0.1)) [iova, note] = [m.iova + m.size - len / 2n - 1n, "crosses the end of a mapping"];
    if (this.p.doorbellIova && r.chance(0.05)) [iova, note] = [this.p.doorbellIova, "the ITS doorbell IOVA"];
    if (iova + len > EDU_DMA_REACH) [iova, note] = [0x10_0000n, `${note}, moved under edu's 28-bit reach`];
    const dir = r.chance(0.5) ? "to-dev" : "from-dev";
    let args = "";
    if (m && m.off !== null && iova >= m.iova && m.off + (iova - m.iova) + len <= BASE_LEN && r.chance(0.75)) {
      args = ` vaddr=+${hex(m.off + (iova - m.iova))}`;
      note += " (its host memory)";
    }
    if (dir === "to-dev" && r.chance(0.15)) args += ` fill=${hex(BigInt(r.int(256)))}`;
    this.emit(`dma ${hex(iova)} ${hex(len)} ${dir}${args}${this.dev()}`, note);
  }

  irq() {
    const op = this.rng.weighted({ on: 4, off: 2, raise: 4 });
    this.emit(op === "raise" ? `irq raise${this.dev()}` : `irq msi ${op}${this.dev()}`);
  }

  // ---------------------------------------------------------------- episodes

  /** Bring device k to bound-and-attached on IOAS index `ioasK` (lines only; the kernel decides). */
  attachLines(k, ioasK, tag) {
    this.emit(`cdev open${this.devArg(k)}`, tag);
    this.emit(`cdev bind${this.devArg(k)}`, tag);
    this.emit(`cdev attach${this.devArg(k)} ioas=${ioasK}`, tag);
  }

  ensureIoas() {
    if (!this.ioas.length) {
      this.emit("ioas alloc");
      this.newIoas();
    }
    return this.rng.int(this.ioas.length);
  }

  /** A pinning map line in IOAS k at a fixed IOVA with its own host memory; returns the mapping. */
  mapLine(k, iova, size, prot, note) {
    const s = this.charge(size);
    const off = this.freshOff(s);
    const m = { iova, size: s, off };
    this.mapsOf(k).push(m);
    this.emit(`ioas map ${hex(iova)} ${hex(s)} ${prot} vaddr=+${hex(off)} ioas=${k}`, note);
    return m;
  }

  episode() {
    const r = this.rng;
    const kind = r.weighted({
      dma: 5,
      resv: 3,
      allow: 3,
      busy: 3,
      copy: 3,
      order: this.ndev > 1 ? 3 : 1,
      group: 2,
      hwpt: 3,
      ranges: 2,
      argsz: 2,
      // v2: interactions the first seeds showed the model already agreed on less often
      share: this.v >= 2 && this.ndev > 1 ? 4 : 0,
      pin: this.v >= 2 ? (this.memlock !== null ? 5 : 2) : 0,
      huge: this.v >= 2 ? 3 : 0,
      closefd: this.v >= 2 ? 2 : 0,
      allowfix: this.v >= 2 ? 3 : 0,
      reattach: this.v >= 2 ? 4 : 0,
      msi: this.v >= 2 ? 3 : 0,
      autofill: this.v >= 2 ? 2 : 0,
    });
    const tag = `episode ${kind}`;
    const dev = this.devIndex();
    const { msiStart } = this.p;
    switch (kind) {
      case "dma": {
        const k = this.ensureIoas();
        if (r.chance(0.5)) this.attachLines(dev, k, tag);
        const m = this.mapLine(
          k,
          this.lowIova(),
          r.pick([PAGE, 4n * PAGE, 0x10000n, HUGE]),
          r.pick(["rw", "rw", "r", "w"]),
          tag,
        );
        this.emit(`dma ${hex(m.iova)} 0x40 to-dev vaddr=+${hex(m.off)}${this.devArg(dev)}`, `${tag}: device reads`);
        this.emit(`dma ${hex(m.iova)} 0x40 from-dev vaddr=+${hex(m.off)}${this.devArg(dev)}`, `${tag}: device writes`);
        if (m.size > PAGE) {
          this.emit(`ioas unmap ${hex(m.iova + PAGE)} ${hex(PAGE)} ioas=${k}`, `${tag}: one page inside the mapping`);
          this.emit(
            `dma ${hex(m.iova + PAGE)} 0x20 from-dev vaddr=+${hex(m.off + PAGE)}${this.devArg(dev)}`,
            `${tag}: through that page`,
          );
        }
        this.emit(`ioas unmap ${hex(m.iova)} ${hex(m.size)} ioas=${k}`, `${tag}: the whole mapping`);
        this.mapsOf(k).splice(this.mapsOf(k).indexOf(m), 1);
        this.emit(`dma ${hex(m.iova)} 0x20 to-dev vaddr=+${hex(m.off)}${this.devArg(dev)}`, `${tag}: after unmap`);
        return;
      }
      case "resv": {
        // a mapping in the reserved window before the attach, then the attach, then the window freed
        this.emit("ioas alloc", tag);
        this.newIoas();
        const k = this.ioas.length - 1;
        const at = r.pick([msiStart, msiStart + 0x8_0000n, msiStart - PAGE]);
        const s = this.charge(r.pick([PAGE, 2n * PAGE]));
        this.emit(
          `ioas map ${hex(at)} ${hex(s)} rw vaddr=+${hex(this.freshOff(s))} ioas=${k}`,
          `${tag}: in or at the MSI window`,
        );
        this.emit(`cdev open${this.devArg(dev)}`, tag);
        this.emit(`cdev bind${this.devArg(dev)}`, tag);
        this.emit(`cdev attach${this.devArg(dev)} ioas=${k}`, `${tag}: reserved region vs. an existing mapping`);
        this.emit(`ioas unmap ${hex(at)} ${hex(s)} ioas=${k}`, tag);
        this.emit(`cdev attach${this.devArg(dev)} ioas=${k}`, `${tag}: again, window free`);
        this.emit(`ioas ranges ioas=${k}`, tag);
        this.emit(`ioas map ${hex(msiStart)} 0x1000 rw ioas=${k}`, `${tag}: map into the reserved window now`);
        return;
      }
      case "allow": {
        this.emit("ioas alloc", tag);
        this.newIoas();
        const k = this.ioas.length - 1;
        const over = r.chance(0.5);
        const words = over ? ` ${hex(msiStart - HUGE)}-${hex(msiStart + HUGE - 1n)}` : ` 0x100000-0xfffffff`;
        this.emit(`ioas allow${words} ioas=${k}`, `${tag}: ${over ? "covers the MSI window" : "low range"}`);
        this.emit(`ioas ranges ioas=${k}`, tag);
        if (r.chance(0.5)) this.attachLines(dev, k, `${tag}: attach with allowed IOVAs`);
        else this.emit(`cdev attach${this.devArg(dev)} ioas=${k}`, `${tag}: attach with allowed IOVAs`);
        const s = this.charge(PAGE);
        this.emit(
          `ioas map 0 ${hex(s)} rw vaddr=+${hex(this.freshOff(s))} auto ioas=${k}`,
          `${tag}: kernel-chosen inside the allowed list`,
        );
        this.emit(`ioas allow ioas=${k}`, `${tag}: clear the list`);
        this.emit(`ioas ranges ioas=${k}`, tag);
        return;
      }
      case "busy": {
        const k = this.ensureIoas();
        this.attachLines(dev, k, tag);
        this.emit(`ioas destroy ioas=${k}`, `${tag}: IOAS in use`);
        this.emit(`cdev detach${this.devArg(dev)}`, tag);
        if (r.chance(0.5)) this.emit(`ioas destroy ioas=${k}`, `${tag}: now free`);
        else this.emit(`cdev close${this.devArg(dev)}`, `${tag}: close without detach`);
        return;
      }
      case "copy": {
        const a = this.ensureIoas();
        this.emit("ioas alloc", tag);
        this.newIoas();
        const b = this.ioas.length - 1;
        const m = this.mapLine(a, this.lowIova(), r.pick([2n * PAGE, 4n * PAGE, 0x10000n]), "rw", tag);
        const dst = this.lowIova() + 0x400_0000n;
        const s = this.charge(m.size);
        this.emit(`ioas copy ${hex(m.iova)} ${hex(s)} ${hex(dst)} rw src=${a} ioas=${b}`, `${tag}: into another IOAS`);
        this.mapsOf(b).push({ iova: dst, size: s, off: m.off });
        this.emit(`ioas unmap ${hex(m.iova)} ${hex(m.size)} ioas=${a}`, `${tag}: source unmapped`);
        this.mapsOf(a).splice(this.mapsOf(a).indexOf(m), 1);
        if (r.chance(0.6)) {
          this.attachLines(dev, b, tag);
          this.emit(`dma ${hex(dst)} 0x80 to-dev vaddr=+${hex(m.off)}${this.devArg(dev)}`, `${tag}: through the copy`);
        }
        this.emit(`ioas copy ${hex(m.iova)} ${hex(PAGE)} ${hex(dst)} rw src=${a} ioas=${b}`, `${tag}: source gone`);
        return;
      }
      case "order": {
        for (let i = 0, n = 4 + r.int(5); i < n; i++) this.cdev();
        return;
      }
      case "group": {
        this.emit(`group ${dev} open`, tag);
        this.emit(`group ${dev} status`, tag);
        if (r.chance(0.5)) {
          const k = this.ensureIoas();
          this.emit(`vfio-ioas set ioas=${k}`, tag);
          this.compat = this.ioas[k].obj;
        }
        this.emit(`group ${dev} set-iommufd`, tag);
        this.emit(`device ${dev} open`, `${tag}: binds and attaches to the compat IOAS`);
        this.emit("vfio-ioas get", tag);
        if (this.compat !== null && this.ioas.length < 15) this.ioas.push({ obj: this.compat });
        if (r.chance(0.5)) this.emit(`cdev open${this.devArg(dev)}`, `${tag}: cdev while the group holds the device`);
        if (r.chance(0.5)) this.emit(`cdev bind${this.devArg(dev)}`, tag);
        this.emit(`device ${dev} close`, tag);
        this.emit(`group ${dev} ${r.pick(["unset", "close"])}`, tag);
        return;
      }
      case "hwpt": {
        const k = this.ensureIoas();
        this.emit(`cdev open${this.devArg(dev)}`, tag);
        this.emit(`cdev bind${this.devArg(dev)}`, tag);
        this.emit(`hwpt alloc${this.devArg(dev)} ioas=${k}`, tag);
        const h = this.hwpts.length;
        if (h < 15) this.hwpts.push({ ioas: k });
        this.emit(`cdev attach${this.devArg(dev)} hwpt=${h}`, `${tag}: attach the HWPT`);
        const m = this.mapLine(k, this.lowIova(), r.pick([PAGE, 2n * PAGE]), "rw", `${tag}: map after the HWPT exists`);
        this.emit(`dma ${hex(m.iova)} 0x10 from-dev vaddr=+${hex(m.off)}${this.devArg(dev)}`, tag);
        this.emit(`destroy hwpt=${h}`, `${tag}: attached HWPT`);
        this.emit(`ioas destroy ioas=${k}`, `${tag}: IOAS under a HWPT`);
        this.emit(`cdev ${r.pick(["detach", "close"])}${this.devArg(dev)}`, tag);
        this.emit(`destroy hwpt=${h}`, `${tag}: now free`);
        return;
      }
      case "ranges": {
        const k = this.ensureIoas();
        this.emit(`ioas ranges ${r.pick([0, 1, 2])} ioas=${k}`, `${tag}: small array`);
        this.attachLines(dev, k, tag);
        for (const n of [0, 1, 2, 3])
          if (r.chance(0.6)) this.emit(`ioas ranges ${n} ioas=${k}`, `${tag}: ${n} entries`);
        this.emit(`ioas ranges ioas=${k}`, tag);
        return;
      }
      case "share": {
        // two devices on one IOAS share its auto HWPT; one leaves, the other keeps DMA
        const k = this.ensureIoas();
        const other = (dev + 1 + r.int(this.ndev - 1)) % this.ndev;
        this.attachLines(dev, k, tag);
        this.attachLines(other, k, `${tag}: second device, same IOAS`);
        const m = this.mapLine(k, this.lowIova(), r.pick([PAGE, 4n * PAGE]), "rw", tag);
        this.emit(`dma ${hex(m.iova)} 0x40 to-dev vaddr=+${hex(m.off)}${this.devArg(dev)}`, tag);
        this.emit(`dma ${hex(m.iova)} 0x40 from-dev vaddr=+${hex(m.off)}${this.devArg(other)}`, tag);
        this.emit(`cdev ${r.pick(["detach", "close"])}${this.devArg(dev)}`, `${tag}: one leaves`);
        this.emit(`ioas ranges ioas=${k}`, tag);
        this.emit(
          `dma ${hex(m.iova)} 0x20 from-dev vaddr=+${hex(m.off)}${this.devArg(other)}`,
          `${tag}: the other still maps`,
        );
        this.emit(`ioas destroy ioas=${k}`, `${tag}: still in use`);
        return;
      }
      case "pin": {
        // pinning against RLIMIT_MEMLOCK (user or mm accounting), VmPin before and after
        this.emit("locked", tag);
        this.emit(`option rlimit ${r.chance(0.5) ? "get" : `set ${r.pick([0, 1])}`}`, tag);
        const k = this.ensureIoas();
        if (r.chance(0.6)) this.attachLines(dev, k, `${tag}: a domain pins at map time`);
        const m = this.mapLine(k, this.lowIova(), r.pick([0x10000n, 0x20000n, HUGE]), "rw", `${tag}: over the limit?`);
        this.emit("locked", tag);
        const s = this.charge(r.pick([PAGE, 2n * PAGE]));
        this.emit(
          `ioas map ${hex(m.iova + 2n * HUGE)} ${hex(s)} r vaddr=+${hex(m.off)} ioas=${k}`,
          `${tag}: the same pages again`,
        );
        this.emit(`cdev attach${this.devArg(dev)} ioas=${k}`, `${tag}: attach pins what is mapped`);
        this.emit("locked", tag);
        this.emit(`ioas unmap 0 0xffffffffffffffff ioas=${k}`, tag);
        this.mapsOf(k).length = 0;
        this.emit("locked", `${tag}: all unpinned?`);
        return;
      }
      case "huge": {
        // IOMMU_OPTION_HUGE_PAGES off: a 2 MiB mapping, then unmaps inside it
        this.emit("ioas alloc", tag);
        this.newIoas();
        const k = this.ioas.length - 1;
        this.emit(`option huge get ioas=${k}`, tag);
        this.emit(`option huge set ${r.pick([0, 0, 1])} ioas=${k}`, tag);
        this.emit(`option huge get ioas=${k}`, tag);
        const m = this.mapLine(k, (this.lowIova() / HUGE) * HUGE, HUGE, "rw", `${tag}: 2 MiB aligned`);
        if (r.chance(0.5)) this.attachLines(dev, k, tag);
        this.emit(`ioas unmap ${hex(m.iova + HUGE / 2n)} ${hex(PAGE)} ioas=${k}`, `${tag}: one page inside`);
        this.emit(`option huge set ${r.pick([0, 1])} ioas=${k}`, `${tag}: with a mapping there`);
        this.emit(`ioas unmap ${hex(m.iova)} ${hex(m.size)} ioas=${k}`, `${tag}: the whole mapping`);
        this.mapsOf(k).length = 0;
        return;
      }
      case "closefd": {
        // /dev/iommu closed while a device is bound: what still answers
        const k = this.ensureIoas();
        this.attachLines(dev, k, tag);
        this.emit("iommufd close", `${tag}: with a device bound`);
        this.emit(`cdev detach${this.devArg(dev)}`, tag);
        this.emit(`cdev attach${this.devArg(dev)} ioas=${k}`, tag);
        this.emit(`dma 0x100000 0x10 to-dev${this.devArg(dev)}`, tag);
        this.emit(`cdev close${this.devArg(dev)}`, tag);
        this.emit("iommufd open", tag);
        this.emit("ioas alloc", `${tag}: ids of a new context`);
        this.newIoas();
        for (const o of this.objs) o.maps = [];
        this.compat = null;
        return;
      }
      case "allowfix": {
        this.emit("ioas alloc", tag);
        this.newIoas();
        const k = this.ioas.length - 1;
        this.emit(`ioas allow 0x400000-0x7fffff 0x1000000-0x10fffff ioas=${k}`, `${tag}: two windows`);
        const s1 = this.charge(PAGE);
        this.emit(
          `ioas map 0x200000 ${hex(s1)} rw vaddr=+${hex(this.freshOff(s1))} ioas=${k}`,
          `${tag}: fixed, outside the list`,
        );
        for (const sz of [PAGE, 0x10000n, HUGE, 0x300000n]) {
          const s = this.charge(sz);
          this.emit(
            `ioas map 0 ${hex(s)} rw vaddr=+${hex(this.freshOff(s))} auto ioas=${k}`,
            `${tag}: kernel-chosen in the list`,
          );
        }
        this.emit(`ioas ranges ioas=${k}`, tag);
        this.emit(`ioas allow 0x400000-0x4fffff ioas=${k}`, `${tag}: shrink under existing mappings`);
        this.emit(`ioas unmap 0 0xffffffffffffffff ioas=${k}`, tag);
        return;
      }
      case "reattach": {
        // replace the attached IOAS: A (mapped) -> B (empty) -> A, DMA each time
        const a = this.ensureIoas();
        this.emit("ioas alloc", tag);
        this.newIoas();
        const b = this.ioas.length - 1;
        this.attachLines(dev, a, tag);
        const m = this.mapLine(a, this.lowIova(), r.pick([PAGE, 2n * PAGE]), "rw", tag);
        this.emit(`dma ${hex(m.iova)} 0x40 to-dev vaddr=+${hex(m.off)}${this.devArg(dev)}`, `${tag}: on A`);
        this.emit(`cdev attach${this.devArg(dev)} ioas=${b}`, `${tag}: replace with B`);
        this.emit(
          `dma ${hex(m.iova)} 0x40 from-dev vaddr=+${hex(m.off)}${this.devArg(dev)}`,
          `${tag}: on B (unmapped)`,
        );
        this.emit(`ioas ranges ioas=${a}`, tag);
        this.emit(`cdev attach${this.devArg(dev)} ioas=${a}`, `${tag}: back to A`);
        this.emit(`dma ${hex(m.iova)} 0x40 from-dev vaddr=+${hex(m.off)}${this.devArg(dev)}`, `${tag}: on A again`);
        this.emit(`ioas destroy ioas=${b}`, `${tag}: B is free`);
        return;
      }
      case "msi": {
        const k = this.ensureIoas();
        this.attachLines(dev, k, tag);
        this.emit(`irq msi on${this.devArg(dev)}`, tag);
        this.emit(`irq raise${this.devArg(dev)}`, tag);
        this.emit(`ioas map ${hex(msiStart)} 0x1000 rw ioas=${k}`, `${tag}: the MSI window`);
        this.emit(`cdev ${r.pick(["detach", "attach ioas=0", "close"])}${this.devArg(dev)}`, tag);
        this.emit(`irq raise${this.devArg(dev)}`, tag);
        this.emit(`irq msi off${this.devArg(dev)}`, tag);
        return;
      }
      case "autofill": {
        const k = this.ensureIoas();
        for (let i = 0, n = 3 + r.int(4); i < n; i++) {
          const s = this.charge(r.pick([PAGE, 2n * PAGE, 0x10000n, HUGE]));
          this.emit(
            `ioas map 0 ${hex(s)} ${r.pick(["rw", "r"])} vaddr=+${hex(this.freshOff(s))} auto ioas=${k}`,
            `${tag}: kernel-chosen`,
          );
        }
        if (r.chance(0.5)) this.attachLines(dev, k, `${tag}: attach over kernel-chosen IOVAs`);
        this.emit(`ioas ranges ioas=${k}`, tag);
        this.emit(`ioas unmap 0 0xffffffffffffffff ioas=${k}`, tag);
        this.emit("locked", tag);
        return;
      }
      default: {
        // struct-size rules on one ioctl: smaller, larger with zero tail, larger with a non-zero tail
        const [line, size] = r.pick([
          ["ioas alloc", 12],
          ["ioas ranges", 32],
          ["ioas unmap 0x100000 0x1000", 32],
          ["option rlimit get", 24],
          ["vfio-ioas get", 16],
          ["hw-info", 32],
        ]);
        this.emit(`${line} size=${size - 4}`, `${tag}: short`);
        this.emit(`${line} size=${size + 8}`, `${tag}: longer, zero tail`);
        this.emit(`${line} size=${size + 8} tail=0x${(1 + r.int(255)).toString(16)}`, `${tag}: longer, non-zero tail`);
        this.emit(`${line} size=0x1001`, `${tag}: over a page`);
        if (line === "ioas alloc") {
          this.newIoas();
        }
      }
    }
  }

  // ---------------------------------------------------------------- scenario

  header() {
    const r = this.rng;
    this.ndev = Number(r.weighted(this.v >= 2 ? { 1: 2, 2: 5, 3: 3 } : { 1: 4, 2: 4, 3: 2 }));
    this.emit(iommufdHeaderLine(this.seed, this.arch, this.v));
    this.emit(
      `# regenerate: node tools/scenario-gen/src/cli.mjs --mode iommufd --platform ${this.arch} --seed ${this.seed} --gen ${this.v}`,
    );
    this.emit(`platform ${this.p.name}`);
    if (this.ndev > 1) this.emit(`devices ${this.ndev}`);
    this.memlock = null;
    if (r.chance(this.v >= 2 ? 0.45 : 0.2)) {
      this.memlock = r.pick([0n, PAGE, 0x4000n, 0x10000n, HUGE, 2n * HUGE]);
      this.emit(`memlock ${hex(this.memlock)}`);
    }
    this.emit(`mode ${r.chance(0.9) ? "iommufd" : "none"}`);
    this.emit("modset iommufd");
    this.emit("---");
  }

  body() {
    const r = this.rng;
    this.iommufdOpen();
    const allocs = 1 + r.int(2);
    for (let i = 0; i < allocs; i++) this.alloc();
    if (r.chance(0.6)) this.attachLines(0, 0, "start");
    const count = 24 + r.int(20);
    const weights = {
      map: 20,
      unmap: 12,
      copy: 6,
      ranges: 5,
      allow: 4,
      alloc: 3,
      destroyIoas: 2,
      destroyRaw: 2,
      option: 3,
      vfioIoas: 2,
      hwInfo: 2,
      hwpt: 3,
      cdev: 10,
      devinfo: 2,
      group: 2,
      dma: 10,
      irq: 4,
      episode: this.v >= 2 ? 22 : 14,
      locked: 2,
      resv: 1,
      reopen: 1,
    };
    for (let i = 0; i < count; i++) {
      const c = r.weighted(weights);
      if (c === "locked") this.emit("locked");
      else if (c === "resv") this.emit(`resv${this.dev()}`);
      else if (c === "reopen") {
        // closing /dev/iommu drops every object on it; the probe's indexes stay and name stale ids
        this.emit("iommufd close", "every object goes");
        this.emit("iommufd open");
        for (const o of this.objs) o.maps = [];
        this.compat = null;
      } else this[c]();
    }
    if (r.chance(0.5)) this.emit("ioas unmap 0 0xffffffffffffffff", "everything");
    if (r.chance(0.6)) this.emit("locked");
    if (r.chance(0.3)) this.emit("iommufd close");
  }
}

/**
 * The iommufd scenario for `seed` (a u32) on `arch` by iommufd grammar `version`, as the text of a `.scn`
 * file (`mode iommufd`, `modset iommufd`). The same seed, arch and version always give the same text.
 */
export function generateIommufdScenario(seed, arch, version = IOMMUFD_GENERATOR_VERSION) {
  if (version !== 1 && version !== 2) throw new RangeError(`unknown iommufd generator version ${version} (1, 2)`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) throw new RangeError(`seed must be a u32: ${seed}`);
  if (!(arch in PLATFORMS)) throw new RangeError(`unknown platform ${arch} (x86, arm64)`);
  const g = new IommufdGen(seed, arch, version);
  g.header();
  g.body();
  return `${g.lines.join("\n")}\n`;
}
