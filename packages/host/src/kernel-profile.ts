/**
 * The kernel profile: the ONE table that maps a Linux version to every layer's named options (issue 16).
 * Layers never ask which version they are; a host is built with a profile and hands each layer its options.
 * Each row is what the real Debian kernel of that version answered in the conformance sets
 * (`@iommu-sim/conformance` linux-6.1/, linux-6.12/, linux-7.3/).
 */

import type { SecondLevelPteFormat } from "@iommu/vt-d";
import type { RcacheDepot } from "@iova/allocator";
import type { Type1KernelOptions } from "@vfio/type1";

/** The kernels the model answers for (the conformance folders `linux-<version>/`). */
export type KernelVersion = "6.1" | "6.12" | "7.3";

export const KERNEL_VERSIONS: readonly KernelVersion[] = ["6.1", "6.12", "7.3"];

/** What the default host runs: every existing fixture and story is 6.1's. */
export const DEFAULT_KERNEL: KernelVersion = "6.1";

/** Host-side rules (boards, vfio-pci glue) that changed with the kernel. */
export interface HostKernelOptions {
  /**
   * arm64: the SMMU driver probes the PCI host bridge 00:00.0, so the bridge takes IOMMU group 0 and edu
   * devices get groups 1, 2, ... (6.1/6.12: 0, 1, ...). Up to 6.14 a DT platform parsed a device's `iommu-map`
   * only in `dma_configure`, when a driver bound it, and the bridge has none; "iommu: Get DT/ACPI parsing into
   * the proper probe path" (bcb81ac6ae3c, Linux 6.15) does it in `iommu_probe_device` for every device.
   */
  readonly smmuProbesHostBridge: boolean;
}

export interface KernelProfile {
  readonly version: KernelVersion;
  /** `uname -r` of the Debian kernel the profile was checked against (without the arch suffix). */
  readonly release: string;
  /** @vfio/type1: `new Vfio({ kernel })`. */
  readonly type1: Type1KernelOptions;
  /**
   * @iommu/vt-d: the second-level leaf format, `dmar_fault`'s source-id text, and whether the driver has a
   * BLOCKED domain (a claimed, unattached device then has no context entry).
   */
  readonly vtd: {
    readonly slPteFormat: SecondLevelPteFormat;
    readonly faultLogSegment: boolean;
    readonly blockedDomain: boolean;
  };
  /**
   * @iommu/arm-smmu: the decoded event lines after the raw dump (6.15's "Improve events logging"), and whether
   * the driver has a BLOCKED domain (an abort STE: DMA of a claimed, unattached device records no event).
   */
  readonly smmu: { readonly decodedEventLog: boolean; readonly blockedDomain: boolean };
  /** @iova/allocator (through msi-cookie's init_domain): the range caches' depot shape. */
  readonly iova: { readonly rcacheDepot: RcacheDepot };
  readonly host: HostKernelOptions;
}

export const KERNEL_PROFILES: Readonly<Record<KernelVersion, KernelProfile>> = Object.freeze({
  "6.1": {
    version: "6.1",
    release: "6.1.0-56",
    type1: {
      alignCapabilities: false,
      longtermPinUnshare: false,
      nestingIommu: true,
      sanitizeOverflow: false,
      unmapToAddressLimit: false,
    },
    vtd: { slPteFormat: "dma_pte", faultLogSegment: false, blockedDomain: false },
    smmu: { decodedEventLog: false, blockedDomain: false },
    iova: { rcacheDepot: "array" },
    host: { smmuProbesHostBridge: false },
  },
  "6.12": {
    version: "6.12",
    release: "6.12.117+deb13",
    type1: {
      alignCapabilities: true,
      longtermPinUnshare: true,
      nestingIommu: true,
      sanitizeOverflow: false,
      unmapToAddressLimit: false,
    },
    vtd: { slPteFormat: "dma_pte", faultLogSegment: false, blockedDomain: true },
    smmu: { decodedEventLog: false, blockedDomain: true },
    iova: { rcacheDepot: "list" },
    host: { smmuProbesHostBridge: false },
  },
  "7.3": {
    version: "7.3",
    release: "7.3.4+deb13",
    type1: {
      alignCapabilities: true,
      longtermPinUnshare: true,
      nestingIommu: false,
      sanitizeOverflow: true,
      unmapToAddressLimit: true,
    },
    vtd: { slPteFormat: "vtdss", faultLogSegment: true, blockedDomain: true },
    smmu: { decodedEventLog: true, blockedDomain: true },
    iova: { rcacheDepot: "list" },
    host: { smmuProbesHostBridge: true },
  },
});

/** The profile of `version` (default 6.1). Throws RangeError naming the kernels there are. */
export function kernelProfile(version: KernelVersion = DEFAULT_KERNEL): KernelProfile {
  const p = (KERNEL_PROFILES as Record<string, KernelProfile | undefined>)[version];
  if (!p) throw new RangeError(`unknown kernel ${String(version)} (one of ${KERNEL_VERSIONS.join(", ")})`);
  return p;
}
