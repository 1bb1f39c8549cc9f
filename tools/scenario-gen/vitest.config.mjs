import { defineProject } from "vitest/config";

// Plain JS ESM (runs with node, no build): the tests are .test.mjs beside the code.
export default defineProject({
  test: { name: "@iommu-sim/scenario-gen", include: ["src/**/*.test.mjs"], testTimeout: 60_000 },
});
