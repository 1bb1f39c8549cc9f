/** Command-line parsing for `iommu-demo`: a command, `--flag value` / `--flag=value` options, positionals. */

export interface ParsedArgs {
  readonly command: string | null;
  readonly flags: Map<string, string | true>;
  readonly positionals: string[];
}

/** Flags that take a value (everything else is boolean). */
const VALUE_FLAGS = new Set(["board", "guest-ram", "svg", "html", "layout", "devices", "socket", "params"]);

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  let command: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "-h") {
      flags.set("help", true);
    } else if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (eq >= 0) flags.set(name, a.slice(eq + 1));
      else if (VALUE_FLAGS.has(name)) {
        const v = argv[i + 1];
        if (v === undefined || v.startsWith("--")) throw new UsageError(`--${name} needs a value`);
        flags.set(name, v);
        i++;
      } else flags.set(name, true);
    } else if (command === null) command = a;
    else positionals.push(a);
  }
  return { command, flags, positionals };
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
