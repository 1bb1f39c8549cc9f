/**
 * VT-d remapping-hardware register file: architected offsets and bit fields (Intel VT-d spec ch. 11;
 * the names follow Linux's include/linux/intel-iommu.h / intel/iommu.h so driver and hardware read alike).
 */

export const REG = {
  VER: 0x00,
  CAP: 0x08,
  ECAP: 0x10,
  GCMD: 0x18,
  GSTS: 0x1c,
  RTADDR: 0x20,
  CCMD: 0x28,
  FSTS: 0x34,
  FECTL: 0x38,
  FEDATA: 0x3c,
  FEADDR: 0x40,
  FEUADDR: 0x44,
  AFLOG: 0x58,
  PMEN: 0x64,
  IQH: 0x80,
  IQT: 0x88,
  IQA: 0x90,
  ICS: 0x9c,
  IRTA: 0xb8,
} as const;

/** Size of the MMIO window we decode (one 4 KiB page, as QEMU's intel-iommu). */
export const REG_WINDOW = 0x1000n;

/** QEMU's placement: IOTLB registers at 0xf0 (ECAP.IRO = 0xf), one fault recording register at 0x220 (CAP.FRO = 0x22). */
export const QEMU_IOTLB_OFFSET = 0xf0;
export const QEMU_FRCD_OFFSET = 0x220;

/** Global command / status bits (GCMD write, GSTS read). */
export const GCMD = {
  TE: 1 << 31,
  SRTP: 1 << 30,
  SFL: 1 << 29,
  EAFL: 1 << 28,
  WBF: 1 << 27,
  QIE: 1 << 26,
  IRE: 1 << 25,
  SIRTP: 1 << 24,
  CFI: 1 << 23,
} as const;

/** GSTS bits mirror GCMD at the same positions (TES, RTPS, FLS, AFLS, WBFS, QIES, IRES, IRTPS, CFIS). */
export const GSTS = {
  TES: 1 << 31,
  RTPS: 1 << 30,
  WBFS: 1 << 27,
  QIES: 1 << 26,
  IRES: 1 << 25,
  IRTPS: 1 << 24,
  CFIS: 1 << 23,
} as const;

/** CAP register fields. */
export const CAP = {
  ND_SHIFT: 0n,
  RWBF: 1n << 4n,
  CM: 1n << 7n,
  SAGAW_SHIFT: 8n,
  MGAW_SHIFT: 16n,
  FRO_SHIFT: 24n,
  SLLPS_SHIFT: 34n,
  PSI: 1n << 39n,
  NFR_SHIFT: 40n,
  MAMV_SHIFT: 48n,
  /** Write draining (DWD) and read draining (DRD): the driver then sets DW/DR in IOTLB invalidations. */
  DWD: 1n << 54n,
  DRD: 1n << 55n,
} as const;

/** ECAP register fields. */
export const ECAP = {
  C: 1n << 0n,
  QI: 1n << 1n,
  DT: 1n << 2n,
  IR: 1n << 3n,
  EIM: 1n << 4n,
  PT: 1n << 6n,
  SC: 1n << 7n,
  IRO_SHIFT: 8n,
  MHMV_SHIFT: 20n,
} as const;

/** CCMD (context-command register, 64-bit). */
export const CCMD = {
  ICC: 1n << 63n,
  CIRG_SHIFT: 61n,
  CAIG_SHIFT: 59n,
  GLOBAL: 1n,
  DOMAIN: 2n,
  DEVICE: 3n,
} as const;

/** IOTLB invalidate register (at IRO*16 + 8) and IVA register (at IRO*16). */
export const IOTLB = {
  IVT: 1n << 63n,
  IIRG_SHIFT: 60n,
  IAIG_SHIFT: 57n,
  DID_SHIFT: 32n,
  /** Drain reads / writes (register: DMA_TLB_READ_DRAIN, DMA_TLB_WRITE_DRAIN). */
  DR: 1n << 49n,
  DW: 1n << 48n,
  /** The same in a queued IOTLB descriptor (QI_IOTLB_DR, QI_IOTLB_DW). */
  QI_DR: 1n << 7n,
  QI_DW: 1n << 6n,
  GLOBAL: 1n,
  DSI: 2n,
  PSI: 3n,
} as const;

/** Fault status bits. PPF is computed from the fault recording registers' F bits. */
export const FSTS = {
  PFO: 1 << 0,
  PPF: 1 << 1,
  IQE: 1 << 4,
  FRI_SHIFT: 8,
} as const;

export const FECTL = { IM: 1 << 31, IP: 1 << 30 } as const;

/** Fault recording register (128 bits): F and T in the top dword; T = 1 means a read request. */
export const FRCD = {
  F: 1 << 31,
  T: 1 << 30,
} as const;

/** IRTA: table base (4 KiB aligned), EIME bit 11, size S in bits 3:0 (2^(S+1) entries). */
export const IRTA = { EIME: 1n << 11n, S_MASK: 0xfn } as const;

/** Intel's fault reasons (VT-d spec 7.1.3; Linux dmar.c strings are in `faultReasonText`). */
export const FAULT = {
  ROOT_NOT_PRESENT: 0x1,
  CONTEXT_NOT_PRESENT: 0x2,
  CONTEXT_INVALID: 0x3,
  BEYOND_MGAW: 0x4,
  WRITE: 0x5,
  READ: 0x6,
  PAGING_ENTRY_INVALID: 0x7,
  ROOT_ADDR_INVALID: 0x8,
  CONTEXT_ADDR_INVALID: 0x9,
  ROOT_RESERVED: 0xa,
  CONTEXT_RESERVED: 0xb,
  PTE_RESERVED: 0xc,
  BLOCKED: 0xd,
  IR_REQ_RESERVED: 0x20,
  IR_INDEX: 0x21,
  IR_NOT_PRESENT: 0x22,
  IR_ROOT_INVALID: 0x23,
  IR_IRTE_RESERVED: 0x24,
  IR_COMPAT_BLOCKED: 0x25,
  IR_SID: 0x26,
} as const;

const DMA_REASONS = [
  "Software",
  "Present bit in root entry is clear",
  "Present bit in context entry is clear",
  "Invalid context entry",
  "Access beyond MGAW",
  "PTE Write access is not set",
  "PTE Read access is not set",
  "Next page table ptr is invalid",
  "Root table address invalid",
  "Context table ptr is invalid",
  "non-zero reserved fields in RTP",
  "non-zero reserved fields in CTP",
  "non-zero reserved fields in PTE",
  "PCE for translation request specifies blocking",
];
const IR_REASONS = [
  "Detected reserved fields in the decoded interrupt-remapped request",
  "Interrupt index exceeded the interrupt-remapping table size",
  "Present field in the IRTE entry is clear",
  "Error accessing interrupt-remapping table pointed by IRTA_REG",
  "Detected reserved fields in the IRTE entry",
  "Blocked a compatibility format interrupt request",
  "Blocked an interrupt request due to source-id verification failure",
];

/** The text Linux's dmar.c prints for a fault reason (`dmar_get_fault_reason`). */
export function faultReasonText(reason: number): string {
  if (reason >= 0x20 && reason - 0x20 < IR_REASONS.length) return IR_REASONS[reason - 0x20] as string;
  return DMA_REASONS[reason] ?? "Unknown";
}

/** Interrupt address window: a write here is an interrupt request, not memory (x86 0xFEEx_xxxx). */
export const INTERRUPT_WINDOW_START = 0xfee00000n;
export const INTERRUPT_WINDOW_END = 0xfeefffffn;

/** Second-level PTE bits. */
export const PTE = {
  R: 1n << 0n,
  W: 1n << 1n,
  PS: 1n << 7n,
  SNP: 1n << 11n,
  ADDR_MASK: ((1n << 52n) - 1n) & ~0xfffn,
} as const;

/** Root / context entry bits (legacy mode). */
export const CTX = {
  P: 1n,
  FPD: 2n,
  TT_SHIFT: 2n,
  TT_MULTI_LEVEL: 0n,
  TT_DEV_IOTLB: 1n,
  TT_PASS_THROUGH: 2n,
  DID_SHIFT: 8n,
} as const;

/** Queued-invalidation descriptor types (low 4 bits of qword 0). */
export const QI = {
  CC: 1n,
  IOTLB: 2n,
  IEC: 4n,
  WAIT: 5n,
  WAIT_SW: 1n << 5n,
} as const;
