/**
 * Builds the native door's pieces (shipped as source) with the system's C compiler on first use, into a
 * cache directory keyed by each source's hash: `${XDG_CACHE_HOME:-~/.cache}/iommu-sim/native/`. The
 * preload library (native/preload.c) and the seccomp door's supervisor (native/seccomp-door.c).
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** native/preload.c beside src/ (tests, source) or beside dist/ (the built package). */
export function preloadSource(): string {
  return nativeSource("preload.c");
}

/** native/seccomp-door.c, found as preload.c is. */
export function seccompDoorSource(): string {
  return nativeSource("seccomp-door.c");
}

function nativeSource(file: string): string {
  // tsup's shims give the CommonJS build an import.meta.url too (tsup.shared.ts)
  const here = fileURLToPath(import.meta.url);
  for (const rel of [`../../native/${file}`, `../native/${file}`]) {
    const p = join(dirname(here), rel);
    if (existsSync(p)) return p;
  }
  throw new Error(`iommu-sim: native/${file} not found beside the package`);
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
  return build(cc, preloadSource(), "libiommu-sim-preload", ".so", ["-shared", "-fPIC", "-O2", "-Wall"], ["-ldl"]);
}

/** Path of the built seccomp door (a launcher + supervisor executable), compiling it if needed. */
export function buildSeccompDoor(cc = findCompiler()): string {
  if (!cc) throw new Error("iommu-sim: no C compiler (cc) to build the seccomp door");
  return build(cc, seccompDoorSource(), "iommu-sim-seccomp-door", "", ["-O2", "-Wall"], []);
}

function build(cc: string, src: string, name: string, ext: string, flags: string[], libs: string[]): string {
  // The shared header is part of what gets compiled: a change to it must rebuild both doors.
  const header = join(dirname(src), "door-wire.h");
  const hash = createHash("sha256").update(readFileSync(src)).update(readFileSync(header)).digest("hex").slice(0, 16);
  const dir = cacheDir();
  const out = join(dir, `${name}-${hash}${ext}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync(cc, [...flags, "-o", tmp, src, ...libs], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`iommu-sim: building ${src} failed:\n${r.stderr}`);
  renameSync(tmp, out); // atomic: a concurrent build never sees half a file
  return out;
}
