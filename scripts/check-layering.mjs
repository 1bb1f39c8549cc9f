#!/usr/bin/env node
// The package graph is the architecture. Fails on any workspace dependency or import that is not
// allowed (upward, sideways, or a cycle), and on relative imports that leave their package.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Allowed workspace dependencies of each package (a DAG). */
export const ALLOWED = {
  "@vfio/uapi": [],
  "@iommu-sim/conformance": ["@vfio/uapi"],
  "@iova/allocator": [],
  "@iommu/core": [],
  "@iommu/arm-smmu": ["@iommu/core"],
  "@iommu/vt-d": ["@iommu/core"],
  "@dma-iommu/msi-cookie": ["@iommu/core", "@iova/allocator"],
  "@vfio/type1": ["@iommu/core", "@dma-iommu/msi-cookie", "@vfio/uapi"],
  "@iommu/iommufd": ["@iommu/core", "@dma-iommu/msi-cookie", "@vfio/uapi"],
  "@iommu-sim/host": [
    "@iommu/iommufd",
    "@vfio/uapi",
    "@iova/allocator",
    "@iommu/core",
    "@iommu/arm-smmu",
    "@iommu/vt-d",
    "@dma-iommu/msi-cookie",
    "@vfio/type1",
    "@iommu/iommufd",
  ],
  "@iommu-sim/demo": [
    "@iommu/iommufd",
    "@vfio/uapi",
    "@iommu-sim/conformance",
    "@iova/allocator",
    "@iommu/core",
    "@iommu/arm-smmu",
    "@iommu/vt-d",
    "@dma-iommu/msi-cookie",
    "@vfio/type1",
    "@iommu/iommufd",
    "@iommu-sim/host",
  ],
};

/**
 * Packages a layer may use only in its tests (the real kernels' answers): listed as a devDependency and
 * imported only from test files, so nothing a user installs depends on them.
 */
export const TEST_ONLY = {
  "@iommu-sim/conformance": ["@iommu/core", "@iommu/vt-d", "@vfio/type1", "@iommu/iommufd"],
};

/** A file only tests load: `*.test.ts`, `*.bench.ts`, or under `test-support/` / `testing/`. */
const isTestFile = (file) => /\.(test|bench)\.ts$/.test(file) || /[\\/](test-support|testing)[\\/]/.test(file);

function* walk(dir) {
  for (const e of readdirSync(dir)) {
    if (e === "node_modules" || e === "dist" || e.startsWith(".")) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (/\.(ts|mts|cts|js|mjs)$/.test(e)) yield p;
  }
}

/** "driver", "hw" or "arch" for a file under a package's src/driver, src/hw or src/arch. */
function sideOf(pkgDir, file) {
  const m = /^src\/(driver|hw|arch)\//.exec(relative(pkgDir, file).split("\\").join("/"));
  return m ? m[1] : null;
}

const IMPORT =
  /(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|require\(\s*["']([^"']+)["']\s*\)/g;

/** Returns a list of violations (empty = the graph holds). */
export function checkLayering(root) {
  const problems = [];
  const pkgs = [];
  for (const top of ["packages", "apps"]) {
    for (const d of readdirSync(join(root, top))) {
      const dir = join(root, top, d);
      try {
        pkgs.push({ dir, json: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) });
      } catch {}
    }
  }
  const names = new Set(pkgs.map((p) => p.json.name));
  for (const name of Object.keys(ALLOWED)) {
    if (!names.has(name)) problems.push(`${name}: package missing`);
  }
  for (const { dir, json } of pkgs) {
    const allowed = ALLOWED[json.name];
    if (!allowed) {
      problems.push(`${json.name}: not in the layering table (scripts/check-layering.mjs)`);
      continue;
    }
    const deps = { ...json.dependencies, ...json.devDependencies, ...json.peerDependencies };
    const testOnly = (d) => TEST_ONLY[d]?.includes(json.name) ?? false;
    for (const d of Object.keys(deps)) {
      if (names.has(d) && !allowed.includes(d) && !testOnly(d))
        problems.push(`${json.name}: depends on ${d}, which the layering forbids`);
      if (testOnly(d) && !(d in (json.devDependencies ?? {})))
        problems.push(`${json.name}: ${d} is for tests only: list it in devDependencies`);
    }
    for (const file of walk(dir)) {
      const src = readFileSync(file, "utf8");
      const side = sideOf(dir, file);
      for (const m of src.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2] ?? m[3];
        const rel = relative(root, file);
        if (spec.startsWith(".")) {
          const target = resolve(dirname(file), spec);
          // Driver and hardware meet only through memory and registers; src/arch holds what both follow.
          const to = sideOf(dir, target);
          if (side && to && side !== to && !(to === "arch" && side !== "arch") && !/\.(test|bench)\.ts$/.test(file)) {
            problems.push(
              `${rel}: ${side} code imports ${spec} from src/${to}/ (driver and hardware meet only through memory and registers)`,
            );
          }
          if (
            relative(dir, target).startsWith("..") &&
            !target.startsWith(join(root, "vitest.shared")) &&
            !target.startsWith(join(root, "tsup.shared")) &&
            !target.startsWith(join(root, "scripts"))
          ) {
            problems.push(`${rel}: relative import ${spec} leaves its package`);
          }
          continue;
        }
        const pkg = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
        if (testOnly(pkg) && !isTestFile(file)) {
          problems.push(`${rel}: imports ${pkg}, which only tests of ${json.name} may use`);
        } else if (testOnly(pkg)) {
          if (!(pkg in deps)) problems.push(`${rel}: imports ${pkg} without declaring it in package.json`);
        } else if (names.has(pkg) && pkg !== json.name && !allowed.includes(pkg)) {
          problems.push(`${rel}: imports ${pkg}, which the layering forbids for ${json.name}`);
        } else if (names.has(pkg) && pkg !== json.name && !(pkg in deps)) {
          problems.push(`${rel}: imports ${pkg} without declaring it in package.json`);
        }
      }
    }
  }
  // The table itself must be acyclic.
  const state = new Map();
  const visit = (n, path) => {
    if (state.get(n) === 1) problems.push(`cycle: ${[...path, n].join(" -> ")}`);
    if (state.get(n)) return;
    state.set(n, 1);
    const testDeps = Object.keys(TEST_ONLY).filter((t) => TEST_ONLY[t].includes(n));
    for (const d of [...(ALLOWED[n] ?? []), ...testDeps]) visit(d, [...path, n]);
    state.set(n, 2);
  };
  for (const n of Object.keys(ALLOWED)) visit(n, []);
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const problems = checkLayering(root);
  for (const p of problems) console.error(`layering: ${p}`);
  if (problems.length) process.exit(1);
  console.log("layering: package graph holds");
}
