/** Command-line parsing for `iommu-demo`: a command, `--flag value` / `--flag=value` options, positionals. */

export interface ParsedArgs {
  readonly command: string | null;
  /** Value flags map to their text; boolean flags to true or false (`--x`, `--x=true`, `--x=false`). */
  readonly flags: Map<string, string | boolean>;
  readonly positionals: string[];
}

/** Flags that take a value (everything else is boolean). */
const VALUE_FLAGS = new Set([
  "board",
  "kernel",
  "guest-ram",
  "svg",
  "html",
  "layout",
  "devices",
  "socket",
  "params",
  "modset",
  "door",
  "uapi",
]);

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const flags = new Map<string, string | boolean>();
  const positionals: string[] = [];
  let command: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "-h") {
      flags.set("help", true);
    } else if (a === "-V") {
      flags.set("version", true);
    } else if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (VALUE_FLAGS.has(name)) {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[i + 1];
        if (v === undefined || v === "" || (eq < 0 && v.startsWith("--"))) {
          throw new UsageError(`--${name} needs a value`);
        }
        flags.set(name, v);
        if (eq < 0) i++;
      } else if (eq < 0) flags.set(name, true);
      else flags.set(name, booleanOf(name, a.slice(eq + 1)));
    } else if (command === null) command = a;
    else positionals.push(a);
  }
  return { command, flags, positionals };
}

/** A boolean flag's `=value`: only `true` or `false`, so a typo never silently means "off". */
function booleanOf(name: string, v: string): boolean {
  if (v === "true") return true;
  if (v === "false") return false;
  throw new UsageError(`--${name} is a switch: give --${name}, --${name}=true or --${name}=false (not '${v}')`);
}

/** Sizes like 1G, 512M, 4096, 0x40000000. */
export function parseSize(text: string): bigint {
  const m = /^(0x[0-9a-f]+|\d+)([KMGT]i?B?)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`bad size '${text}' (use e.g. 1G, 512M, 0x40000000)`);
  const n = BigInt(m[1] as string);
  const unit = (m[2] ?? "").charAt(0).toUpperCase();
  const shift = unit === "K" ? 10n : unit === "M" ? 20n : unit === "G" ? 30n : unit === "T" ? 40n : 0n;
  const v = n << shift;
  if (v <= 0n) throw new UsageError(`size must be positive: '${text}'`);
  return v;
}
