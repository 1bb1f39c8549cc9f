/**
 * Compares two transcripts line by line and field by field (names, order, values), ignoring only what
 * shared/conformance/README.md says is not behaviour: `hello`'s description of the recording host
 * (`kernel`, `kernel_version`, `machine`) and kernel log text (`klog`, `klog_all`).
 */

/** Fields of `hello` that describe the host that recorded the transcript. */
export const HOST_FIELDS: readonly string[] = ["kernel", "kernel_version", "machine"];
/** Kernel log fields: welcome to reproduce, not part of the behaviour compared. */
export const LOG_FIELDS: readonly string[] = ["klog", "klog_all"];

export interface TranscriptDiff {
  /** 1-based line number of the first differing line. */
  line: number;
  /** `cmd` of that line in the expected transcript (or the actual one when expected ended). */
  cmd: string;
  /** The first differing field; `(line)` when a whole line is missing/extra or not JSON. */
  field: string;
  expected: string;
  actual: string;
}

type Fields = [string, unknown][];

function parseFields(line: string): Fields | null {
  try {
    const v: unknown = JSON.parse(line);
    if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
    return Object.entries(v as Record<string, unknown>);
  } catch {
    return null;
  }
}

function kept(fields: Fields): Fields {
  const isHello = fields.some(([k, v]) => k === "cmd" && v === "hello");
  return fields.filter(([k]) => !LOG_FIELDS.includes(k) && !(isHello && HOST_FIELDS.includes(k)));
}

function splitLines(t: string): string[] {
  const lines = t.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

const show = (v: unknown): string => (v === undefined ? "(absent)" : JSON.stringify(v));

/** The first difference between `expected` and `actual` (JSON Lines texts), or null when they agree. */
export function diffTranscripts(expected: string, actual: string): TranscriptDiff | null {
  const exp = splitLines(expected);
  const act = splitLines(actual);
  const n = Math.max(exp.length, act.length);
  for (let i = 0; i < n; i++) {
    const e = exp[i];
    const a = act[i];
    if (e === undefined || a === undefined) {
      const present = (e ?? a)!;
      const cmd = parseFields(present)?.find(([k]) => k === "cmd")?.[1];
      return {
        line: i + 1,
        cmd: typeof cmd === "string" ? cmd : "?",
        field: "(line)",
        expected: e ?? "(end of transcript)",
        actual: a ?? "(end of transcript)",
      };
    }
    const ef = parseFields(e);
    const af = parseFields(a);
    if (ef === null || af === null) {
      if (e !== a) return { line: i + 1, cmd: "?", field: "(line)", expected: e, actual: a };
      continue;
    }
    const cmdField = ef.find(([k]) => k === "cmd")?.[1];
    const cmd = typeof cmdField === "string" ? cmdField : "?";
    const ek = kept(ef);
    const ak = kept(af);
    const m = Math.max(ek.length, ak.length);
    for (let j = 0; j < m; j++) {
      const [ekey, eval_] = ek[j] ?? [undefined, undefined];
      const [akey, aval] = ak[j] ?? [undefined, undefined];
      if (ekey !== akey) {
        // a field missing, extra or out of order: name the expected one when there is one
        const field = ekey ?? akey!;
        const aHas = ak.find(([k]) => k === field);
        const eHas = ek.find(([k]) => k === field);
        return {
          line: i + 1,
          cmd,
          field,
          expected: eHas ? `${show(eHas[1])} at position ${ek.indexOf(eHas)}` : "(absent)",
          actual: aHas ? `${show(aHas[1])} at position ${ak.indexOf(aHas)}` : "(absent)",
        };
      }
      const es = JSON.stringify(eval_);
      const as = JSON.stringify(aval);
      if (es !== as) return { line: i + 1, cmd, field: ekey!, expected: es, actual: as };
    }
  }
  return null;
}

/** One line for humans: `line 7 (info) field raw: expected "…" got "…"`. */
export function formatDiff(d: TranscriptDiff): string {
  const cut = (s: string): string => (s.length > 160 ? `${s.slice(0, 157)}...` : s);
  return `line ${d.line} (${d.cmd}) field ${d.field}: expected ${cut(d.expected)}, got ${cut(d.actual)}`;
}
