#!/usr/bin/env node
// `prepack` of every published package (run in the package's folder by `pnpm pack`/`npm pack`/publish):
// build dist/ so a fresh clone packs a working tarball, and copy the repository's LICENSE beside package.json
// (npm ships a package-root LICENSE whatever `files` says; the root copy is the one home of the text).
// A dist/ already newer than every source is packed as it is: rebuilding it (tsup cleans dist/ first) while a
// dependent package type-checks against it would race, as `turbo run lint:pkg` (attw --pack) does.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
copyFileSync(join(root, "LICENSE"), "LICENSE");

/** Newest (or oldest) mtime of the files below `dir`. */
function mtimes(dir, pick) {
  let out = null;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const t = e.isDirectory() ? mtimes(p, pick) : statSync(p).mtimeMs;
    if (t !== null) out = out === null ? t : pick(out, t);
  }
  return out;
}

const inputs = ["src", "native", "tsup.config.ts", "package.json"].filter((p) => existsSync(p));
const newestInput = Math.max(
  ...inputs.map((p) => (statSync(p).isDirectory() ? (mtimes(p, Math.max) ?? 0) : statSync(p).mtimeMs)),
);
const oldestOutput = existsSync("dist") ? mtimes("dist", Math.min) : null;
// lint:pkg packs right after turbo built the package and says so (IOMMU_SIM_DIST_FRESH=1).
// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by the lint:pkg script itself, not passed through turbo
const fresh = process.env.IOMMU_SIM_DIST_FRESH === "1" && oldestOutput !== null;
if (!fresh && (oldestOutput === null || oldestOutput < newestInput)) {
  execFileSync("tsup", [], { stdio: ["ignore", "inherit", "inherit"] });
}
