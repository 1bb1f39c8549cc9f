/**
 * Where the recorder's files are: the `shared/` folder beside the clone (CI), or `IOMMU_SIM_SHARED`.
 * Tests that need it skip with a message saying so when it is absent.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(fileURLToPath(new URL("../../../../", import.meta.url)));

/** The recorder's probe.c, or null. */
export function recorderProbe(): string | null {
  const candidates = [
    process.env.IOMMU_SIM_SHARED,
    join(REPO_ROOT, "..", "shared"),
    // a git worktree under <clone>/wt/NAME sees the clone's neighbour two levels up
    join(REPO_ROOT, "..", "..", "shared"),
  ];
  for (const dir of candidates) {
    if (!dir) continue;
    const p = join(dir, "conformance", "recorder", "probe", "probe.c");
    if (existsSync(p)) return p;
  }
  return null;
}
