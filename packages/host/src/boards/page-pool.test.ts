import { ErrnoError } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { HostPagePool } from "./page-pool.js";

describe("HostPagePool: errors are errnos (issue 13 rule 4)", () => {
  it("a fault past the host's RAM is ENOMEM and changes nothing", () => {
    const pool = new HostPagePool(0x1000_0000n, 0x2000n);
    expect(pool.allocPage()).toBe(0x1000_0000n);
    expect(pool.allocPage()).toBe(0x1000_1000n);
    const e = (() => {
      try {
        pool.allocPage();
      } catch (x) {
        return x;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(ErrnoError);
    expect((e as ErrnoError).code).toBe("ENOMEM");
    expect(pool.pagesInUse).toBe(2);
    expect(() => pool.allocPages(2)).toThrow(ErrnoError);
    expect(pool.pagesInUse).toBe(2);
  });
});
