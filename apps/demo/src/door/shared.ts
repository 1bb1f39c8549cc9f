/**
 * Where the recorder's files are: the `shared/` folder beside the clone (CI), or `IOMMU_SIM_SHARED`.
 * Tests that need it skip with a message saying so when it is absent.
 */
import { spawnSync } from "node:child_process";
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

/** Whether `cc -static` links (a static C library is installed): programs no preload library reaches. */
export function staticLinkWorks(cc: string): boolean {
  return (
    spawnSync(cc, ["-static", "-x", "c", "-o", "/dev/null", "-"], { input: "int main(void){return 0;}" }).status === 0
  );
}
