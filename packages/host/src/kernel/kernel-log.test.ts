/** The host kernel's log (`Board.kernelLog`): one ordered stream fed by every kernel-side component. */
import { describe, expect, it } from "vitest";
import { createBoard } from "../boards/index.js";
import { KernelLog, kmsgEscape } from "./kernel-log.js";

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
  it("type1's warnings on behalf of a board process are kernel log lines too", () => {
    const b = createBoard("x86-q35-vtd");
    const p = b.createProcess({ memlockBytes: 0n, capIpcLock: false });
    // vfio_pin_pages_remote's pr_warn lands in the process's klog (see @vfio/type1 pin.ts)
    p.klog.push("vfio_pin_pages_remote: RLIMIT_MEMLOCK (0) exceeded");
    expect(b.kernelLog()).toEqual(["vfio_pin_pages_remote: RLIMIT_MEMLOCK (0) exceeded"]);
    expect(p.klog).toEqual([]);
  });
});
