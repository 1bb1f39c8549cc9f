/**
 * A driver's printk lines, kept in the order printed until the host's kernel log pulls them (`drain`).
 * Every driver logs through one (`IommuDriver.drainLog`), so the host wires all drivers' logs alike.
 */
export class LogBuffer {
  private readonly lines: string[] = [];

  /** printk: one line of text, no trailing newline. */
  printk(line: string): void {
    this.lines.push(line);
  }

  /** The lines printed since the last drain, oldest first; forgets them. */
  drain(): string[] {
    return this.lines.splice(0);
  }
}
