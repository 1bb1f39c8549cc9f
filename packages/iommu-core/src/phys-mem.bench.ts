import { bench, describe } from "vitest";
import { PhysicalMemory } from "./phys-mem.js";

// Page-table walks are read64 chains: this is the cost floor of every driver walk.
const mem = new PhysicalMemory();
mem.addMmio(0x900_0000n, 0x1000n, { read: () => 0n, write: () => {} }, "uart");
mem.addRam(0x4000_0000n, 0x4000_0000n, "ram");
mem.addRam(0x1_0000_0000n, 0x1000_0000n, "ram-high");
for (let i = 0n; i < 512n; i++) mem.write64(0x4000_0000n + i * 8n, i);
let sink = 0n;

describe("u64 access", () => {
  bench("read64 (RAM fast path)", () => {
    for (let i = 0n; i < 512n; i++) sink ^= mem.read64(0x4000_0000n + i * 8n);
  });
  bench("reference: read(addr, 8) + DataView", () => {
    for (let i = 0n; i < 512n; i++) {
      sink ^= new DataView(mem.read(0x4000_0000n + i * 8n, 8).buffer).getBigUint64(0, true);
    }
  });
  bench("write64 (RAM fast path)", () => {
    for (let i = 0n; i < 512n; i++) mem.write64(0x4000_1000n + i * 8n, i);
  });
});

export { sink };
