/**
 * What the generator knows of the recorder's two QEMU machines under Linux 6.1 (shared/conformance/README.md):
 * the MSI reserved window and the last IOVA the aperture allows. Only used to aim at edges; the kernel's
 * answers come from the recording, never from here.
 */
export const PLATFORMS = {
  x86: {
    name: "x86-q35-vtd",
    /** `0x00000000fee00000 0x00000000feefffff msi` */
    msiStart: 0xfee0_0000n,
    msiLast: 0xfeef_ffffn,
    /** 39-bit address width: valid ranges end at 0x7fffffffff. */
    apertureLast: 0x7f_ffff_ffffn,
    /** No doorbell page in the DMA tables on VT-d. */
    doorbellIova: null,
  },
  arm64: {
    name: "arm64-virt-smmuv3",
    /** `0x0000000008000000 0x00000000080fffff msi` (software MSI window) */
    msiStart: 0x800_0000n,
    msiLast: 0x80f_ffffn,
    /** QEMU's SMMUv3 stays at 48 bits of input. */
    apertureLast: 0xffff_ffff_ffffn,
    /** The ITS doorbell page is mapped at the window's first page once MSI is on (MSI address 0x8000040). */
    doorbellIova: 0x800_0040n,
  },
};

/** edu's DMA engine masks addresses to 28 bits (QEMU 7.2): DMA only below this IOVA. */
export const EDU_DMA_REACH = 0x1000_0000n;
