/** JSON for --json: bigints as lowercase hex strings (the conformance transcripts' convention). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v), 2);
}
