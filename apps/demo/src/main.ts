// iommu-demo: the CLI entry point (bin of @iommu-sim/demo; `pnpm demo` runs it with no arguments).
import { nodeIo } from "./cli/cli.js";
import { runCliAsync } from "./cli/door.js";

runCliAsync(process.argv.slice(2), nodeIo()).then((code) => {
  process.exitCode = code;
});
