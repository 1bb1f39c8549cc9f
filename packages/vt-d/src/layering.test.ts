/**
 * Driver and hardware meet only through memory and registers: no module of `src/driver/` imports from
 * `src/hw/`, and none of `src/hw/` from `src/driver/`. What both follow (register offsets, table
 * formats, fault codes) lives in `src/arch/`, constants only.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = new URL(".", import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(join(SRC, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !/\.(test|bench)\.ts$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

function importsOf(file: string): string[] {
  return [...readFileSync(file, "utf8").matchAll(/from\s+["']([^"']+)["']/g)].map((m) => m[1] as string);
}

describe("layering inside the package", () => {
  it("the driver imports nothing from the hardware model", () => {
    const bad = sources("driver").flatMap((f) =>
      importsOf(f)
        .filter((s) => /(^|\/)hw\//.test(s))
        .map((s) => `${f}: ${s}`),
    );
    expect(bad).toEqual([]);
  });

  it("the hardware model imports nothing from the driver", () => {
    const bad = sources("hw").flatMap((f) =>
      importsOf(f)
        .filter((s) => /(^|\/)driver\//.test(s))
        .map((s) => `${f}: ${s}`),
    );
    expect(bad).toEqual([]);
  });

  it("src/arch holds constants and pure functions only: it imports from neither side", () => {
    const bad = sources("arch").flatMap((f) =>
      importsOf(f)
        .filter((s) => /(^|\/)(hw|driver)\//.test(s))
        .map((s) => `${f}: ${s}`),
    );
    expect(bad).toEqual([]);
  });
});
