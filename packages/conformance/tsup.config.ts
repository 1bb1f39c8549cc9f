import { defineConfig } from "tsup";

// Private and test-only: ESM alone (the fixture root is found from import.meta.url).
export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  dts: { compilerOptions: { composite: false, incremental: false } },
  sourcemap: true,
  clean: true,
  target: "node20",
});
