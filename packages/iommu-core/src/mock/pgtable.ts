/**
 * The mock domain's page table, shaped like the iommufd selftest's (an index of 2 KiB IOVA pages,
 * plus optional 1 MiB entries). It lives in JS, not in physical memory: the mock stands in for a
 * driver *and* its hardware, as the kernel's selftest mock does (reference §7).
 */
export const MOCK_IO_PAGE_SIZE = 2048n;
export const MOCK_HUGE_PAGE_SIZE = 1n << 20n;

export interface MockPte {
  /** First IOVA the entry covers. */
  readonly iova: bigint;
  readonly phys: bigint;
  readonly size: bigint;
  readonly prot: number;
}

export class MockPageTable {
  private readonly small = new Map<bigint, MockPte>();
  private readonly huge = new Map<bigint, MockPte>();

  /** Entry covering `iova`, if any. */
  lookup(iova: bigint): MockPte | undefined {
    return this.small.get(iova / MOCK_IO_PAGE_SIZE) ?? this.huge.get(iova / MOCK_HUGE_PAGE_SIZE);
  }

  /** True if any entry overlaps [iova, iova + size). */
  overlaps(iova: bigint, size: bigint): boolean {
    if (size >= MOCK_HUGE_PAGE_SIZE || this.huge.size > 0) {
      for (let a = iova; a < iova + size; a += MOCK_HUGE_PAGE_SIZE) {
        if (this.huge.has(a / MOCK_HUGE_PAGE_SIZE)) return true;
      }
    }
    for (let a = iova; a < iova + size; a += MOCK_IO_PAGE_SIZE) {
      if (this.small.has(a / MOCK_IO_PAGE_SIZE)) return true;
    }
    return false;
  }

  insert(pte: MockPte): void {
    if (pte.size === MOCK_HUGE_PAGE_SIZE) this.huge.set(pte.iova / MOCK_HUGE_PAGE_SIZE, pte);
    else this.small.set(pte.iova / MOCK_IO_PAGE_SIZE, pte);
  }

  remove(pte: MockPte): void {
    if (pte.size === MOCK_HUGE_PAGE_SIZE) this.huge.delete(pte.iova / MOCK_HUGE_PAGE_SIZE);
    else this.small.delete(pte.iova / MOCK_IO_PAGE_SIZE);
  }

  /** Every entry, sorted by IOVA (for MD_CHECK_MAP-style assertions). */
  entries(): MockPte[] {
    return [...this.small.values(), ...this.huge.values()].sort((a, b) =>
      a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0,
    );
  }

  get size(): number {
    return this.small.size + this.huge.size;
  }
}
