import { defineConfig, type Options } from "tsup";

/** Library build: ESM + CJS + d.ts with a typed exports map. */
export function library(entry: Options["entry"] = ["src/index.ts"]) {
  return defineConfig({
    entry,
    format: ["esm", "cjs"],
    // rollup-plugin-dts builds a program from the entries only; composite would demand every file listed.
    dts: { compilerOptions: { composite: false, incremental: false } },
    sourcemap: true,
    clean: true,
    target: "node20",
  });
}
