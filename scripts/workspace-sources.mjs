// Where each workspace package's entry points live in source: the export subpath's dist/X.js read as src/X.ts.
// Tests (vitest aliases) and the checks (scripts/check-packages.mjs) use it, so a published exports map never
// needs a development-only condition pointing at src/, which is not in the tarball.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;

/** `[specifier, absolute source file, package folder relative to the root]` for every export of every package. */
export function workspaceSources() {
  const out = [];
  for (const top of ["packages", "apps"]) {
    if (!existsSync(join(root, top))) continue;
    for (const name of readdirSync(join(root, top)).sort()) {
      const dir = join(top, name);
      const pj = join(root, dir, "package.json");
      if (!existsSync(pj)) continue;
      const pkg = JSON.parse(readFileSync(pj, "utf8"));
      for (const [sub, target] of Object.entries(pkg.exports ?? {})) {
        const file = typeof target === "string" ? target : (target?.import?.default ?? target?.default);
        const m = typeof file === "string" ? /^\.\/dist\/(.+)\.js$/.exec(file) : null;
        if (!m) continue;
        const flat = join(root, dir, "src", `${m[1]}.ts`);
        const folder = join(root, dir, "src", m[1], "index.ts");
        out.push([pkg.name + sub.slice(1), existsSync(flat) || !existsSync(folder) ? flat : folder, dir]);
      }
    }
  }
  return out;
}
