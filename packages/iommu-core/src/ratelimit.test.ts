import { describe, expect, it } from "vitest";
import { Ratelimit } from "./ratelimit.js";

describe("___ratelimit (DEFAULT_RATELIMIT_INTERVAL 5 s, BURST 10)", () => {
  it("allows `burst` messages per interval and starts a new window when the interval has passed", () => {
    let t = 0;
    const rs = new Ratelimit(5000, 10, () => t);
    expect(Array.from({ length: 12 }, () => rs.allow())).toEqual([...Array(10).fill(true), false, false]);
    expect(rs.missed).toBe(2);
    t = 4999;
    expect(rs.allow()).toBe(false);
    t = 5000;
    expect(rs.allow()).toBe(true);
    expect(rs.missed).toBe(0);
  });

  it("without a clock one window lasts forever; interval 0 never limits", () => {
    const forever = new Ratelimit();
    expect(Array.from({ length: 11 }, () => forever.allow()).filter(Boolean)).toHaveLength(10);
    const off = new Ratelimit(0, 1);
    expect([off.allow(), off.allow()]).toEqual([true, true]);
  });
});
