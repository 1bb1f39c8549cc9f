// iommu-demo: the CLI entry point (bin of @iommu-sim/demo; `pnpm demo` runs it with no arguments).
import { nodeIo, runCli } from "./cli/cli.js";

process.exitCode = runCli(process.argv.slice(2), nodeIo());
