import { defineConfig, type Options } from "tsup";

/** Library build: ESM + CJS + d.ts with a typed exports map. */
export function library(entry: Options["entry"] = ["src/index.ts"]) {
  return defineConfig({
    entry,
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node20",
  });
}
