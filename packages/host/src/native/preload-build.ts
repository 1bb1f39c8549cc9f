/**
 * Builds the preload library (native/preload.c, shipped as source) with the system's C compiler on first
 * use, into a cache directory keyed by the source's hash: `${XDG_CACHE_HOME:-~/.cache}/iommu-sim/native/`.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** native/preload.c beside src/ (tests, source) or beside dist/ (the built package). */
export function preloadSource(): string {
  // tsup's shims give the CommonJS build an import.meta.url too (tsup.shared.ts)
  const here = fileURLToPath(import.meta.url);
  for (const rel of ["../../native/preload.c", "../native/preload.c"]) {
    const p = join(dirname(here), rel);
    if (existsSync(p)) return p;
  }
  throw new Error("iommu-sim: native/preload.c not found beside the package");
}

/** The C compiler (`$CC`, else `cc`), or null when there is none. */
export function findCompiler(): string | null {
  const cc = process.env.CC || "cc";
  const r = spawnSync(cc, ["--version"], { stdio: "ignore" });
  return r.status === 0 ? cc : null;
}

export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "iommu-sim", "native");
}

/** Path of the built library, compiling it if needed. Throws with the compiler's message when that fails. */
export function buildPreload(cc = findCompiler()): string {
  if (!cc) throw new Error("iommu-sim: no C compiler (cc) to build the preload library");
  const src = preloadSource();
  const hash = createHash("sha256").update(readFileSync(src)).digest("hex").slice(0, 16);
  const dir = cacheDir();
  const lib = join(dir, `libiommu-sim-preload-${hash}.so`);
  if (existsSync(lib)) return lib;
  mkdirSync(dir, { recursive: true });
  const tmp = `${lib}.${process.pid}.tmp`;
  const r = spawnSync(cc, ["-shared", "-fPIC", "-O2", "-Wall", "-o", tmp, src, "-ldl"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`iommu-sim: building ${src} failed:\n${r.stderr}`);
  renameSync(tmp, lib); // atomic: a concurrent build never sees half a library
  return lib;
}
