/** IOVA maps shaped like the two boards' after a VMM run (for renderer tests and the browser test). */
import type { IovaMap } from "./iova-map.js";

export const ARM_MAP: IovaMap = {
  board: "arm64-virt-smmuv3",
  device: "0000:00:01.0",
  group: 0,
  apertureEnd: 0xffffffffffffn,
  regions: [
    { kind: "valid", start: 0n, end: 0x7ffffffn, label: "valid IOVA range" },
    { kind: "sw-msi", start: 0x8000000n, end: 0x80fffffn, label: "software MSI window" },
    { kind: "doorbell", start: 0x8000000n, end: 0x8000fffn, label: "ITS doorbell page (phys 0x8090000)" },
    { kind: "valid", start: 0x8100000n, end: 0xffffffffffffn, label: "valid IOVA range" },
    { kind: "mapping", start: 0x40000000n, end: 0x13fffffffn, label: "guest RAM ram" },
  ],
};

export const X86_MAP: IovaMap = {
  board: "x86-q35-vtd",
  device: "0000:00:01.0",
  group: 1,
  apertureEnd: 0x7fffffffffn,
  regions: [
    { kind: "valid", start: 0n, end: 0xfedfffffn, label: "valid IOVA range" },
    { kind: "mapping", start: 0n, end: 0x7fffffffn, label: "guest RAM below-4g" },
    { kind: "msi", start: 0xfee00000n, end: 0xfeefffffn, label: "MSI window (hardware)" },
    { kind: "valid", start: 0xfef00000n, end: 0x7fffffffffn, label: "valid IOVA range" },
    { kind: "mapping", start: 0x100000000n, end: 0x17fffffffn, label: "guest RAM above-4g" },
  ],
};
