import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

// The package graph is the architecture (issue #2): scripts/check-layering.mjs enforces it in CI;
// these tests pin that it holds for this repo and that it catches each kind of break.
const repoRoot = resolve(import.meta.dirname, "../../../..");
type Check = { checkLayering(root: string): string[]; ALLOWED: Record<string, string[]> };
const load = async (): Promise<Check> =>
  (await import(pathToFileURL(join(repoRoot, "scripts/check-layering.mjs")).href)) as Check;

function fakeRepo(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "layering-"));
  for (const [path, text] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(resolve(full, ".."), { recursive: true });
    writeFileSync(full, text);
  }
  return root;
}

async function cleanRepo(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const { ALLOWED } = await load();
  const files: Record<string, string> = {};
  for (const [name, deps] of Object.entries(ALLOWED)) {
    const dir = name === "@iommu-sim/demo" ? "apps/demo" : `packages/${name.split("/")[1]}`;
    files[`${dir}/package.json`] = JSON.stringify({
      name,
      dependencies: Object.fromEntries(deps.map((d) => [d, "workspace:*"])),
    });
    files[`${dir}/src/index.ts`] = deps.map((d) => `import { x } from "${d}";`).join("\n");
  }
  return { ...files, ...extra };
}

describe("package layering", () => {
  it("holds for this repository", async () => {
    const { checkLayering } = await load();
    expect(checkLayering(repoRoot)).toEqual([]);
  });

  it("accepts a repository that follows the table", async () => {
    const { checkLayering } = await load();
    expect(checkLayering(fakeRepo(await cleanRepo()))).toEqual([]);
  });

  it("catches an upward import (core importing a driver)", async () => {
    const { checkLayering } = await load();
    const root = fakeRepo(await cleanRepo({ "packages/core/src/bad.ts": 'import { y } from "@iommu/arm-smmu";' }));
    expect(checkLayering(root).join("\n")).toMatch(/imports @iommu\/arm-smmu, which the layering forbids/);
  });

  it("catches a sideways dependency (type1 on a driver) in package.json", async () => {
    const { checkLayering } = await load();
    const files = await cleanRepo();
    files["packages/type1/package.json"] = JSON.stringify({
      name: "@vfio/type1",
      dependencies: {
        "@iommu/core": "workspace:*",
        "@dma-iommu/msi-cookie": "workspace:*",
        "@iommu/vt-d": "workspace:*",
      },
    });
    expect(checkLayering(fakeRepo(files)).join("\n")).toMatch(/@vfio\/type1: depends on @iommu\/vt-d/);
  });

  it("keeps the host above the six layers and below the app: no layer imports the host, the host never imports the app", async () => {
    const { checkLayering } = await load();
    const root = fakeRepo(
      await cleanRepo({
        "packages/type1/src/bad.ts": 'import { createBoard } from "@iommu-sim/host";',
        "packages/host/src/bad.ts": 'import { runCli } from "@iommu-sim/demo";',
      }),
    );
    const out = checkLayering(root).join("\n");
    expect(out).toMatch(/type1\/src\/bad\.ts: imports @iommu-sim\/host, which the layering forbids for @vfio\/type1/);
    expect(out).toMatch(
      /host\/src\/bad\.ts: imports @iommu-sim\/demo, which the layering forbids for @iommu-sim\/host/,
    );
  });

  it("catches a relative import that leaves its package", async () => {
    const { checkLayering } = await load();
    const root = fakeRepo(
      await cleanRepo({ "packages/msi-cookie/src/bad.ts": 'import { z } from "../../allocator/src/index.js";' }),
    );
    expect(checkLayering(root).join("\n")).toMatch(/relative import .* leaves its package/);
  });

  it("catches a driver importing its hardware model, and hardware importing the driver", async () => {
    const { checkLayering } = await load();
    const root = fakeRepo(
      await cleanRepo({
        "packages/vt-d/src/driver/domain.ts": 'import { walk } from "../hw/walk.js";',
        "packages/vt-d/src/hw/walk.ts": 'import { Dom } from "../driver/domain.js";',
        "packages/vt-d/src/arch/regs.ts": 'import { walk } from "../hw/walk.js";',
      }),
    );
    const out = checkLayering(root).join("\n");
    expect(out).toMatch(/driver\/domain\.ts: driver code imports \.\.\/hw\/walk\.js from src\/hw/);
    expect(out).toMatch(/hw\/walk\.ts: hw code imports \.\.\/driver\/domain\.js from src\/driver/);
    expect(out).toMatch(/arch\/regs\.ts: arch code imports/);
  });

  it("lets both sides share src/arch (the spec's constants)", async () => {
    const { checkLayering } = await load();
    const root = fakeRepo(
      await cleanRepo({
        "packages/arm-smmu/src/driver/pgtable.ts": 'import { DESC } from "../arch/lpae.js";',
        "packages/arm-smmu/src/hw/walker.ts": 'import { DESC } from "../arch/lpae.js";',
        "packages/arm-smmu/src/arch/lpae.ts": "export const DESC = 3;",
      }),
    );
    expect(checkLayering(root)).toEqual([]);
  });

  it("lets core's tests read the conformance data, and nothing else of core (nor as a dependency)", async () => {
    const { checkLayering } = await load();
    const files = await cleanRepo({
      "packages/core/src/resv.test.ts": 'import { firstRecord } from "@iommu-sim/conformance";',
    });
    files["packages/core/package.json"] = JSON.stringify({
      name: "@iommu/core",
      devDependencies: { "@iommu-sim/conformance": "workspace:*" },
    });
    expect(checkLayering(fakeRepo(files))).toEqual([]);
    files["packages/core/src/map.ts"] = 'import { firstRecord } from "@iommu-sim/conformance";';
    expect(checkLayering(fakeRepo(files)).join("\n")).toMatch(
      /map\.ts: imports @iommu-sim\/conformance, which only tests of @iommu\/core may use/,
    );
    delete files["packages/core/src/map.ts"];
    files["packages/core/package.json"] = JSON.stringify({
      name: "@iommu/core",
      dependencies: { "@iommu-sim/conformance": "workspace:*" },
    });
    expect(checkLayering(fakeRepo(files)).join("\n")).toMatch(/is for tests only: list it in devDependencies/);
  });
});
