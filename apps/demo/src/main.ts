// iommu-demo: the CLI entry point (bin of @iommu-sim/demo; `pnpm demo` runs it with no arguments).
import { readFileSync } from "node:fs";
import { nodeIo } from "./cli/cli.js";
import { runCliAsync } from "./cli/door.js";

// src/main.ts and dist/main.js both sit one folder below the package's package.json.
const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};
runCliAsync(process.argv.slice(2), nodeIo(version)).then((code) => {
  process.exitCode = code;
});
