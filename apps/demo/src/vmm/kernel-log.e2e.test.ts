/** The host kernel's log (`Board.kernelLog`) as a VMM run feeds it: vfio-pci, ACPI and IOMMU fault lines. */
import { createBoard } from "@iommu-sim/host";
import { describe, expect, it } from "vitest";
import { Vmm } from "./vmm.js";

const GiB = 1n << 30n;

describe("Board.kernelLog under a VMM", () => {
  it("arm64 virt: vfio-pci enables memory decoding once (the kernel left it off), SMMU events are rate-limited", () => {
    const b = createBoard("arm64-virt-smmuv3", { eduCount: 2 });
    const r = new Vmm(b, { guestRam: 5n * GiB, naive: true }).run();
    expect(r.dma?.faults).toBeGreaterThan(0);
    const log = b.kernelLog();
    expect(log.filter((l) => l.startsWith("vfio-pci"))).toEqual([
      "vfio-pci 0000:00:01.0: enabling device (0000 -> 0002)",
    ]);
    const events = log.filter((l) => / event 0x[0-9a-f]{2} received:$/.test(l));
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThanOrEqual(10); // DEFAULT_RATELIMIT_BURST, no clock to end the window
    expect(events[0]).toBe("arm-smmu-v3 9050000.smmuv3: event 0x10 received:");
    // each event: the header and its four 64-bit words, tab-indented
    const i = log.indexOf(events[0]!);
    for (const l of log.slice(i + 1, i + 5)) expect(l).toMatch(/^arm-smmu-v3 9050000\.smmuv3: \t0x[0-9a-f]{16}$/);
    expect(b.kernelLog()).toEqual([]);
    // decoding stays on after close: a second open logs nothing
    b.vfioPci.handle(b.edus[0]!.name)?.close();
    const g = b.groupIdOf(b.edus[0]!);
    b.vfioPci.openDevice(g, b.edus[0]!.name);
    expect(b.kernelLog()).toEqual([]);
  });

  it("x86 q35: SeaBIOS enabled decoding (no vfio-pci line); ACPI logs each INTx link's first allocation", () => {
    const b = createBoard("x86-q35-vtd", { eduCount: 3 });
    new Vmm(b, { guestRam: GiB }).run();
    expect(b.kernelLog()).toEqual(["ACPI: \\_SB_.GSIF: Enabled at IRQ 21"]);
    const v2 = new Vmm(b, { guestRam: GiB, device: b.edus[2]!, name: "vmm2" });
    v2.run();
    expect(b.kernelLog().filter((l) => l.startsWith("ACPI"))).toEqual(["ACPI: \\_SB_.GSIH: Enabled at IRQ 23"]);
  });

  it("x86 q35: a DMA fault is logged by dmar_fault as the kernel prints it", () => {
    const b = createBoard("x86-q35-vtd");
    const r = new Vmm(b, { guestRam: 5n * GiB, naive: true }).run();
    expect(r.dma?.faults).toBeGreaterThan(0);
    const log = b.kernelLog().filter((l) => l.startsWith("DMAR"));
    expect(log[0]).toBe("DMAR: DRHD: handling fault status reg 2");
    expect(log[1]).toMatch(
      /^DMAR: \[DMA (Read|Write) NO_PASID\] Request device \[00:01\.0\] fault addr 0x[0-9a-f]+ \[fault reason 0x0[56]\] PTE (Read|Write) access is not set$/,
    );
  });
});
