#!/usr/bin/env node
// Checks what a published package promises: no development-only export condition (src/ is not in the
// tarball), the metadata npm shows (license, repository with directory, homepage, bugs, keywords), a
// prepack that builds, a shipped CHANGELOG.md, and a tsconfig `paths` entry per export so the workspace type-checks against src/.
import { existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { workspaceSources } from "./workspace-sources.mjs";

const root = new URL("..", import.meta.url).pathname;
const problems = [];
const paths = JSON.parse(readFileSync(join(root, "tsconfig.build-base.json"), "utf8")).compilerOptions.paths ?? {};
const dirs = new Set();
for (const [spec, file, dir] of workspaceSources()) {
  dirs.add(dir);
  const want = `./${relative(root, file)}`;
  if (paths[spec]?.[0] !== want)
    problems.push(
      `tsconfig.build-base.json: paths["${spec}"] must be ["${want}"] (run scripts/sync-tsconfig-paths.mjs)`,
    );
}
for (const dir of dirs) {
  const pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
  if (pkg.private) continue;
  const where = `${dir}/package.json`;
  const conditions = JSON.stringify(pkg.exports ?? {}).match(/"[^"]*source[^"]*":/g);
  if (conditions) problems.push(`${where}: exports carry ${conditions.join(" ")} (src/ is not published)`);
  if (pkg.license !== "MIT") problems.push(`${where}: license must be MIT`);
  if (pkg.repository?.directory !== dir) problems.push(`${where}: repository.directory must be "${dir}"`);
  if (!pkg.repository?.url) problems.push(`${where}: repository.url is missing`);
  if (!pkg.homepage) problems.push(`${where}: homepage is missing`);
  if (!pkg.bugs?.url) problems.push(`${where}: bugs.url is missing`);
  if (!Array.isArray(pkg.keywords) || pkg.keywords.length === 0) problems.push(`${where}: keywords are missing`);
  if (pkg.scripts?.prepack !== "node ../../scripts/prepack.mjs") problems.push(`${where}: prepack must build`);
  if (!pkg.scripts?.["lint:pkg"]?.includes("IOMMU_SIM_DIST_FRESH=1 attw --pack")) {
    problems.push(`${where}: lint:pkg must pack with IOMMU_SIM_DIST_FRESH=1 (no rebuild under a dependent's build)`);
  }
  if (!existsSync(join(root, dir, "CHANGELOG.md"))) problems.push(`${dir}: CHANGELOG.md is missing`);
  if (!pkg.files?.includes("CHANGELOG.md")) problems.push(`${where}: files must include CHANGELOG.md`);
}
for (const p of problems) console.error(p);
process.exit(problems.length ? 1 : 0);
