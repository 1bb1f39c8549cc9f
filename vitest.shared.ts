import { availableParallelism } from "node:os";
import { defineProject } from "vitest/config";
import { workspaceSources } from "./scripts/workspace-sources.mjs";

/**
 * Workers per package. The root `test` script runs two packages at a time (turbo `--concurrency=2`), so two
 * vitest processes with half the cores each keep the suite at one worker per core, on a 2-core CI box too.
 */
const MAX_WORKERS = Math.max(1, Math.floor(availableParallelism() / 2));

/** Workspace imports read `src/` (exact specifiers: `@iommu/core` must not catch `@iommu/core/testing`). */
function sourceAliases() {
  return workspaceSources().map(([spec, file]) => ({
    find: new RegExp(`^${spec.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`),
    replacement: file,
  }));
}

/** One vitest project per package; `TEST_DIST=1` runs the same tests against the built `dist/`. */
export function project(name: string) {
  return defineProject({
    resolve: { alias: process.env.TEST_DIST ? [] : sourceAliases() },
    test: {
      name,
      include: ["src/**/*.test.ts", "test/**/*.test.ts"],
      benchmark: { include: ["src/**/*.bench.ts", "bench/**/*.bench.ts"] },
      maxWorkers: MAX_WORKERS,
      // A test's budget is in work (fast-check numRuns), not time: this bound only catches hangs, and is wide
      // because a loaded 2-core machine runs a test several times slower than an idle one.
      testTimeout: 60_000,
      tags: [
        {
          name: "slow",
          description:
            "over ~2 s on an idle core (a fast-check property with a workload per run); skip with --tags-filter='!slow'",
          timeout: 180_000,
        },
      ],
      // A test that asserts nothing cannot fail: every test must make at least one assertion.
      expect: { requireAssertions: true },
    },
  });
}
