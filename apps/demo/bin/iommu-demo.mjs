#!/usr/bin/env node
// The `iommu-demo` bin. In the workspace it first brings dist/ up to date (a turbo build, cached when nothing
// changed; its output is shown only when it fails, so stdout and stderr stay the CLI's), then runs the built CLI.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const app = fileURLToPath(new URL("..", import.meta.url));
const root = fileURLToPath(new URL("../../..", import.meta.url));
if (existsSync(`${root}turbo.json`) && process.env.IOMMU_DEMO_NO_BUILD !== "1") {
  try {
    execFileSync(
      process.execPath,
      [
        `${root}node_modules/turbo/bin/turbo`,
        "run",
        "build",
        "--filter=@iommu-sim/demo...",
        "--output-logs=errors-only",
        `--cache-dir=${process.env.XDG_CACHE_HOME || `${process.env.HOME}/.cache`}/iommu-sim/turbo`,
      ],
      { cwd: root, stdio: "pipe", env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" } },
    );
  } catch (e) {
    process.stderr.write(`${e.stdout ?? ""}${e.stderr ?? ""}`);
    console.error("iommu-demo: the build failed (see above)");
    process.exit(3);
  }
}
await import(pathToFileURL(`${app}dist/main.js`).href);
