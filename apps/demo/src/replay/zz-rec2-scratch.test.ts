// scratch (not committed): replay DIR's *.scn/*.jsonl pairs with KERNEL/MODSET, print every difference
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { diffTranscripts, formatDiff } from "@iommu-sim/conformance";
import { it } from "vitest";
import { replayScenario } from "./replay.js";

it("scratch replay", () => {
  const dirs = (process.env.RDIR ?? "").split(",");
  const kernel = (process.env.RKERNEL ?? "6.12") as never;
  const modset = process.env.RMODSET as never;
  const only = process.env.RONLY ? new RegExp(process.env.RONLY) : null;
  for (const dir of dirs) {
    let same = 0;
    let total = 0;
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".scn")).sort()) {
      const name = f.slice(0, -4);
      if (only && !only.test(name)) continue;
      const tp = join(dir, `${name}.jsonl`);
      if (!existsSync(tp)) continue;
      total++;
      let what: string | null;
      try {
        const actual = replayScenario(readFileSync(join(dir, f), "utf8"), {
          file: `${dir}/${f}`,
          kernel,
          ...(modset ? { modset } : {}),
        });
        const exp = readFileSync(tp, "utf8").split("\n").filter(Boolean);
        const act = actual.split("\n").filter(Boolean);
        exp.forEach((l, i) => {
          const e = JSON.parse(l);
          let a: Record<string, unknown> = {};
          try { a = JSON.parse(act[i] ?? "{}"); } catch {}
          for (const k of ["klog", "klog_all"]) {
            if (!(k in e)) continue;
            if (JSON.stringify(e[k]) !== JSON.stringify(a[k])) console.log(`KLOG ${name}:${i + 1} ${k}\n  exp ${JSON.stringify(e[k])}\n  act ${JSON.stringify(a[k])}`);
          }
        });
        const d = diffTranscripts(readFileSync(tp, "utf8"), actual);
        what = d ? formatDiff(d) : null;
      } catch (e) {
        what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      }
      if (what === null) same++;
      else console.log(`DIFF ${dir} ${name}: ${what}`);
    }
    console.log(`SUMMARY ${dir}: ${same}/${total} identical`);
  }
});
