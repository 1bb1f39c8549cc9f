/**
 * The recorder's scenario language (shared/conformance/recorder/probe/README.md), parsed exactly as
 * probe.c parses it: fgets lines of at most 4095 bytes, `#` comments, whitespace tokens (at most 16),
 * hex/decimal numbers with `_` separators, header lines before `---`. A malformed line becomes the
 * probe's `error` record (same `why` text), never an exception.
 *
 * Text is handled as a byte string (one char per byte, as C sees it), so escaping in the transcript
 * matches the probe's byte-wise `\u00XX`.
 */
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
} from "@vfio/uapi";

/** Fixed base of the probe's 1 GiB anonymous buffer. */
export const BASE_VA = 0x1000_0000_0000n;
/** Length of the probe's buffer. */
export const BASE_LEN = 0x4000_0000n;
/** Most devices the probe handles (probe.c MAXDEV). */
export const MAXDEV = 8;
/** Most tokens tokenize() returns (probe.c MAXTOK). */
export const MAXTOK = 16;

export type IommuTypeName = "type1" | "type1v2";

export interface ScenarioHeader {
  /** `platform NAME` (at most 63 bytes, as the probe's buffer keeps). */
  platform: string;
  /** `param` values joined by spaces (at most 511 bytes). */
  params: string;
  /** `memlock BYTES`, or null when absent. */
  memlock: bigint | null;
  /** `devices N` (1..8), 0 when absent. */
  devices: number;
  iommu: IommuTypeName;
  /** `mode type1|iommufd|none`: type1 (default) sets up the container at setup; the others open nothing. */
  mode: ProbeMode;
  /** `modset NAME` (at most 31 bytes): the module set the VM loads; "" when absent. */
  modset: string;
}

export type ProbeMode = "type1" | "iommufd" | "none";

export interface ErrorRecord {
  kind: "error";
  line: number;
  text: string;
  why: string;
}

export type DevOp = "set" | "unset" | "status" | "open" | "close" | "set-iommufd";

/** One body command, with its arguments already validated as probe.c validates them. */
export type Command =
  | { kind: "ext" }
  | { kind: "resv"; dev: number; devGiven: boolean }
  | { kind: "info"; argsz: bigint; fill: number }
  | { kind: "map"; iova: bigint; size: bigint; flags: number; vaddr: bigint; vaddrOnly: boolean }
  | { kind: "unmap"; iova: bigint; size: bigint; flags: number; pgsize: bigint }
  | { kind: "dirty-start" }
  | { kind: "dirty-stop" }
  | { kind: "dirty-get"; iova: bigint; size: bigint; pgsize: bigint }
  | { kind: "locked" }
  | {
      kind: "dma";
      dev: number;
      devGiven: boolean;
      iova: bigint;
      len: bigint;
      toDev: boolean;
      off: bigint;
      fill: number | null;
      klogAll: boolean;
    }
  | { kind: "touch"; off: bigint; size: bigint }
  | { kind: "irq"; dev: number; op: "msi-on" | "msi-off" | "raise"; value: bigint }
  | { kind: "group"; dev: number; op: DevOp }
  | { kind: "device"; dev: number; op: "open" | "close" }
  | { kind: "set-iommu"; iommu: IommuTypeName }
  /**
   * An iommufd/cdev line (`iommufd`, `ioas`, `destroy`, `option`, `vfio-ioas`, `hw-info`, `hwpt`, `cdev`,
   * `devinfo`): probe.c checks their options against its run-time state (parse_iopts), so the probe does.
   */
  | { kind: "iommufd"; tokens: string[]; text: string };

/** The body commands of the iommufd section of probe.c (parsed by the probe itself). */
export const IOMMUFD_COMMANDS: readonly string[] = [
  "iommufd",
  "ioas",
  "destroy",
  "option",
  "vfio-ioas",
  "hw-info",
  "hwpt",
  "cdev",
  "devinfo",
];

export interface BodyLine {
  /** 1-based line number in the scenario file. */
  line: number;
  /** The line as read (comment included), for error records. */
  text: string;
  tokens: string[];
}

export interface Scenario {
  header: ScenarioHeader;
  /** Errors for unknown header lines, printed before `hello`. */
  headerErrors: ErrorRecord[];
  /** Non-empty body lines after `---` (empty when there is no `---`). */
  body: BodyLine[];
}

// VFIO uapi flag values the parser fills in (uapi vfio.h 6.1).

/** UTF-8 text → byte string (one char per byte), the form C's stdio sees. */
export function toByteString(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return s;
}

/** probe.c parse_num: `0x` hex or decimal, `_` ignored, no sign, u64 overflow rejected. */
export function parseNum(s: string | undefined): bigint | null {
  if (s === undefined || s.length === 0) return null;
  let base = 10n;
  let i = 0;
  if (s[0] === "0" && (s[1] === "x" || s[1] === "X")) {
    base = 16n;
    i = 2;
    if (i >= s.length) return null;
  }
  let r = 0n;
  for (; i < s.length; i++) {
    const c = s[i]!.toLowerCase();
    if (c === "_") continue;
    let d: bigint;
    if (c >= "0" && c <= "9") d = BigInt(c.charCodeAt(0) - 48);
    else if (base === 16n && c >= "a" && c <= "f") d = BigInt(c.charCodeAt(0) - 87);
    else return null;
    r = r * base + d;
    if (r >> 64n !== 0n) return null; // probe.c: the value would not fit a u64
  }
  return r;
}

const isSpace = (c: string): boolean => c === " " || c === "\t" || c === "\n" || c === "\v" || c === "\f" || c === "\r";

/** probe.c tokenize: whitespace-separated, at most MAXTOK tokens (the rest of the line is ignored). */
export function tokenize(s: string): string[] {
  const tok: string[] = [];
  let p = 0;
  while (p < s.length && tok.length < MAXTOK) {
    while (p < s.length && isSpace(s[p]!)) p++;
    if (p >= s.length) break;
    const start = p;
    while (p < s.length && !isSpace(s[p]!)) p++;
    tok.push(s.slice(start, p));
    if (p < s.length) p++;
  }
  return tok;
}

/** Splits a byte string into lines the way `fgets(buf, 4096)` + trailing CR/LF stripping does. */
export function readLines(bytes: string): string[] {
  const lines: string[] = [];
  let p = 0;
  while (p < bytes.length) {
    let end = p;
    // fgets reads at most 4095 bytes and stops after a newline
    while (end < bytes.length && end - p < 4095) {
      end++;
      if (bytes[end - 1] === "\n") break;
    }
    let line = bytes.slice(p, end);
    p = end;
    const nul = line.indexOf("\0");
    if (nul >= 0) line = line.slice(0, nul); // strlen stops at the first NUL
    let l = line.length;
    while (l > 0 && (line[l - 1] === "\n" || line[l - 1] === "\r")) l--;
    lines.push(line.slice(0, l));
  }
  return lines;
}

function stripComment(s: string): string {
  const h = s.indexOf("#");
  return h >= 0 ? s.slice(0, h) : s;
}

/** probe.c parse_vaddr: `vaddr=+OFF` (BASE + OFF, mod 2^64) or `vaddr=abs:ADDR`. */
export function parseVaddr(arg: string): bigint | null {
  if (!arg.startsWith("vaddr=")) return null;
  const rest = arg.slice(6);
  if (rest.startsWith("+")) {
    const v = parseNum(rest.slice(1));
    return v === null ? null : BigInt.asUintN(64, BASE_VA + v);
  }
  if (rest.startsWith("abs:")) return parseNum(rest.slice(4));
  return null;
}

/** Parses the whole scenario: header, header errors, body lines (not yet interpreted). */
export function parseScenario(text: string): Scenario {
  const lines = readLines(toByteString(text));
  let body = -1;
  for (let i = 0; i < lines.length; i++) {
    const tok = tokenize(stripComment(lines[i]!));
    if (tok.length > 0 && tok[0] === "---") {
      body = i + 1;
      break;
    }
  }
  const hdrEnd = body < 0 ? lines.length : body - 1;
  const header: ScenarioHeader = {
    platform: "",
    params: "",
    memlock: null,
    devices: 0,
    iommu: "type1v2",
    mode: "type1",
    modset: "",
  };
  const headerErrors: ErrorRecord[] = [];
  for (let i = 0; i < hdrEnd; i++) {
    const tok = tokenize(stripComment(lines[i]!));
    const n = tok.length;
    if (n === 0) continue;
    const [k, v] = tok;
    let num: bigint | null;
    if (k === "platform" && n === 2) {
      header.platform = v!.slice(0, 63); // char platform[64]
    } else if (k === "param" && n === 2) {
      const joined = header.params + (header.params.length ? " " : "") + v;
      header.params = joined.slice(0, 511); // char params[512]
    } else if (k === "memlock" && n === 2 && (num = parseNum(v)) !== null) {
      header.memlock = num;
    } else if (k === "devices" && n === 2 && (num = parseNum(v)) !== null && num >= 1n && num <= BigInt(MAXDEV)) {
      header.devices = Number(num);
    } else if (k === "mode" && n === 2 && (v === "type1" || v === "iommufd" || v === "none")) {
      header.mode = v;
    } else if (k === "modset" && n === 2) {
      header.modset = v!.slice(0, 31); // char modset[32]
    } else if (k === "iommu" && n === 2 && (v === "type1v2" || v === "type1")) {
      header.iommu = v;
    } else {
      headerErrors.push({ kind: "error", line: i + 1, text: lines[i]!, why: "unknown header line" });
    }
  }
  const bodyLines: BodyLine[] = [];
  if (body >= 0) {
    for (let i = body; i < lines.length; i++) {
      const tokens = tokenize(stripComment(lines[i]!));
      if (tokens.length === 0) continue;
      bodyLines.push({ line: i + 1, text: lines[i]!, tokens });
    }
  }
  return { header, headerErrors, body: bodyLines };
}

function err(b: BodyLine, why: string): ErrorRecord {
  return { kind: "error", line: b.line, text: b.text, why };
}

/**
 * probe.c take_dev: removes every `dev=K` token after the command word; the last one wins.
 * Returns null when some K is not a number below `ndev`.
 */
function takeDev(tok: string[], ndev: number): { tok: string[]; dev: number; given: boolean } | null {
  const out = [tok[0]!];
  let dev = 0;
  let given = false;
  for (let i = 1; i < tok.length; i++) {
    const t = tok[i]!;
    if (!t.startsWith("dev=")) {
      out.push(t);
      continue;
    }
    const v = parseNum(t.slice(4));
    if (v === null || v >= BigInt(ndev)) return null;
    dev = Number(v);
    given = true;
  }
  return { tok: out, dev, given };
}

function bitFlagsUnmap(tok: string[], b: BodyLine): { flags: number; pgsize: bigint } | ErrorRecord {
  let flags = 0;
  let pgsize = 0n;
  for (let i = 3; i < tok.length; i++) {
    const t = tok[i]!;
    let pg: bigint | null;
    if (t === "all") flags |= VFIO_DMA_UNMAP_FLAG_ALL;
    else if (t === "vaddr") flags |= VFIO_DMA_UNMAP_FLAG_VADDR;
    else if (t === "dirty" && i + 1 < tok.length && (pg = parseNum(tok[i + 1])) !== null) {
      flags |= VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
      pgsize = pg;
      i++;
    } else return err(b, "bad argument");
  }
  return { flags, pgsize };
}

/**
 * Interprets one body line as probe.c's dispatcher and cmd_* argument checks do; `ndev` is the number
 * of devices the probe was given (dev=K and group/device K must be below it).
 */
export function parseCommand(b: BodyLine, ndev: number): Command | ErrorRecord {
  const tok = b.tokens;
  const n = tok.length;
  switch (tok[0]) {
    case "ext":
      return n === 1 ? { kind: "ext" } : err(b, "unknown command");
    case "locked":
      return n === 1 ? { kind: "locked" } : err(b, "unknown command");
    case "resv": {
      const t = takeDev(tok, ndev);
      if (t === null) return err(b, "bad dev=K");
      if (t.tok.length !== 1) return err(b, "usage: resv [dev=K]");
      return { kind: "resv", dev: t.dev, devGiven: t.given };
    }
    case "info": {
      let argsz = 4096n;
      let fill = 0n;
      for (let i = 1; i < n; i++) {
        const t = tok[i]!;
        if (t.startsWith("argsz=")) {
          const v = parseNum(t.slice(6));
          if (v === null || v > 0xffffffffn) return err(b, "bad argsz");
          argsz = v;
        } else if (t.startsWith("fill=")) {
          const v = parseNum(t.slice(5));
          if (v === null || v > 0xffn) return err(b, "bad fill");
          fill = v;
        } else return err(b, "unknown info argument");
      }
      const bufsz = argsz > 4096n ? argsz + 4096n : 8192n;
      if (bufsz > 64n << 20n) return err(b, "argsz too large for probe buffer");
      return { kind: "info", argsz, fill: Number(fill) };
    }
    case "map":
    case "mapv": {
      const vaddrOnly = tok[0] === "mapv";
      const iova = parseNum(tok[1]);
      const size = parseNum(tok[2]);
      if (n < 3 || iova === null || size === null) {
        return err(b, "usage: map IOVA SIZE PROT [vaddr=+OFF|vaddr=abs:ADDR]");
      }
      let flags = VFIO_DMA_MAP_FLAG_VADDR;
      let argi = 3;
      if (!vaddrOnly) {
        if (n < 4) return err(b, "missing PROT");
        const p = tok[3];
        if (p === "r") flags = VFIO_DMA_MAP_FLAG_READ;
        else if (p === "w") flags = VFIO_DMA_MAP_FLAG_WRITE;
        else if (p === "rw") flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
        else if (p === "-") flags = 0;
        else return err(b, "bad PROT (r, w, rw, -)");
        argi = 4;
      }
      let vaddr = BASE_VA;
      for (let i = argi; i < n; i++) {
        const v = parseVaddr(tok[i]!);
        if (v === null) return err(b, "bad argument");
        vaddr = v;
      }
      return { kind: "map", iova, size, flags, vaddr, vaddrOnly };
    }
    case "unmap": {
      const iova = parseNum(tok[1]);
      const size = parseNum(tok[2]);
      if (n < 3 || iova === null || size === null) {
        return err(b, "usage: unmap IOVA SIZE [all] [dirty PGSIZE] [vaddr]");
      }
      const f = bitFlagsUnmap(tok, b);
      if ("kind" in f) return f;
      return { kind: "unmap", iova, size, flags: f.flags, pgsize: f.pgsize };
    }
    case "dirty": {
      const usage = "usage: dirty start|stop|get IOVA SIZE PGSIZE";
      if (n < 2) return err(b, usage);
      if (tok[1] === "start" || tok[1] === "stop") {
        if (n !== 2) return err(b, "extra arguments");
        return { kind: tok[1] === "start" ? "dirty-start" : "dirty-stop" };
      }
      if (tok[1] === "get") {
        const iova = parseNum(tok[2]);
        const size = parseNum(tok[3]);
        const pgsize = parseNum(tok[4]);
        if (n !== 5 || iova === null || size === null || pgsize === null) return err(b, usage);
        return { kind: "dirty-get", iova, size, pgsize };
      }
      return err(b, usage);
    }
    case "dma": {
      const t = takeDev(tok, ndev);
      if (t === null) return err(b, "bad dev=K");
      const d = t.tok;
      const iova = parseNum(d[1]);
      const len = parseNum(d[2]);
      if (d.length < 4 || iova === null || len === null) {
        return err(b, "usage: dma IOVA LEN to-dev|from-dev [vaddr=+OFF] [fill=0xBB] [klog=all] [dev=K]");
      }
      let toDev: boolean;
      if (d[3] === "to-dev") toDev = true;
      else if (d[3] === "from-dev") toDev = false;
      else return err(b, "direction must be to-dev or from-dev");
      let off = 0n;
      let fill: number | null = null;
      let klogAll = false;
      for (let i = 4; i < d.length; i++) {
        const a = d[i]!;
        let v: bigint | null;
        if (a.startsWith("vaddr=+") && (v = parseNum(a.slice(7))) !== null) {
          off = v;
          continue;
        }
        if (toDev && a.startsWith("fill=") && (v = parseNum(a.slice(5))) !== null && v <= 0xffn) {
          fill = Number(v);
          continue;
        }
        if (a === "klog=all") {
          klogAll = true;
          continue;
        }
        return err(b, "bad argument");
      }
      if (len === 0n || len > 4096n || off > BASE_LEN || off + len > BASE_LEN) {
        return err(b, "LEN must be 1..4096 (edu buffer) and inside the probe buffer");
      }
      return { kind: "dma", dev: t.dev, devGiven: t.given, iova, len, toDev, off, fill, klogAll };
    }
    case "touch": {
      const off = tok[1]?.startsWith("+") ? parseNum(tok[1].slice(1)) : null;
      const size = parseNum(tok[2]);
      if (n !== 3 || off === null || size === null || off > BASE_LEN || size > BASE_LEN - off) {
        return err(b, "usage: touch +OFF SIZE (inside the probe buffer)");
      }
      return { kind: "touch", off, size };
    }
    case "irq": {
      const t = takeDev(tok, ndev);
      if (t === null) return err(b, "bad dev=K");
      const d = t.tok;
      const msiOn = d.length === 3 && d[1] === "msi" && d[2] === "on";
      const msiOff = d.length === 3 && d[1] === "msi" && d[2] === "off";
      const raise = d.length >= 2 && d[1] === "raise";
      let value = 1n;
      if (raise) {
        for (let i = 2; i < d.length; i++) {
          const a = d[i]!;
          const v = a.startsWith("value=") ? parseNum(a.slice(6)) : null;
          if (v !== null && v <= 0xffffffffn) {
            value = v;
            continue;
          }
          return err(b, "usage: irq raise [value=V] [dev=K]");
        }
      }
      if (!msiOn && !msiOff && !raise) {
        return err(b, "usage: irq msi on|off [dev=K] | irq raise [value=V] [dev=K]");
      }
      return { kind: "irq", dev: t.dev, op: msiOn ? "msi-on" : msiOff ? "msi-off" : "raise", value };
    }
    case "group": {
      const k = parseNum(tok[1]);
      const op = tok[2];
      const ops = ["set", "unset", "status", "open", "close", "set-iommufd"];
      if (n !== 3 || k === null || k >= BigInt(ndev) || !ops.includes(op!)) {
        return err(b, "usage: group K set|unset|status|open|close|set-iommufd (K < number of devices)");
      }
      return { kind: "group", dev: Number(k), op: op as DevOp };
    }
    case "device": {
      const k = parseNum(tok[1]);
      const op = tok[2];
      if (n !== 3 || k === null || k >= BigInt(ndev) || (op !== "open" && op !== "close")) {
        return err(b, "usage: device K open|close");
      }
      return { kind: "device", dev: Number(k), op };
    }
    case "set-iommu": {
      if (n > 2 || (n === 2 && tok[1] !== "type1" && tok[1] !== "type1v2")) {
        return err(b, "usage: set-iommu [type1|type1v2]");
      }
      return { kind: "set-iommu", iommu: n === 2 && tok[1] === "type1" ? "type1" : "type1v2" };
    }
    default:
      if (IOMMUFD_COMMANDS.includes(tok[0]!)) return { kind: "iommufd", tokens: tok, text: b.text };
      return err(b, "unknown command");
  }
}
