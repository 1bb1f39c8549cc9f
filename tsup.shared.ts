import { defineConfig, type Options } from "tsup";

/** Library build: ESM + CJS + d.ts with a typed exports map. */
export function library(entry: Options["entry"] = ["src/index.ts"]) {
  return defineConfig({
    entry,
    format: ["esm", "cjs"],
    // Entry points share chunks in CJS too (ESM splits by default): one ErrnoError class for `.` and `./testing`,
    // so `instanceof` holds across them. Without it each CJS entry bundles its own copy of the shared modules.
    splitting: true,
    // rollup-plugin-dts builds a program from the entries only; composite would demand every file listed.
    // No `paths`: workspace dependencies resolve as a user's would, to their built d.ts (builds run in
    // dependency order: turbo's ^build, `pnpm -r pack`), and stay imports instead of sources of this build.
    dts: { compilerOptions: { composite: false, incremental: false, paths: {} } },
    // import.meta.url in the CJS build (a package locating its own files, e.g. host's native/preload.c).
    shims: true,
    sourcemap: true,
    clean: true,
    target: "node20",
  });
}
