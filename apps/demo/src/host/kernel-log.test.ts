/** The host kernel's log (`Board.kernelLog`): one ordered stream fed by every kernel-side component. */
import { describe, expect, it } from "vitest";
import { createBoard } from "../boards/index.js";
import { Vmm } from "../vmm/vmm.js";
import { KernelLog, kmsgEscape } from "./kernel-log.js";

const GiB = 1n << 30n;

describe("KernelLog", () => {
  it("keeps the order of pushed lines and of lines buffered by pull sources, and drains", () => {
    const log = new KernelLog();
    const buffered: string[] = [];
    log.addSource(() => buffered.splice(0));
    buffered.push("a");
    log.printk("b"); // "a" was logged first: it is pulled before "b" goes in
    buffered.push("c");
    expect(log.drain()).toEqual(["a", "b", "c"]);
    expect(log.drain()).toEqual([]);
  });

  it("kmsgEscape writes control bytes, DEL and the backslash as \\xNN, like /dev/kmsg", () => {
    expect(kmsgEscape("arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000")).toBe(
      "arm-smmu-v3 9050000.smmuv3: \\x090x0000000000000000",
    );
    expect(kmsgEscape("ACPI: \\_SB_.GSIF: Enabled at IRQ 21")).toBe("ACPI: \\x5c_SB_.GSIF: Enabled at IRQ 21");
    expect(kmsgEscape("\x7fé")).toBe("\\x7f\\xc3\\xa9");
  });
});

describe("Board.kernelLog", () => {
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

  it("type1's warnings on behalf of a board process are kernel log lines too", () => {
    const b = createBoard("x86-q35-vtd");
    const p = b.createProcess({ memlockBytes: 0n, capIpcLock: false });
    // vfio_pin_pages_remote's pr_warn lands in the process's klog (see @vfio/type1 pin.ts)
    p.klog.push("vfio_pin_pages_remote: RLIMIT_MEMLOCK (0) exceeded");
    expect(b.kernelLog()).toEqual(["vfio_pin_pages_remote: RLIMIT_MEMLOCK (0) exceeded"]);
    expect(p.klog).toEqual([]);
  });
});
