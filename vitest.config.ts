import { defineConfig } from "vitest/config";

// Lets `pnpm bench` / `pnpm exec vitest run` cover every package in one process.
export default defineConfig({ test: { projects: ["packages/*", "apps/*", "tools/*"] } });
