/**
 * `@vfio/type1/testing`: what tests may look at but users may not touch — a read-only view of a type1
 * backend's `struct vfio_iommu`, and a comparable snapshot of everything a failed call must leave unchanged.
 */
import type { Container } from "./container.js";
import { hex, type VfioIommu } from "./state.js";
import type { VfioIommuType1 } from "./type1.js";

/** A comparable picture of everything a failed call must leave untouched. */
export interface Type1Snapshot {
  readonly dmas: string[];
  readonly dmaAvail: number;
  readonly iovaList: string[];
  readonly pgsizeBitmap: string;
  readonly dirty: boolean;
  readonly vaddrInvalid: number;
  readonly lockedVm: number;
  readonly domains: string[];
}

/** The backend's state, read-only at the top level (tests must not change it behind the kernel's back). */
export type Type1State = Readonly<VfioIommu>;

/** The private `struct vfio_iommu` of a backend. */
export function type1State(backend: VfioIommuType1): Type1State {
  // biome-ignore lint/complexity/useLiteralKeys: TypeScript's sanctioned way to reach a private member.
  return backend["state"];
}

/** A picture of the state a failed call must not change; null for a container without a backend. */
export function snapshot(target: Container | VfioIommuType1): Type1Snapshot | null {
  const backend = "ioctl" in target ? target.backend : target;
  if (!backend) return null;
  const s = type1State(backend);
  return {
    dmas: s.dmas
      .all()
      .map(
        (d) =>
          `${hex(d.iova)}+${hex(d.size)}@${hex(d.vaddr)} p${d.prot} ${d.iommuMapped ? "m" : "-"}${d.vaddrInvalid ? "i" : "-"}${d.bitmap ? `b${d.bits.toString(16)}` : "-"} ${d.runs.map((r) => `${hex(r.phys)}x${r.pages}`).join(",")}`,
      ),
    dmaAvail: s.dmaAvail,
    iovaList: s.iovaList.map((r) => `${hex(r.start)}-${hex(r.end)}`),
    pgsizeBitmap: hex(s.pgsizeBitmap),
    dirty: s.dirtyPageTracking,
    vaddrInvalid: s.vaddrInvalidCount,
    lockedVm: s.process.lockedVm,
    domains: s.domains.map((d) => `${d.domain.id}:${d.groups.map((g) => g.id).join(",")}`),
  };
}
