#!/usr/bin/env node
// Sums every package's vitest JSON report into the plain closing line CI reads:
// "N passed, N failed[, N skipped]". Exits 1 on failures, missing reports, or no tests at all.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const top of ["packages", "apps"]) {
  for (const name of readdirSync(join(root, top))) {
    const dir = join(root, top, name);
    if (!existsSync(join(dir, "package.json"))) continue;
    const report = join(dir, ".vitest", "report.json");
    if (!existsSync(report)) {
      missing.push(`${top}/${name}`);
      continue;
    }
    const r = JSON.parse(readFileSync(report, "utf8"));
    passed += r.numPassedTests ?? 0;
    failed += r.numFailedTests ?? 0;
    // A suite that failed to load has no failed tests of its own: count it once.
    if (r.success === false && !r.numFailedTests) failed += Math.max(1, r.numFailedTestSuites ?? 0);
    skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  }
}
if (missing.length) console.log(`no test report from: ${missing.join(", ")}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || missing.length > 0 || passed === 0 ? 1 : 0);
