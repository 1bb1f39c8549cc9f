import { describe, expect, it } from "vitest";
import { LogBuffer } from "./log-buffer.js";

describe("LogBuffer", () => {
  it("drains lines in the order printed, each once", () => {
    const b = new LogBuffer();
    b.printk("a");
    b.printk("b");
    expect(b.drain()).toEqual(["a", "b"]);
    expect(b.drain()).toEqual([]);
    b.printk("c");
    expect(b.drain()).toEqual(["c"]);
  });
});
