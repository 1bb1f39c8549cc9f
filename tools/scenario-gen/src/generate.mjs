/**
 * Seeded random scenarios for the recorder (issue #13): every type1 probe command, biased toward
 * interactions (maps and unmaps that overlap, touch or bisect each other, sizes at page and huge-page
 * boundaries, IOVAs at the MSI window and the aperture end, u64 edges, dma_entry_limit and memlock
 * exhaustion, several devices and groups opened and closed in any order, MSI on/off, dirty tracking).
 *
 * The generator tracks what it *asked for*, not what the kernel answered (it cannot know): the state only
 * aims the next command at interesting addresses. Safety rules keep every scenario recordable:
 * - a map that could pass type1's early checks and pin pages is at most MAP_SAFE_MAX bytes, and the
 *   scenario's pin-able total stays under PIN_BUDGET (the arm64 VM has 1 GiB of RAM);
 * - DMA length at most 0xfff (edu aborts QEMU 7.2 on 4096), DMA only below edu's 28-bit reach;
 * - dirty bitmaps stay small (the probe's output line is 1 MiB).
 */
import { BASE_LEN, BITMAP_MAX_BYTES, bitmapBytes } from "./grammar.mjs";
import { HUGE, hex, PAGE, U64_MAX } from "./numbers.mjs";
import { EDU_DMA_REACH, PLATFORMS } from "./platforms.mjs";
import { PIN_BUDGET, ScenarioWriter } from "./writer.mjs";

export { PIN_BUDGET };

/** The current version; older ones stay selectable so every committed scenario can be regenerated. */
export const GENERATOR_VERSION = 3;
/** Largest map that may reach the pinning step. */
export const MAP_SAFE_MAX = 0x40_0000n;

class Gen extends ScenarioWriter {
  constructor(seed, arch, version) {
    super(seed, arch, version);
    /** Mappings asked for: { iova, size, off } (off = offset in the probe buffer, or null). */
    this.maps = [];
    /** Mappings whose vaddr was invalidated by `unmap … vaddr`. */
    this.invalid = [];
  }

  // ---------------------------------------------------------------- choices

  size() {
    const r = this.rng;
    return r.pick([
      PAGE,
      PAGE,
      PAGE,
      PAGE,
      2n * PAGE,
      2n * PAGE,
      3n * PAGE,
      5n * PAGE,
      0x10000n,
      0x10000n,
      HUGE - PAGE,
      HUGE,
      HUGE,
      HUGE + PAGE,
      2n * HUGE - PAGE,
      2n * HUGE,
    ]);
  }

  /** Sizes that fail type1's early checks on their own (never pinned). */
  doomedSize() {
    return this.rng.pick([0n, 0x800n, PAGE + 1n, U64_MAX, U64_MAX - PAGE + 1n, 1n << 63n]);
  }

  someMap() {
    return this.maps.length ? this.rng.pick(this.maps) : null;
  }

  /** An IOVA for a map of `size`, with a note saying what it aims at. */
  iovaFor(size) {
    const r = this.rng;
    const { msiStart, msiLast, apertureLast } = this.p;
    const m = this.someMap();
    const how = r.weighted({ low: 30, rel: m ? 35 : 0, msi: 12, aperture: 10, edge: 6, low2m: 7 });
    switch (how) {
      case "low":
        return [
          r.pick([0n, PAGE, 0x10_0000n, 0x1f_f000n, HUGE, 0x20_1000n, 0x3f_f000n]) +
            BigInt(r.int(this.v >= 2 ? 16 : 64)) * HUGE,
          "low",
        ];
      case "low2m":
        return [BigInt(r.int(128)) * HUGE + r.pick([0n, 0n, PAGE, HUGE - PAGE]), "near a 2 MiB boundary"];
      case "rel": {
        const [iova, note] = r.pick([
          [m.iova + m.size, "adjacent after"],
          [m.iova - size, "adjacent before"],
          [m.iova + PAGE, "overlaps, starts inside"],
          [m.iova - PAGE, "overlaps the start"],
          [m.iova, "same start"],
          [m.iova + m.size - PAGE, "overlaps the last page"],
          [m.iova + (m.size / 2n / PAGE) * PAGE, "starts in the middle"],
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
          [msiStart - HUGE, "2 MiB below the MSI window"],
        ]);
      case "aperture":
        return r.pick([
          [apertureLast + 1n - size, "ends at the aperture end"],
          [apertureLast + 1n - PAGE, "last aperture page"],
          [apertureLast + 1n, "past the aperture"],
          [apertureLast + 1n - HUGE, "last 2 MiB of the aperture"],
          [(apertureLast + 1n) / 2n, "middle of the aperture"],
        ]);
      default:
        return r.pick([
          [U64_MAX - PAGE + 1n, "u64 last page"],
          [U64_MAX, "u64 max"],
          [1n << 63n, "2^63"],
          [0x10_0800n, "unaligned"],
          [(U64_MAX - size + 1n) & U64_MAX, "ends at 2^64"],
        ]);
    }
  }

  /** `vaddr=` argument and buffer offset (null when outside the buffer) for a map of `size`. */
  vaddrFor(size) {
    const r = this.rng;
    const how = r.weighted({ none: 15, fresh: 50, alias: 10, end: 5, unmapped: 5, zero: 3, unaligned: 3, low: 9 });
    switch (how) {
      case "none":
        return ["", 0n];
      case "fresh": {
        const off = this.nextOff;
        this.nextOff += ((size + HUGE - 1n) / HUGE) * HUGE + PAGE * BigInt(r.int(4));
        if (this.nextOff + MAP_SAFE_MAX > BASE_LEN) this.nextOff = 0n;
        return [` vaddr=+${hex(off)}`, off];
      }
      case "alias": {
        const m = this.maps.find((x) => x.off !== null);
        return m ? [` vaddr=+${hex(m.off)}`, m.off] : ["", 0n];
      }
      case "end":
        return [` vaddr=+${hex(BASE_LEN - PAGE)}`, BASE_LEN - PAGE];
      case "unmapped":
        return [" vaddr=abs:0x200000000000", null];
      case "zero":
        return [" vaddr=abs:0x0", null];
      case "unaligned":
        return [" vaddr=+0x800", 0x800n];
      default:
        return [` vaddr=+${hex(BigInt(r.int(16)) * PAGE)}`, BigInt(r.int(16)) * PAGE];
    }
  }

  /** True when type1's checks before pinning refuse the map whatever the state (so size is harmless). */
  doomed(iova, size, prot, va) {
    const { msiStart, msiLast, apertureLast } = this.p;
    if (size === 0n || prot === "-" || (iova | size | va) % PAGE !== 0n) return true;
    const last = iova + size - 1n;
    if (last > U64_MAX || va + size - 1n > U64_MAX) return true;
    if (last > apertureLast) return true;
    return iova <= msiLast && last >= msiStart;
  }

  dev(prefix = " ") {
    return this.ndev > 1 && this.rng.chance(0.85) ? `${prefix}dev=${this.rng.int(this.ndev)}` : "";
  }

  // ---------------------------------------------------------------- commands

  map() {
    const r = this.rng;
    let size = r.chance(0.1) ? this.doomedSize() : this.size();
    let [iova, note] = this.iovaFor(size);
    iova &= U64_MAX;
    const prot = r.weighted({ rw: 50, r: 20, w: 20, "-": 6 });
    let [vaddrArg, off] = this.vaddrFor(size);
    const va = off === null ? (vaddrArg.includes("abs:0x0") ? 0n : 0x2000_0000_0000n) : 0x1000_0000_0000n + off;
    if (!this.doomed(iova, size, prot, va)) {
      if (size > MAP_SAFE_MAX) size = PAGE;
      if (off !== null && off + size > BASE_LEN) [vaddrArg, off] = [` vaddr=+${hex(BASE_LEN - PAGE)}`, BASE_LEN - PAGE];
      if (size > this.budget) size = PAGE;
      this.budget -= size;
      this.maps.push({ iova, size, off });
      if (this.maps.length > 24) this.maps.shift();
    }
    this.emit(`map ${hex(iova)} ${hex(size)} ${prot}${vaddrArg}`, note);
  }

  unmapRange() {
    const r = this.rng;
    const m = this.someMap();
    const sorted = [...this.maps].sort((a, b) => (a.iova < b.iova ? -1 : 1));
    const how = r.weighted({
      exact: m ? 35 : 0,
      bisect: m ? 10 : 0,
      span: sorted.length > 1 ? 10 : 0,
      superset: m ? 8 : 0,
      head: m ? 5 : 0,
      all: 10,
      wide: 6,
      edge: 6,
      low: 5,
      msi: 4,
    });
    switch (how) {
      case "exact":
        return [m.iova, m.size, "exactly one mapping"];
      case "bisect":
        return [m.iova + PAGE, PAGE, `bisects ${hex(m.iova)}+${hex(m.size)}`];
      case "span": {
        const a = sorted[0];
        const b = sorted[1 + r.int(sorted.length - 1)];
        return [a.iova, (b.iova + b.size - a.iova) & U64_MAX, "from one mapping to the end of another"];
      }
      case "superset":
        return [m.iova - PAGE, m.size + 2n * PAGE, `a page either side of ${hex(m.iova)}+${hex(m.size)}`];
      case "head":
        return [m.iova, PAGE, `first page of ${hex(m.iova)}+${hex(m.size)}`];
      case "all":
        return [0n, 0n, "all"];
      case "wide":
        return r.pick([
          [0n, U64_MAX - PAGE + 1n, "everything but the last page"],
          [0n, 1n << 63n, "the lower half of u64"],
          [0n, this.p.apertureLast + 1n, "the whole aperture"],
        ]);
      case "edge":
        return r.pick([
          [U64_MAX - PAGE + 1n, 2n * PAGE, "wraps past 2^64"],
          [U64_MAX - PAGE + 1n, PAGE, "ends at 2^64"],
          [0n, U64_MAX, "unaligned u64 max"],
          [0x10_0800n, PAGE, "unaligned iova"],
          [0x10_0000n, 0n, "size 0"],
        ]);
      case "msi":
        return [this.p.msiStart, 0x10_0000n, "the MSI window"];
      default:
        return [BigInt(r.int(0x2000)) * PAGE, PAGE * BigInt(1 + r.int(4)), "low"];
    }
  }

  unmap() {
    const r = this.rng;
    let [iova, size, note] = this.unmapRange();
    [iova, size] = [iova & U64_MAX, size & U64_MAX];
    let flags = "";
    if (note === "all") flags = " all";
    else if (r.chance(0.05)) flags = " all";
    if (r.chance(0.15)) {
      const pg = r.pick([PAGE, PAGE, PAGE, 0x2000n, HUGE, 0x800n]);
      if (bitmapBytes(size, pg) <= BITMAP_MAX_BYTES) flags += ` dirty ${hex(pg)}`;
    }
    if (r.chance(0.1)) {
      flags += " vaddr";
      const m = this.maps.find((x) => x.iova === iova);
      if (m) this.invalid.push(m);
    } else {
      this.maps = this.maps.filter((x) => x.iova + x.size <= iova || x.iova >= iova + size || size === 0n);
      if (note === "all") this.maps = [];
    }
    this.emit(`unmap ${hex(iova)} ${hex(size)}${flags}`, note === "all" ? undefined : note);
  }

  mapv() {
    const r = this.rng;
    const m = this.invalid.length && r.chance(0.7) ? this.invalid.shift() : this.someMap();
    if (!m) {
      this.emit(`mapv 0x100000 0x1000 vaddr=+${hex(BigInt(r.int(8)) * PAGE)}`, "nothing to re-supply");
      return;
    }
    const off = r.chance(0.6) && m.off !== null ? m.off : BigInt(r.int(0x100)) * HUGE;
    const size = r.chance(0.85) ? m.size : m.size + PAGE;
    this.emit(`mapv ${hex(m.iova)} ${hex(size)} vaddr=+${hex(off)}`, "re-supply the vaddr");
  }

  dirty() {
    const r = this.rng;
    const op = r.weighted({ start: 4, stop: 2, get: 4 });
    if (op !== "get") {
      this.emit(`dirty ${op}`);
      return;
    }
    const m = this.someMap();
    let [iova, size, note] = m
      ? this.v >= 2 && r.chance(0.6)
        ? [m.iova, m.size, "one mapping"]
        : r.pick([
            [m.iova, m.size, "one mapping"],
            [m.iova, PAGE, "its first page"],
            [m.iova + PAGE, m.size, "shifted by a page"],
            [m.iova, m.size + HUGE, "past its end"],
          ])
      : [0x10_0000n, 0x10_0000n, "nothing mapped"];
    const pg = this.v >= 2 && r.chance(0.6) ? PAGE : r.pick([PAGE, PAGE, PAGE, PAGE, 0x2000n, HUGE, 0x800n]);
    if (bitmapBytes(size, pg) > BITMAP_MAX_BYTES) [size, note] = [PAGE, `${note}, clipped`];
    this.emit(`dirty get ${hex(iova)} ${hex(size)} ${hex(pg)}`, note);
  }

  dma() {
    const r = this.rng;
    const len = r.pick([1n, 4n, 8n, 0x40n, 0x100n, 0x800n, 0xfffn, BigInt(1 + r.int(0xfff))]);
    const reach = this.maps.filter((m) => m.iova + m.size <= EDU_DMA_REACH);
    const m = reach.length ? r.pick(reach) : null;
    const how = r.weighted({
      mapped: m ? 70 : 0,
      cross: m ? 10 : 0,
      unmapped: 10,
      doorbell: this.p.doorbellIova ? 6 : 0,
      zero: 4,
    });
    let iova;
    let note;
    switch (how) {
      case "mapped":
        [iova, note] = [
          m.iova + (m.size > len ? BigInt(r.int(Number((m.size - len) / 8n))) * 8n : 0n),
          "inside a mapping",
        ];
        break;
      case "cross":
        [iova, note] = [m.iova + m.size - len / 2n, "crosses the end of a mapping"];
        break;
      case "doorbell":
        [iova, note] = [this.p.doorbellIova, "the ITS doorbell IOVA"];
        break;
      case "zero":
        [iova, note] = [0n, "IOVA 0"];
        break;
      default:
        [iova, note] = [0x40_0000n + BigInt(r.int(0x3c00)) * PAGE, "probably unmapped"];
    }
    if (iova + len > EDU_DMA_REACH) [iova, note] = [0x10_0000n, `${note}, moved under edu's 28-bit reach`];
    const dir = r.chance(0.5) ? "to-dev" : "from-dev";
    let args = "";
    // v2: the host side of the DMA is the mapping's own memory, so data and host_changed mean something
    const own = m && m.off !== null && iova >= m.iova ? m.off + (iova - m.iova) : null;
    if (this.v >= 2 && own !== null && own + len <= BASE_LEN && how !== "doorbell" && r.chance(0.75)) {
      args += ` vaddr=+${hex(own)}`;
      note += " (its host memory)";
    } else if (r.chance(0.3)) args += ` vaddr=+${hex(BigInt(r.int(0x400)) * PAGE + BigInt(r.int(2)) * 0x800n)}`;
    if (dir === "to-dev" && r.chance(0.2)) args += ` fill=${hex(BigInt(r.int(256)))}`;
    if (r.chance(0.05)) args += " klog=all";
    this.emit(`dma ${hex(iova)} ${hex(len)} ${dir}${args}${this.dev()}`, note);
  }

  irq() {
    const r = this.rng;
    const op = r.weighted({ on: 5, off: 3, raise: 3 });
    if (op === "raise") {
      const v = r.chance(0.2) ? ` value=${hex(BigInt(r.u32()))}` : "";
      this.emit(`irq raise${v}${this.dev()}`);
    } else this.emit(`irq msi ${op}${this.dev()}`);
  }

  group() {
    const k = this.rng.int(this.ndev);
    this.emit(`group ${k} ${this.rng.weighted({ set: 4, unset: 3, status: 2 })}`);
  }

  device() {
    this.emit(`device ${this.rng.int(this.ndev)} ${this.rng.chance(0.5) ? "open" : "close"}`);
  }

  info() {
    const r = this.rng;
    const argsz = r.pick([
      null,
      null,
      0,
      8,
      16,
      19,
      20,
      23,
      24,
      56,
      68,
      72,
      80,
      88,
      115,
      116,
      117,
      119,
      120,
      128,
      4096,
    ]);
    let line = argsz === null ? "info" : `info argsz=${argsz}`;
    if (r.chance(0.3)) line += ` fill=${hex(r.pick([0xaan, 0xffn, 0x5an]))}`;
    this.emit(line);
  }

  touch() {
    const r = this.rng;
    const m = this.maps.find((x) => x.off !== null && r.chance(0.5));
    const off = m ? m.off : BigInt(r.int(0x400)) * PAGE;
    let size = r.pick([1n, PAGE, 0x10000n, HUGE]);
    if (off + size > BASE_LEN) size = BASE_LEN - off;
    if (size > this.budget) return this.emit("locked");
    this.budget -= size;
    this.emit(`touch +${hex(off)} ${hex(size)}`, m ? "a mapped range" : undefined);
  }

  // ---------------------------------------------------------------- episodes (v3)
  // Short runs of lines that only mean something together: what single random lines rarely line up.

  /** A map line under the same pin budget as map(); returns the tracked mapping. */
  mapLine(iova, size, prot, off, note) {
    const sz = size > this.budget ? PAGE : size;
    this.budget -= sz;
    const m = { iova, size: sz, off };
    this.maps.push(m);
    if (this.maps.length > 24) this.maps.shift();
    this.emit(`map ${hex(iova)} ${hex(sz)} ${prot} vaddr=+${hex(off)}`, note);
    return m;
  }

  /** A fresh 2 MiB-aligned buffer offset with room for `size`. */
  freshOff(size) {
    let off = ((this.nextOff + HUGE - 1n) / HUGE) * HUGE;
    if (off + size + MAP_SAFE_MAX > BASE_LEN) off = 0n;
    this.nextOff = off + size + PAGE;
    return off;
  }

  /** A low IOVA, far enough under edu's reach for a few MiB. */

  dmaLine(iova, len, dir, off, note) {
    this.emit(`dma ${hex(iova)} ${hex(len)} ${dir} vaddr=+${hex(off)}${this.dev()}`, note);
  }

  episode() {
    const r = this.rng;
    const kind = r.weighted({
      pinfail: this.memlock !== null ? 4 : 1,
      order: this.ndev > 1 ? 4 : 0,
      dirty: 3,
      vaddr: 3,
      limit: 2,
      huge: 2,
    });
    const a = this.lowIova();
    switch (kind) {
      case "pinfail": {
        // a rw pin over the limit fails after faulting its batch in; an r pin of part of it comes next
        const big = r.pick([0x10000n, 0x20000n, HUGE]);
        const off = this.freshOff(big);
        const m = this.mapLine(a, big, "rw", off, "episode pinfail: rw over the memlock limit?");
        const k = BigInt(r.int(Number(m.size / PAGE)));
        const small = r.pick([PAGE, 2n * PAGE]);
        this.mapLine(a + 2n * HUGE, small, "r", off + k * PAGE, "episode pinfail: r pin of pages the rw pin touched");
        this.emit("locked");
        return;
      }
      case "order": {
        const ops = {
          "device open": 3,
          "device close": 3,
          "group set": 2,
          "group unset": 1,
          "msi on": 3,
          "msi off": 1,
          raise: 1,
        };
        for (let i = 0, n = 3 + r.int(4); i < n; i++) {
          const k = r.int(this.ndev);
          const op = r.weighted(ops);
          if (op.startsWith("device")) this.emit(`device ${k} ${op.slice(7)}`, "episode order");
          else if (op.startsWith("group")) this.emit(`group ${k} ${op.slice(6)}`, "episode order");
          else if (op === "raise") this.emit(`irq raise dev=${k}`, "episode order");
          else this.emit(`irq ${op} dev=${k}`, "episode order");
        }
        return;
      }
      case "dirty": {
        const size = r.pick([PAGE, 4n * PAGE, 0x10000n, HUGE]);
        const off = this.freshOff(size);
        this.emit("dirty start", "episode dirty");
        const m = this.mapLine(a, size, r.pick(["rw", "rw", "w"]), off, "episode dirty");
        this.dmaLine(m.iova, 0x40n, "from-dev", off, "episode dirty: the device writes the mapping");
        this.emit(`dirty get ${hex(m.iova)} ${hex(m.size)} 0x1000`, "episode dirty");
        if (r.chance(0.5)) this.emit(`unmap ${hex(m.iova)} ${hex(m.size)} dirty 0x1000`, "episode dirty");
        if (r.chance(0.5)) this.emit("dirty stop");
        return;
      }
      case "vaddr": {
        const size = r.pick([PAGE, 2n * PAGE, 0x10000n]);
        const off = this.freshOff(size);
        const m = this.mapLine(a, size, "rw", off, "episode vaddr");
        this.dmaLine(m.iova, 0x20n, "to-dev", off, "episode vaddr: pattern in through the first vaddr");
        this.emit(`unmap ${hex(m.iova)} ${hex(m.size)} vaddr`, "episode vaddr: invalidate");
        this.dmaLine(m.iova, 0x20n, "from-dev", off, "episode vaddr: DMA while the vaddr is invalid");
        const off2 = this.freshOff(size);
        this.emit(`mapv ${hex(m.iova)} ${hex(m.size)} vaddr=+${hex(off2)}`, "episode vaddr: a new vaddr");
        this.dmaLine(m.iova, 0x20n, "from-dev", off2, "episode vaddr: which memory does the IOMMU reach?");
        this.emit("locked");
        return;
      }
      case "limit": {
        const n = 3 + r.int(4);
        const off = this.freshOff(BigInt(n) * PAGE);
        for (let i = 0n; i < BigInt(n); i++) this.mapLine(a + i * PAGE, PAGE, "rw", off + i * PAGE, "episode limit");
        const mid = a + BigInt(r.int(n)) * PAGE;
        this.emit(`unmap ${hex(mid)} ${hex(PAGE)}`, "episode limit: one entry back");
        this.mapLine(mid, PAGE, "r", off, "episode limit: reuse it");
        this.emit("info");
        return;
      }
      default: {
        const size = r.pick([HUGE, 2n * HUGE]);
        const off = this.freshOff(size);
        const m = this.mapLine((a / HUGE) * HUGE, size, "rw", off, "episode huge: 2 MiB aligned iova and vaddr");
        this.dmaLine(m.iova + HUGE - 0x10n, 0x20n, "to-dev", off + HUGE - 0x10n, "episode huge: across 2 MiB");
        this.emit(`unmap ${hex(m.iova + HUGE / 2n)} ${hex(PAGE)}`, "episode huge: one 4 KiB page inside");
        this.dmaLine(m.iova + HUGE / 2n, 0x10n, "from-dev", off + HUGE / 2n, "episode huge: through that page");
        this.emit(`unmap ${hex(m.iova)} ${hex(m.size)}`, "episode huge: the rest");
      }
    }
  }

  // ---------------------------------------------------------------- scenario

  header() {
    const r = this.rng;
    this.ndev = Number(r.weighted(this.v >= 2 ? { 1: 3, 2: 4, 3: 3 } : { 1: 4, 2: 4, 3: 2 }));
    this.emit(`# random scenario, seed ${this.seed}, ${this.arch} (tools/scenario-gen v${this.v})`);
    this.emit(
      `# regenerate: node tools/scenario-gen/src/cli.mjs --platform ${this.arch} --seed ${this.seed} --gen ${this.v}`,
    );
    this.emit(`platform ${this.p.name}`);
    if (this.ndev > 1) this.emit(`devices ${this.ndev}`);
    this.memlock = null;
    if (r.chance(0.3)) {
      this.memlock = r.pick([0n, PAGE, 2n * PAGE, 0x4000n, 0x10000n, 0x20000n, HUGE, 2n * HUGE]);
      this.emit(`memlock ${hex(this.memlock)}`);
    }
    if (r.chance(0.3)) this.emit(`param dma_entry_limit=${r.pick([0, 1, 2, 3, 4, 6, 10])}`);
    if (r.chance(0.08)) this.emit("iommu type1");
    this.emit("---");
  }

  body() {
    const r = this.rng;
    const count = 18 + r.int(23);
    const multi = this.ndev > 1 ? 1 : 0;
    const weights = {
      map: 25,
      unmap: 13,
      mapv: 2,
      dma: 12,
      irq: 7,
      group: 3 + 6 * multi,
      device: 3 + 4 * multi,
      dirty: 6,
      info: 4,
      locked: 4,
      touch: 3,
      resv: 2,
      ext: 1,
      "set-iommu": 1,
    };
    if (this.v >= 3) weights.episode = 14;
    if (multi && r.chance(0.6)) this.emit(`group ${1 + r.int(this.ndev - 1)} set`);
    for (let i = 0; i < count; i++) {
      const c = r.weighted(weights);
      if (c === "locked" || c === "ext") this.emit(c);
      else if (c === "resv") this.emit(`resv${this.dev()}`);
      else if (c === "set-iommu") this.emit(`set-iommu${r.chance(0.3) ? " type1" : r.chance(0.5) ? " type1v2" : ""}`);
      else this[c]();
    }
    if (r.chance(0.5)) this.emit("unmap 0 0 all");
    if (r.chance(0.6)) this.emit("locked");
  }
}

/**
 * The scenario for `seed` (a 32-bit unsigned integer) on `arch` (`x86` or `arm64`) by generator `version`
 * (1: seeds 1-32 of the first fixtures; 2: seeds 33-48, DMA through the mapping's own host memory, dirty reads of whole
 * mappings, more devices, maps packed closer; 3: episodes, short runs of lines that only mean something
 * together), as the text of a `.scn` file. The same seed, arch and
 * version always give the same text.
 */
export function generateScenario(seed, arch, version = GENERATOR_VERSION) {
  if (![1, 2, 3].includes(version)) throw new RangeError(`unknown generator version ${version} (1, 2, 3)`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) throw new RangeError(`seed must be a u32: ${seed}`);
  if (!(arch in PLATFORMS)) throw new RangeError(`unknown platform ${arch} (x86, arm64)`);
  const g = new Gen(seed, arch, version);
  g.header();
  g.body();
  return `${g.lines.join("\n")}\n`;
}
