/** `--modset` (which VFIO doors the host's modules provide) and `--uapi` (which one `run`'s VMM uses). */
import { MODSETS, type Modset } from "@iommu-sim/host";
import type { VmmUapi } from "../vmm/vmm.js";
import type { ParsedArgs } from "./args.js";
import { UsageError } from "./args.js";

export const MODSET_HELP = `--modset   ${MODSETS.join(" | ")}: the VFIO doors of the host kernel (default debian, as Debian
             ships it: type1 only; iommufd adds /dev/iommu and the device cdevs; iommufd-compat also makes
             /dev/vfio/vfio iommufd's compat container). A scenario's 'modset NAME' line sets it for replay.`;

/** The --modset value, or undefined when absent. */
export function modsetFlag(a: ParsedArgs): Modset | undefined {
  const m = a.flags.get("modset");
  if (m === undefined) return undefined;
  if (typeof m !== "string" || !(MODSETS as readonly string[]).includes(m)) {
    throw new UsageError(`unknown module set '${String(m)}' (one of ${MODSETS.join(", ")})`);
  }
  return m as Modset;
}

/** `run --uapi type1|iommufd`; iommufd picks the iommufd module set unless --modset says otherwise. */
export function uapiOf(a: ParsedArgs): { uapi: VmmUapi; modset: Modset } {
  const u = a.flags.get("uapi") ?? "type1";
  if (u !== "type1" && u !== "iommufd") throw new UsageError("--uapi is type1 or iommufd");
  const given = modsetFlag(a);
  if (u === "iommufd" && given === "debian") {
    throw new UsageError("--uapi iommufd needs /dev/iommu: the debian module set has none (use --modset iommufd)");
  }
  return { uapi: u, modset: given ?? (u === "iommufd" ? "iommufd" : "debian") };
}
