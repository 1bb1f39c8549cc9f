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
  const b = BigInt(v);
  if (b < 0n) throw new RangeError(`hex of negative value ${b}`);
  return `"0x${b.toString(16)}"`;
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

/** One transcript line under construction (probe.c o_begin … o_end). */
export class Line {
  private text: string;

  constructor(cmd: string) {
    this.text = `{"cmd":${jsonStr(cmd)}`;
  }

  /** Key with an already formatted JSON value (for nested objects and lists). */
  raw(key: string, json: string): this {
    // past OUT_MAX nothing more can reach the output (the line is cut there)
    if (this.text.length <= OUT_MAX) this.text += `,${jsonStr(key)}:${json}`;
    return this;
  }

  str(key: string, v: string): this {
    return this.raw(key, jsonStr(v));
  }

  int(key: string, v: number | bigint): this {
    return this.raw(key, BigInt(v).toString());
  }

  hex(key: string, v: number | bigint): this {
    return this.raw(key, hex(v));
  }

  bytes(key: string, p: Uint8Array): this {
    // format only what can survive the 1 MiB cut (and a little more, so the cut still happens)
    const room = OUT_MAX - this.text.length;
    const n = room < 0 ? 0 : Math.min(p.length, (room >> 1) + 2);
    return this.raw(key, `"${hexBytes(p.subarray(0, n))}${n < p.length ? "" : '"'}`);
  }

  strList(key: string, list: readonly string[]): this {
    return this.raw(key, `[${list.map(jsonStr).join(",")}]`);
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
}

/** The probe's `error` record for a malformed line. */
export function errorLine(line: number, text: string, why: string): string {
  return new Line("error").int("line", line).str("text", text).str("why", why).end();
}
