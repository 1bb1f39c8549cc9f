/**
 * Branded address kinds for the core's public boundaries (`iommu_map`, `iommu_unmap`,
 * `iommu_iova_to_phys`): `dma_addr_t` (an IOVA, what a device puts on the bus) and `phys_addr_t`.
 * The brand is optional, so a plain bigint is still accepted (every existing caller compiles), but two
 * branded values of different kinds cannot be passed in each other's place: `map(domain, phys, iova, …)`
 * with values from `physAddr()`/`iovaToPhys` and `iova()` is a type error.
 */
import { ErrnoError } from "./errno.js";
import { U64_MAX } from "./u64.js";

declare const ADDRESS_KIND: unique symbol;

/** An I/O virtual address (`dma_addr_t`), u64. */
export type Iova = bigint & { readonly [ADDRESS_KIND]?: "iova" };
/** A physical address (`phys_addr_t`), u64. */
export type PhysAddr = bigint & { readonly [ADDRESS_KIND]?: "phys" };

function checkU64(op: string, v: bigint): void {
  if (v < 0n || v > U64_MAX) throw new ErrnoError("EINVAL", op, "address outside u64", { value: v });
}

/** An IOVA; EINVAL outside [0, 2^64). */
export function iova(v: bigint): Iova {
  checkU64("iova", v);
  return v as Iova;
}

/** A physical address; EINVAL outside [0, 2^64). */
export function physAddr(v: bigint): PhysAddr {
  checkU64("phys_addr", v);
  return v as PhysAddr;
}
