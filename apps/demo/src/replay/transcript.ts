/**
 * The probe's JSON Lines output, byte for byte: `{"cmd":...}` then `,"key":value` fields in call order,
 * no spaces; strings escape `"` and `\` with a backslash and every byte < 0x20 or >= 0x7f as `\u00XX`;
 * hex values are lowercase `"0x..."`; integers are plain decimals (probe.c o_* helpers).
 */
import { ERRNO, errnoName } from "@iommu/core";

/** Errno numbers by name, for the model side (names → the numbers the probe would see). */
export const ERRNO_NUMBERS: ReadonlyMap<string, number> = new Map(Object.entries(ERRNO));

/** The name probe.c's errname() prints for an errno number (`E<n>` when it has no name for it). */
export function errname(e: number): string {
  return errnoName(e) ?? `E${e}`;
}

/** JSON string literal exactly as probe.c o_str() writes it (input is a byte string). */
export function jsonStr(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff;
    if (c === 0x22 || c === 0x5c) out += `\\${String.fromCharCode(c)}`;
    else if (c < 0x20 || c >= 0x7f) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += String.fromCharCode(c);
  }
  return `${out}"`;
}

/** `"0x…"` lowercase, the probe's `%llx`; negative or >u64 values are a bug in the caller. */
export function hex(v: bigint | number): string {
  return `"${hexValue(v)}"`;
}

/** The same `0x…` as a record's string value (what the quoted text parses to). */
export function hexValue(v: bigint | number): string {
  const b = BigInt(v);
  if (b < 0n) throw new RangeError(`hex of negative value ${b}`);
  return `0x${b.toString(16)}`;
}

/** A record's value as `--json` shows it: what the probe's text of it parses to (hex stays a string). */
export type RecordValue =
  | string
  | number
  | boolean
  | null
  | readonly RecordValue[]
  | { readonly [key: string]: RecordValue };

/** One transcript record as an object: `cmd`, then the fields in the order the probe wrote them. */
export type TranscriptRecord = { readonly cmd: string } & { readonly [key: string]: RecordValue };

/** probe.c's text of a value: strings as o_str, numbers as plain decimals, lists and objects without spaces. */
export function probeJson(v: RecordValue): string {
  if (v === null) return "null";
  if (typeof v === "string") return jsonStr(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(probeJson).join(",")}]`;
  const o = v as { readonly [key: string]: RecordValue };
  return `{${Object.keys(o)
    .map((k) => `${jsonStr(k)}:${probeJson(o[k] as RecordValue)}`)
    .join(",")}}`;
}

const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lowercase hex of bytes, no separators (probe.c o_hexbytes). */
export function hexBytes(p: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < p.length; i += 8192) {
    let s = "";
    for (const b of p.subarray(i, i + 8192)) s += HEX2[b];
    parts.push(s);
  }
  return parts.join("");
}

/**
 * probe.c builds each line in `static char out[1 << 20]`: a longer line is cut to 2^20 - 1 bytes and
 * loses its closing `}` and newline (the next line then starts on the same output line).
 */
export const OUT_MAX = (1 << 20) - 1;

/**
 * One transcript line under construction (probe.c o_begin … o_end): its text, byte for byte, and the
 * same record as an object (`record()`, for `--json`), kept field by field as the text is written.
 */
export class Line {
  private text: string;
  private readonly fields: Record<string, RecordValue> = {};

  constructor(cmd: string) {
    this.text = `{"cmd":${jsonStr(cmd)}`;
    this.fields.cmd = cmd;
  }

  /** Key with a structured value (nested objects and lists), written as the probe formats it. */
  value(key: string, v: RecordValue): this {
    return this.put(key, probeJson(v), v);
  }

  str(key: string, v: string): this {
    return this.put(key, jsonStr(v), v);
  }

  int(key: string, v: number | bigint): this {
    return this.put(key, BigInt(v).toString(), Number(v));
  }

  hex(key: string, v: number | bigint): this {
    return this.put(key, hex(v), hexValue(v));
  }

  bytes(key: string, p: Uint8Array): this {
    // format only what can survive the 1 MiB cut (and a little more, so the cut still happens)
    const room = OUT_MAX - this.text.length;
    const n = room < 0 ? 0 : Math.min(p.length, (room >> 1) + 2);
    const s = hexBytes(p.subarray(0, n));
    if (n === p.length) return this.put(key, `"${s}"`, s);
    // cut: the record keeps the whole bytes the line still shows
    const shown = Math.max(0, room - `,${jsonStr(key)}:"`.length) & ~1;
    return this.put(key, `"${s}`, s.slice(0, shown));
  }

  strList(key: string, list: readonly string[]): this {
    return this.put(key, `[${list.map(jsonStr).join(",")}]`, list);
  }

  /** probe.c o_ret: `ret`, then `errno` by name when ret < 0. */
  ret(ret: number, errno: number): this {
    this.int("ret", ret);
    if (ret < 0) this.str("errno", errname(errno));
    return this;
  }

  end(): string {
    return `${this.text}}`;
  }

  /**
   * The record as an object. A record whose line probe.c's buffer cuts (the text loses its end, and the
   * next record starts on the same output line) has `line_cut: true` and the fields that reached the line.
   */
  record(): TranscriptRecord {
    const cut = this.text.length + 2 > OUT_MAX;
    return { ...(this.fields as TranscriptRecord), ...(cut ? { line_cut: true } : {}) };
  }

  private put(key: string, json: string, v: RecordValue): this {
    // past OUT_MAX nothing more can reach the output (the line is cut there)
    if (this.text.length <= OUT_MAX) {
      this.text += `,${jsonStr(key)}:${json}`;
      this.fields[key] = v;
    }
    return this;
  }
}

/** The probe's `error` record for a malformed line. */
export function errorRecord(line: number, text: string, why: string): Line {
  return new Line("error").int("line", line).str("text", text).str("why", why);
}

/** The same, as its text. */
export function errorLine(line: number, text: string, why: string): string {
  return errorRecord(line, text, why).end();
}
