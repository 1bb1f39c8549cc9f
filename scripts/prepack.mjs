#!/usr/bin/env node
// `prepack` of every published package (run in the package's folder by `pnpm pack`/`npm pack`/publish):
// build dist/ so a fresh clone packs a working tarball, and copy the repository's LICENSE beside package.json
// (npm ships a package-root LICENSE whatever `files` says; the root copy is the one home of the text).
import { execFileSync } from "node:child_process";
import { copyFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
copyFileSync(join(root, "LICENSE"), "LICENSE");
// lint:pkg packs right after turbo built this package (IOMMU_SIM_DIST_FRESH=1): rebuilding there would wipe dist/
// while a dependent package's build is reading its d.ts.
// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by the lint:pkg script itself, not passed through turbo
if (process.env.IOMMU_SIM_DIST_FRESH !== "1") execFileSync("tsup", [], { stdio: ["ignore", "inherit", "inherit"] });
