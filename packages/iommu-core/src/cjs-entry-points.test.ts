// Regression (issue 14): the CJS build of `./testing` bundled its own ErrnoError, so the mock driver's errors were
// not `instanceof` the class `.` exports, and a caller's errno check (type1's MAP_DMA) let them escape as throws.
// Builds this package's CJS entry points with its real tsup config (JS only) and requires them both.
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Options } from "tsup";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type * as Core from "./index.js";
import type * as Testing from "./testing.js";

const outDir = mkdtempSync(join(tmpdir(), "iommu-core-cjs-"));
let core: typeof Core;
let testing: typeof Testing;

beforeAll(async () => {
  // Loaded by path: the config lives outside this project's `src/`, which tsc -b must not pull in.
  const configFile = fileURLToPath(new URL("../tsup.config.ts", import.meta.url));
  const base = (await import(/* @vite-ignore */ configFile)).default as Options;
  await build({ ...base, format: ["cjs"], dts: false, sourcemap: false, outDir, silent: true, config: false });
  const require = createRequire(join(outDir, "index.cjs"));
  core = require("./index.cjs");
  testing = require("./testing.cjs");
}, 120_000);
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe("CJS entry points share one module instance", () => {
  it("the mock driver's errors are instances of the root entry's ErrnoError", () => {
    const memory = new core.PhysicalMemory();
    memory.addRam(0n, 64n << 20n);
    const mock = testing.createMockIommu();
    const iommu = new core.Iommu();
    const group = iommu.probeDevice(new core.PciDevice(memory, { bus: 0, slot: 1, classCode: 0 }), mock.ops);
    iommu.claimDmaOwner(group, {});
    const domain = iommu.domainAlloc(mock.ops, "unmanaged");
    iommu.attachGroup(domain, group);
    mock.failMapsAfter(0);
    let thrown: unknown;
    try {
      iommu.map(domain, testing.MOCK_APERTURE_START, 0x10_0000n, 0x1000n, core.IOMMU_READ);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(core.ErrnoError);
    expect(core.isErrno(thrown, "ENOMEM")).toBe(true);
    expect(iommu.iovaToPhys(domain, testing.MOCK_APERTURE_START)).toBe(0n);
  });
});
