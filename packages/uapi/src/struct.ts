/**
 * A C struct as data: each field's byte offset and width, read and written little-endian (the uAPI is
 * native-endian; both modelled hosts are LE). The layouts in `vfio.ts` are the one place the offsets are
 * written; `layout.test.ts` compares them with gcc's `offsetof` on the kernel header.
 */

/** Field widths the VFIO uAPI uses (`__u16`, `__u32`, `__u64` / `__aligned_u64`). */
export type FieldKind = "u16" | "u32" | "u64";

/** Field name → `[offset, width]`. */
export type Layout = Readonly<Record<string, readonly [offset: number, kind: FieldKind]>>;

/** The values of a layout's fields: u64 as bigint, narrower ones as numbers. */
export type Fields<L extends Layout> = { -readonly [F in keyof L]: L[F][1] extends "u64" ? bigint : number };

/** Little-endian field access over a caller's buffer. */
export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Read every field of `layout` from the struct at `at`. */
export function readStruct<L extends Layout>(layout: L, buf: Uint8Array, at = 0): Fields<L> {
  const v = view(buf);
  const out: Record<string, number | bigint> = {};
  for (const [name, [off, kind]] of Object.entries(layout)) {
    const o = at + off;
    out[name] = kind === "u64" ? v.getBigUint64(o, true) : kind === "u32" ? v.getUint32(o, true) : v.getUint16(o, true);
  }
  return out as Fields<L>;
}

/** Write the given fields of `layout` into the struct at `at` (fields not given are left as they are). */
export function writeStruct<L extends Layout>(layout: L, buf: Uint8Array, values: Partial<Fields<L>>, at = 0): void {
  const v = view(buf);
  for (const [name, value] of Object.entries(values) as [string, number | bigint | undefined][]) {
    const field = layout[name];
    if (value === undefined || field === undefined) continue;
    const [off, kind] = field;
    if (kind === "u64") v.setBigUint64(at + off, BigInt(value), true);
    else if (kind === "u32") v.setUint32(at + off, Number(value) >>> 0, true);
    else v.setUint16(at + off, Number(value) & 0xffff, true);
  }
}
