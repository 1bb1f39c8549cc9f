/**
 * What the hardware reads from memory on a cache miss: the root entry for the bus, the context entry for
 * the devfn (legacy mode, VT-d spec 9.1-9.3), then the second-level table (9.8): 512 8-byte entries per
 * 4 KiB level, R/W rights ANDed down the walk, PS marking a 2 MiB / 1 GiB leaf where SLLPS allows it.
 */
import type { PhysicalMemory } from "@iommu/core";
import { CTX, FAULT, PTE } from "../arch/regs.js";
import type { CachedContext, IotlbEntry } from "./tlb.js";

export type ContextResult = CachedContext | { readonly fault: number };
export type WalkResult = IotlbEntry | { readonly fault: number; readonly level: number };

/** AW field of a context entry → (levels, width); undefined when the hardware does not support it. */
function awToGeometry(aw: number, sagaw: number): { levels: number; width: number } | undefined {
  if (aw < 1 || aw > 3 || !(sagaw & (1 << aw))) return undefined;
  return { levels: aw + 2, width: 30 + 9 * aw };
}

export function readContext(
  memory: PhysicalMemory,
  rtaddr: bigint,
  sid: number,
  sagaw: number,
  passThroughSupported: boolean,
): ContextResult {
  const bus = sid >> 8;
  const devfn = sid & 0xff;
  const rootLo = memory.read64(rtaddr + BigInt(bus) * 16n);
  if ((rootLo & 1n) === 0n) return { fault: FAULT.ROOT_NOT_PRESENT };
  const ctp = rootLo & PTE.ADDR_MASK;
  const at = ctp + BigInt(devfn) * 16n;
  const lo = memory.read64(at);
  const hi = memory.read64(at + 8n);
  if ((lo & CTX.P) === 0n) return { fault: FAULT.CONTEXT_NOT_PRESENT };
  const tt = Number((lo >> CTX.TT_SHIFT) & 3n);
  const did = Number((hi >> CTX.DID_SHIFT) & 0xffffn);
  const fpd = (lo & CTX.FPD) !== 0n;
  if (tt === 3 || (tt === 2 && !passThroughSupported)) return { fault: FAULT.CONTEXT_INVALID };
  const geo = awToGeometry(Number(hi & 7n), sagaw);
  if (tt !== 2 && !geo) return { fault: FAULT.CONTEXT_INVALID };
  const width = geo?.width ?? 64;
  return { did, tt, root: lo & PTE.ADDR_MASK, levels: geo?.levels ?? 0, width, limit: 1n << BigInt(width), fpd };
}

/**
 * Walk the second-level table for `pfn`. `maxLeafLevel` is 1 + the number of superpage sizes the
 * hardware supports (SLLPS): a PS bit above it is a reserved-field fault.
 */
const LEVEL_DIV = [0, 1, 512, 512 ** 2, 512 ** 3, 512 ** 4];
const LEVEL_MASK = [0n, 0xfffn, (1n << 21n) - 1n, (1n << 30n) - 1n, (1n << 39n) - 1n, (1n << 48n) - 1n];

/** Byte offset of each of a table's 512 entries, as BigInts made once (a walk then adds, never converts). */
const ENTRY_OFFSET = Array.from({ length: 512 }, (_, i) => BigInt(i * 8));

export function walkSecondLevel(
  memory: PhysicalMemory,
  ctx: CachedContext,
  pfn: number,
  maxLeafLevel: number,
): WalkResult {
  // BigInt bit operations are cheap in V8 (~7 ns); converting to a number (Number(bigint)) costs three
  // times that, so the entry is decoded in BigInt and the rights are converted once, at the leaf.
  let table = ctx.root;
  let perm = 3n;
  for (let level = ctx.levels; level >= 1; level--) {
    const idx = Math.floor(pfn / (LEVEL_DIV[level] as number)) % 512;
    const pte = memory.read64(table + (ENTRY_OFFSET[idx] as bigint));
    const rights = pte & 3n;
    if (rights === 0n) return { fault: 0, level };
    perm &= rights;
    const addr = pte & PTE.ADDR_MASK;
    if (level === 1 || (pte & PTE.PS) !== 0n) {
      if (level > 1 && level > maxLeafLevel) return { fault: FAULT.PTE_RESERVED, level };
      if ((addr & (LEVEL_MASK[level] as bigint)) !== 0n) return { fault: FAULT.PTE_RESERVED, level };
      return { phys: addr, level, perm: perm === 3n ? 3 : perm === 1n ? 1 : perm === 2n ? 2 : 0 };
    }
    table = addr;
  }
  return { fault: FAULT.PTE_RESERVED, level: 1 };
}
