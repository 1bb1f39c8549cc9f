#!/usr/bin/env node
// CI: what an npm user gets. Packs every public package (`pnpm -r pack`, which builds through `prepack`),
// installs the tarballs into a scratch project outside the workspace (offline: the packages depend only on
// each other), then runs every package README's ```js example there as ESM (.mjs) and as CommonJS (.cjs),
// and checks that CommonJS sees one ErrnoError across `@iommu/core` and `@iommu/core/testing`.
// PNPM names the pnpm command (default `npx -y pnpm@10.34.9`); KEEP=1 keeps the scratch folder.
import { execSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
// biome-ignore lint/suspicious/noUndeclaredEnvVars: a CI script, not a turbo task
const pnpm = process.env.PNPM || "npx -y pnpm@10.34.9";
const work = mkdtempSync(join(tmpdir(), "iommu-sim-pack-"));
const tarballs = join(work, "tarballs");
const app = join(work, "app");
const sh = (cmd, cwd) => execSync(cmd, { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
const failures = [];

/** The README's runnable examples: ```js blocks that import the package itself. */
export function readmeExamples(readme, name) {
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  return blocks.filter((b) => b.includes(`from "${name}"`));
}

/** The same program as CommonJS: named imports become destructured requires. */
export function toCommonJs(src) {
  return src.replace(
    /^import\s*\{([^}]*)\}\s*from\s*("[^"]+");/gm,
    (_m, names, from) => `const {${names.replace(/\s+as\s+/g, ": ")}} = require(${from});`,
  );
}

try {
  mkdirSync(tarballs);
  mkdirSync(app);
  sh(`${pnpm} -r --filter "./packages/*" pack --pack-destination "${tarballs}"`, root);
  const files = readdirSync(tarballs).filter((f) => f.endsWith(".tgz"));
  console.log(`packed ${files.length}: ${files.join(" ")}`);
  writeFileSync(join(app, "package.json"), `${JSON.stringify({ name: "pack-check", private: true }, null, 2)}\n`);
  sh(
    `npm install --offline --no-audit --no-fund --loglevel=error ${files.map((f) => `"${join(tarballs, f)}"`).join(" ")}`,
    app,
  );
  console.log(`installed into ${app} with npm (offline)`);

  for (const dir of readdirSync(join(root, "packages")).sort()) {
    const pkg = JSON.parse(readFileSync(join(root, "packages", dir, "package.json"), "utf8"));
    if (pkg.private) continue;
    const readme = join(root, "packages", dir, "README.md");
    if (!existsSync(readme)) {
      console.log(`skip  ${pkg.name}: no README.md, so no example to run`);
      continue;
    }
    const examples = readmeExamples(readFileSync(readme, "utf8"), pkg.name);
    if (examples.length === 0) failures.push(`${pkg.name}: README has no \`\`\`js example importing the package`);
    examples.forEach((src, i) => {
      for (const [ext, text] of [
        ["mjs", src],
        ["cjs", toCommonJs(src)],
      ]) {
        const file = `${dir}-readme-${i + 1}.${ext}`;
        writeFileSync(join(app, file), text);
        try {
          sh(`node ${file}`, app);
          console.log(`ok    ${file}`);
        } catch (e) {
          failures.push(
            `${file}: ${String(e.stderr || e.message)
              .trim()
              .split("\n")
              .slice(0, 6)
              .join("\n  ")}`,
          );
          console.log(`FAIL  ${file}`);
        }
      }
    });
  }

  // One class identity across CommonJS entry points: the mock driver's ENOMEM is an errno return of MAP_DMA.
  writeFileSync(
    join(app, "cjs-identity.cjs"),
    `const assert = require("node:assert");
const core = require("@iommu/core");
const { createMockIommu, MOCK_APERTURE_START } = require("@iommu/core/testing");
const type1 = require("@vfio/type1");
const memory = new core.PhysicalMemory();
memory.addRam(0n, 1n << 32n);
const iommu = new core.Iommu({ msiRemap: true });
const mock = createMockIommu();
const group = iommu.probeDevice(new core.PciDevice(memory, { bus: 0, slot: 1, classCode: 0 }), mock.ops);
const vfio = new type1.Vfio({ iommu, params: { dmaEntryLimit: 65535, allowUnsafeInterrupts: false } });
const proc = new type1.Process({ pages: type1.lazyPageSource(1n << 32n, 1n << 33n), memory, memlockBytes: 1n << 30n, capIpcLock: false });
proc.mmap({ start: 0x1000_0000_0000n, size: 1n << 24n });
const container = vfio.openContainer(proc);
vfio.openGroup(group.id).setContainer(container);
container.setIommu(type1.VFIO_TYPE1v2_IOMMU);
mock.failMapsAfter(0);
// The error the mock driver throws (./testing's code) is the class the root entry exports.
const m2 = createMockIommu();
const i2 = new core.Iommu();
const g2 = i2.probeDevice(new core.PciDevice(memory, { bus: 0, slot: 2, classCode: 0 }), m2.ops);
i2.claimDmaOwner(g2, {});
const d2 = i2.domainAlloc(m2.ops, "unmanaged");
i2.attachGroup(d2, g2);
m2.failMapsAfter(0);
assert.throws(() => i2.map(d2, MOCK_APERTURE_START, 0n, 0x1000n, core.IOMMU_READ), (e) => e instanceof core.ErrnoError && core.isErrno(e, "ENOMEM"));
// struct vfio_iommu_type1_dma_map: argsz, flags, vaddr, iova, size (Linux 6.1 uapi)
const b = new Uint8Array(32); const v = new DataView(b.buffer);
v.setUint32(0, 32, true); v.setUint32(4, 3, true);
v.setBigUint64(8, 0x1000_0000_0000n, true); v.setBigUint64(16, MOCK_APERTURE_START, true); v.setBigUint64(24, 0x10000n, true);
const ret = container.ioctl(type1.VFIO_IOMMU_MAP_DMA, b);
assert.strictEqual(ret, -12, "MAP_DMA after failMapsAfter(0) is -ENOMEM");
console.log("MAP_DMA -> " + ret);
`,
  );
  try {
    console.log(`ok    cjs-identity.cjs (${sh("node cjs-identity.cjs", app).trim()})`);
  } catch (e) {
    failures.push(
      `cjs-identity.cjs: ${String(e.stderr || e.message)
        .trim()
        .split("\n")
        .slice(0, 8)
        .join("\n  ")}`,
    );
    console.log("FAIL  cjs-identity.cjs");
  }
} catch (e) {
  failures.push(String(e.stderr || e.message).trim());
} finally {
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: a CI script, not a turbo task
  if (process.env.KEEP !== "1") rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
for (const f of failures) console.error(`pack-check: ${f}`);
console.log(
  failures.length ? `pack-check: ${failures.length} failed` : "pack-check: every README example ran as ESM and CJS",
);
process.exit(failures.length ? 1 : 0);
