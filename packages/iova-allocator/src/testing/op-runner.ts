import { IovaDomain } from "../iova-domain.js";
import { ReferenceIovaDomain } from "./linux-iova-reference.js";

/** A domain configuration for model tests: a small window of pfns somewhere in the space. */
export interface ModelConfig {
  granule: number;
  /** "low": window at pfn 0; "dma32": straddling the 4 GiB pfn; "top": just under the highest u64 pfn. */
  place: "low" | "dma32" | "top";
  startOffset: number;
  cpus: number;
  width: number;
  /** The depot shape (default "array", Linux 6.1). */
  rcacheDepot?: "array" | "list";
}

/** One call; `pick` selects an allocated range at run time (index modulo the current count). */
export type ModelOp =
  | { op: "alloc"; size: number; limit: number; aligned: boolean }
  | { op: "allocFast"; size: number; limit: number; flush: boolean; cpu: number }
  | { op: "free"; pick: number; offset: number; random: number; useRandom: boolean }
  | { op: "freeFast"; pick: number; sizeDelta: number; cpu: number; random: number; useRandom: boolean }
  | { op: "reserve"; lo: number; len: number }
  | { op: "find"; at: number }
  | { op: "flush" }
  | { op: "tick"; ms: number };

export function windowBase(granule: number, place: ModelConfig["place"], width: number): number {
  const shift = Math.log2(granule);
  if (place === "low") return 0;
  if (place === "dma32") return 2 ** (32 - shift) - Math.floor(width / 2);
  return 2 ** (64 - shift) - 1 - width;
}

function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (e) {
    if (e instanceof RangeError) return { rangeError: true };
    throw e;
  }
}

/**
 * Runs the same calls on the engine and on the reference walk and reports the first disagreement (result, thrown
 * RangeError, allocated ranges, hints, cached count) as a string, or null when they agree throughout.
 */
export function compareRun(cfg: ModelConfig, ops: readonly ModelOp[], fullCheckEvery = 1): string | null {
  const base = windowBase(cfg.granule, cfg.place, cfg.width);
  const opts = {
    granule: cfg.granule,
    startPfn: base + cfg.startOffset,
    cpus: cfg.cpus,
    rcacheDepot: cfg.rcacheDepot ?? "array",
  };
  const real = new IovaDomain(opts);
  const ref = new ReferenceIovaDomain(opts);
  const clampPfn = (p: number) => Math.min(Math.max(p, 0), real.maxPfn);
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i]!;
    let a: unknown;
    let b: unknown;
    switch (o.op) {
      case "alloc": {
        const limit = clampPfn(base + o.limit);
        a = outcome(() => real.alloc(o.size, limit, o.aligned));
        b = outcome(() => ref.alloc(o.size, limit, o.aligned));
        break;
      }
      case "allocFast": {
        const limit = clampPfn(base + o.limit);
        a = outcome(() => real.allocFast(o.size, limit, o.flush, o.cpu % cfg.cpus));
        b = outcome(() => ref.allocFast(o.size, limit, o.flush, o.cpu % cfg.cpus));
        break;
      }
      case "free": {
        const rs = ref.ranges();
        const r = rs.length > 0 ? rs[o.pick % rs.length]! : undefined;
        const pfn =
          o.useRandom || r === undefined ? clampPfn(base + o.random) : r.pfnLo + (o.offset % (r.pfnHi - r.pfnLo + 1));
        a = outcome(() => real.free(pfn));
        b = outcome(() => ref.free(pfn));
        break;
      }
      case "freeFast": {
        const rs = ref.ranges();
        const r = rs.length > 0 ? rs[o.pick % rs.length]! : undefined;
        const pfn = o.useRandom || r === undefined ? clampPfn(base + o.random) : r.pfnLo;
        const size = Math.max(1, (r ? r.pfnHi - r.pfnLo + 1 : 1) + o.sizeDelta);
        a = outcome(() => real.freeFast(pfn, size, o.cpu % cfg.cpus));
        b = outcome(() => ref.freeFast(pfn, size, o.cpu % cfg.cpus));
        break;
      }
      case "reserve": {
        const lo = clampPfn(base + o.lo);
        const hi = clampPfn(lo + o.len);
        a = outcome(() => real.reserve(lo, hi));
        b = outcome(() => ref.reserve(lo, hi));
        break;
      }
      case "find": {
        const pfn = clampPfn(base + o.at);
        a = outcome(() => real.find(pfn));
        b = outcome(() => ref.find(pfn));
        break;
      }
      case "flush":
        real.flushRangeCaches();
        ref.flushRangeCaches();
        break;
      case "tick":
        real.tick(o.ms);
        ref.tick(o.ms);
        break;
    }
    const sa = JSON.stringify(a);
    const sb = JSON.stringify(b);
    if (sa !== sb) return `op #${i} ${JSON.stringify(o)}: engine ${sa} vs reference ${sb}`;
    if (real.count !== ref.count || real.cachedCount !== ref.cachedCount)
      return `op #${i} ${JSON.stringify(o)}: counts ${real.count}/${real.cachedCount} vs ${ref.count}/${ref.cachedCount}`;
    const ha = JSON.stringify(real.hints());
    const hb = JSON.stringify(ref.hints());
    if (ha !== hb) return `op #${i} ${JSON.stringify(o)}: hints ${ha} vs ${hb}`;
    if (i % fullCheckEvery === 0 || i === ops.length - 1) {
      const ra = JSON.stringify([...real.ranges()]);
      const rb = JSON.stringify(ref.ranges());
      if (ra !== rb) return `op #${i} ${JSON.stringify(o)}: ranges differ\n${ra}\n${rb}`;
    }
  }
  return null;
}
