/**
 * Test support for the conformance suites: counts the kernel-log fields (`klog`, `klog_all`) of a replay that
 * equal the kernel's. They are outside the behaviour diff (the conformance README); the suites print and floor
 * the count so what the model reproduces cannot regress silently.
 */
import { LOG_FIELDS } from "@iommu-sim/conformance";

export interface KlogCount {
  same: number;
  total: number;
  /** `arch/name:line field` of each field that differs. */
  differing: string[];
}

export const emptyKlogCount = (): KlogCount => ({ same: 0, total: 0, differing: [] });

/** Compares every `klog`/`klog_all` field of the kernel's transcript with the model's, line by line. */
export function compareKlog(key: string, expected: string, actual: string, into: KlogCount): void {
  const exp = expected.split("\n").filter(Boolean);
  const act = actual.split("\n").filter(Boolean);
  exp.forEach((line, i) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    let a: Record<string, unknown> = {};
    try {
      a = JSON.parse(act[i] ?? "{}") as Record<string, unknown>;
    } catch {}
    for (const f of LOG_FIELDS) {
      if (!(f in e)) continue;
      into.total++;
      if (JSON.stringify(e[f]) === JSON.stringify(a[f])) into.same++;
      else into.differing.push(`${key}:${i + 1} ${f}`);
    }
  });
}
