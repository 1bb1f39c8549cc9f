import { defineProject } from "vitest/config";

/** Export condition that points workspace imports at `src/` (see toolchain.md). */
export const SOURCE_CONDITION = "@iommu/source";

/** One vitest project per package; `TEST_DIST=1` runs the same tests against the built `dist/`. */
export function project(name: string) {
  const conditions = process.env.TEST_DIST ? [] : [SOURCE_CONDITION];
  return defineProject({
    ssr: { resolve: { conditions } },
    test: {
      name,
      include: ["src/**/*.test.ts", "test/**/*.test.ts"],
      benchmark: { include: ["src/**/*.bench.ts", "bench/**/*.bench.ts"] },
      testTimeout: 60_000,
      // A test that asserts nothing cannot fail: every test must make at least one assertion.
      expect: { requireAssertions: true },
    },
  });
}
