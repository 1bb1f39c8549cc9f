/**
 * A PCI host bridge's address windows as dma-iommu reads them (`pci_host_bridge.windows` and
 * `.dma_ranges`), and `iova_reserve_pci_windows` (Linux 6.1, reference §3.2): IOVAs that would
 * alias the bridge's MMIO windows (peer-to-peer) or fall outside its inbound DMA ranges are reserved.
 */
import { ErrnoError, ffs64, U64_MAX, u64 } from "@iommu/core";
import { hex, pfnOf } from "./u64.js";

/** One resource window of the bridge; `offset` = CPU address − bus address (0 when identical). */
export interface BridgeWindow {
  readonly kind: "mem" | "io";
  /** First CPU address. */
  readonly start: bigint;
  /** Last CPU address (inclusive). */
  readonly end: bigint;
  readonly offset?: bigint;
}

/** One inbound DMA range (`dma-ranges`), CPU addresses inclusive, as firmware sorted them. */
export interface DmaRange {
  readonly start: bigint;
  readonly end: bigint;
  readonly offset?: bigint;
}

export interface HostBridge {
  readonly windows: readonly BridgeWindow[];
  readonly dmaRanges: readonly DmaRange[];
}

/**
 * Reserve the bus addresses of every MEM window, then every gap between consecutive DMA ranges
 * and from the last range to the top of the space. As in Linux the gap reservation runs up to
 * and including the pfn of the next range's start. Unsorted ranges: EINVAL ("Failed to reserve IOVA").
 * Check-only when `iovad` is null (so callers can validate before touching anything).
 */
export function reservePciWindows(
  bridge: HostBridge,
  iovad: { reserve(pfnLo: number, pfnHi: number): unknown } | null,
  granule: bigint,
): void {
  const shift = ffs64(granule);
  const reserve = (lo: bigint, hi: bigint) => iovad?.reserve(pfnOf(lo, shift), pfnOf(hi, shift));
  for (const w of bridge.windows) {
    if (w.kind !== "mem") continue;
    const off = w.offset ?? 0n;
    reserve(u64(w.start - off), u64(w.end - off));
  }
  let start = 0n;
  bridge.dmaRanges.forEach((r, i) => {
    const off = r.offset ?? 0n;
    let end = u64(r.start - off);
    for (;;) {
      if (end > start) reserve(start, end);
      else if (end < start) {
        throw new ErrnoError("EINVAL", "iova_reserve_pci_windows", "Failed to reserve IOVA (dma-ranges not sorted)", {
          start: hex(start),
          end: hex(end),
        });
      }
      start = u64(r.end - off + 1n);
      // The last range also closes the space up to the top address.
      if (i === bridge.dmaRanges.length - 1 && end !== U64_MAX) {
        end = U64_MAX;
        continue;
      }
      break;
    }
  });
}
