/**
 * The host kernel's printk buffer as one ordered stream (what `dmesg` / /dev/kmsg show). Components log
 * in two ways: pushing a line (`printk`, e.g. the arm-smmu-v3 event printer, vfio-pci, ACPI) or keeping
 * their own list that the buffer pulls (`addSource`, e.g. the VT-d driver's `drainLog`, a type1 process's
 * `klog`). A pull source is drained whenever anything else logs and on `drain()`, so lines keep the order
 * in which the model produced them as long as a pull source is synced right after it logs (`sync()`).
 */
export class KernelLog {
  private readonly lines: string[] = [];
  private readonly sources: (() => readonly string[])[] = [];

  /** printk: one line of text (no trailing newline). */
  printk(line: string): void {
    this.sync();
    this.lines.push(line);
  }

  /** Register a component that buffers its own lines; `drain` returns and forgets them. */
  addSource(drain: () => readonly string[]): void {
    this.sources.push(drain);
  }

  /** Pull what the sources logged since the last pull. */
  sync(): void {
    for (const s of this.sources) {
      const got = s();
      if (got.length) this.lines.push(...got);
    }
  }

  /** Every line since the last drain, oldest first. */
  drain(): string[] {
    this.sync();
    return this.lines.splice(0);
  }
}

/**
 * A log line as a /dev/kmsg reader sees its text: bytes below 0x20, from 0x7f, and the backslash are
 * written as `\xNN` (kernel/printk: the ext-format escaping of `msg_add_ext_text`).
 */
export function kmsgEscape(line: string): string {
  let out = "";
  for (const ch of line) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || c >= 0x7f || ch === "\\") {
      // multi-byte characters are escaped byte by byte, as the kernel sees UTF-8
      for (const b of new TextEncoder().encode(ch)) out += `\\x${b.toString(16).padStart(2, "0")}`;
    } else out += ch;
  }
  return out;
}
