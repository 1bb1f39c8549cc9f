/**
 * Guest RAM layouts and how a VMM fits them into the IOVA ranges the host says are usable
 * (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE). With guest-physical = IOVA (what QEMU does), every RAM
 * block must lie inside one valid range or MAP_DMA fails with EINVAL (reference §6.3 step 8).
 */

export interface RamBlock {
  /** Guest-physical address = IOVA. */
  readonly gpa: bigint;
  readonly size: bigint;
  /** Offset of the block in the VMM's guest RAM allocation (vaddr = ramBase + offset). */
  readonly offset: bigint;
  readonly name: string;
}

/** An inclusive IOVA range [start, end]. */
export interface IovaRange {
  readonly start: bigint;
  readonly end: bigint;
}

export type LayoutKind = "machine" | "flat";

const GiB = 1n << 30n;
const MiB = 1n << 20n;

/**
 * QEMU 7.2 q35 (hw/i386/pc_q35.c): RAM of 0xb0000000 bytes or more keeps 2 GiB below 4 GiB and puts
 * the rest at 4 GiB; smaller RAM sits entirely below 4 GiB (lowmem 0xb0000000).
 */
export function q35Layout(ramSize: bigint): RamBlock[] {
  const lowmem = ramSize >= 0xb0000000n ? 0x80000000n : 0xb0000000n;
  if (ramSize <= lowmem) return [{ gpa: 0n, size: ramSize, offset: 0n, name: "below-4g" }];
  return [
    { gpa: 0n, size: lowmem, offset: 0n, name: "below-4g" },
    { gpa: 4n * GiB, size: ramSize - lowmem, offset: lowmem, name: "above-4g" },
  ];
}

/** QEMU virt (hw/arm/virt.c): one RAM block at 0x40000000. */
export function virtLayout(ramSize: bigint): RamBlock[] {
  return [{ gpa: 0x40000000n, size: ramSize, offset: 0n, name: "ram" }];
}

/** A flat layout from guest-physical 0: what a VMM (or DPDK-style identity mapping) assumes when it ignores the host. */
export function flatLayout(ramSize: bigint): RamBlock[] {
  return [{ gpa: 0n, size: ramSize, offset: 0n, name: "flat" }];
}

/** One step of the VMM's reaction, for narration. */
export interface LayoutReaction {
  readonly kind: "fits" | "carve" | "move";
  readonly block: string;
  readonly text: string;
}

export interface FittedLayout {
  readonly blocks: RamBlock[];
  readonly reactions: LayoutReaction[];
  /** Reserved spans (between valid ranges) that intersected the requested layout. */
  readonly conflicts: IovaRange[];
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Human size: 1 GiB, 512 MiB, 64 KiB, or bytes. */
export function sizeText(v: bigint): string {
  const TiB = GiB << 10n;
  if (v >= TiB && v % TiB === 0n) return `${v / TiB} TiB`;
  if (v >= GiB && v % GiB === 0n) return `${v / GiB} GiB`;
  if (v >= TiB) return `≈${(Number(v) / Number(TiB)).toFixed(1)} TiB`;
  if (v >= GiB) return `≈${(Number(v) / Number(GiB)).toFixed(1)} GiB`;
  if (v >= MiB && v % MiB === 0n) return `${v / MiB} MiB`;
  if (v >= MiB && v % (MiB / 16n) === 0n) return `≈${(Number(v) / Number(MiB)).toFixed(1)} MiB`;
  if (v >= 1024n && v % 1024n === 0n) return `${v / 1024n} KiB`;
  return `${v} B`;
}

/** The gaps between valid ranges (and below the first): the IOVAs userspace must not map. */
export function holesOf(valid: readonly IovaRange[]): IovaRange[] {
  const out: IovaRange[] = [];
  let next = 0n;
  for (const r of valid) {
    if (r.start > next) out.push({ start: next, end: r.start - 1n });
    next = r.end + 1n;
  }
  return out;
}

/**
 * Fit `want` into `valid`: a block inside one valid range stays; a block crossing holes is carved
 * into the valid pieces and the bytes that fell into a hole are moved up, past the last block, into
 * the next valid space (how QEMU's pc machines move RAM above 4 GiB); a block that starts inside a
 * hole is moved to the hole's end (2 MiB aligned, so huge pages still fit). Guest RAM bytes keep
 * their order, so `offset` still names the same host memory.
 */
export function fitLayout(want: readonly RamBlock[], valid: readonly IovaRange[], align = 2n * MiB): FittedLayout {
  const blocks: RamBlock[] = [];
  const reactions: LayoutReaction[] = [];
  const conflicts: IovaRange[] = [];
  const holes = holesOf(valid);
  const pending: { size: bigint; offset: bigint; name: string }[] = [];
  let top = 0n;
  for (const b of want) {
    const end = b.gpa + b.size - 1n;
    const hit = holes.filter((h) => h.start <= end && b.gpa <= h.end);
    const last = valid.at(-1);
    if (last && end > last.end) hit.push({ start: last.end + 1n, end });
    if (hit.length === 0) {
      blocks.push(b);
      reactions.push({
        kind: "fits",
        block: b.name,
        text: `${b.name} [${hex(b.gpa)}, ${hex(end)}] lies in one valid range`,
      });
      top = maxBig(top, end + 1n);
      continue;
    }
    for (const h of hit) conflicts.push({ start: maxBig(h.start, b.gpa), end: minBig(h.end, end) });
    const startsInHole = hit.some((h) => h.start <= b.gpa && b.gpa <= h.end);
    if (startsInHole && hit.length === 1) {
      const h = hit[0] as IovaRange;
      const gpa = alignUp(h.end + 1n, align);
      pending.push({ size: b.size, offset: b.offset, name: b.name });
      reactions.push({
        kind: "move",
        block: b.name,
        text: `${b.name} would start inside reserved [${hex(h.start)}, ${hex(h.end)}]: move it to ${hex(gpa)}`,
      });
      continue;
    }
    // Carve: keep the valid pieces in place (host memory in order), queue the rest to move up.
    let kept = 0n;
    let piece = 0;
    for (const r of valid) {
      const s = alignUp(maxBig(r.start, b.gpa), 0x1000n);
      const e = minBig(r.end, end);
      if (s > e) continue;
      const size = e - s + 1n;
      blocks.push({ gpa: s, size, offset: b.offset + kept, name: `${b.name}.${piece++}` });
      kept += size;
      top = maxBig(top, e + 1n);
    }
    const moved = b.size - kept;
    for (const h of hit) {
      reactions.push({
        kind: "carve",
        block: b.name,
        text: `${b.name} crosses reserved [${hex(h.start)}, ${hex(h.end)}]: carve a hole there`,
      });
    }
    if (moved > 0n) pending.push({ size: moved, offset: b.offset + kept, name: `${b.name}.moved` });
  }
  // Place moved RAM in the first valid space above everything placed so far.
  for (const p of pending) {
    let placed = false;
    for (const r of valid) {
      const s = alignUp(maxBig(r.start, top), align);
      if (s + p.size - 1n <= r.end) {
        blocks.push({ gpa: s, size: p.size, offset: p.offset, name: p.name });
        reactions.push({ kind: "move", block: p.name, text: `${p.name}: ${sizeText(p.size)} placed at ${hex(s)}` });
        top = s + p.size;
        placed = true;
        break;
      }
    }
    if (!placed) throw new RangeError(`no valid IOVA range can hold ${sizeText(p.size)} of guest RAM`);
  }
  blocks.sort((a, b) => (a.gpa < b.gpa ? -1 : a.gpa > b.gpa ? 1 : 0));
  return { blocks, reactions, conflicts };
}

function alignUp(v: bigint, a: bigint): bigint {
  return (v + a - 1n) & ~(a - 1n);
}
function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
