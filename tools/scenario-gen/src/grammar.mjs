/**
 * The type1 part of the recorder probe's scenario grammar (shared/conformance/recorder/probe/README.md),
 * written from probe.c's argument checks: `checkScenario(text)` lists every line the probe would answer
 * with an `error` record, plus the limits the recorder's machines impose (edu DMA length, the 1 MiB
 * output line). The generator's tests run every emitted scenario through it.
 */
import { U64_MAX } from "./numbers.mjs";

/** probe.c BASE_LEN: the probe's anonymous buffer is 1 GiB. */
export const BASE_LEN = 0x4000_0000n;
/** probe.c MAXDEV. */
export const MAXDEV = 8;
/** QEMU 7.2's edu aborts the VM on a 4096-byte DMA: the recorder's safe maximum. */
export const EDU_DMA_MAX = 0xfffn;
/** Bitmap bytes we allow in one record (hex doubles it; the probe's line is 1 MiB). */
export const BITMAP_MAX_BYTES = 0x8000n;

/** probe.c parse_num: hex `0x…` or decimal, `_` separators, no overflow; null when invalid. */
export function parseNum(s) {
  if (typeof s !== "string" || s.length === 0) return null;
  let base = 10n;
  let body = s;
  if (s[0] === "0" && (s[1] === "x" || s[1] === "X")) {
    base = 16n;
    body = s.slice(2);
    if (body.length === 0) return null;
  }
  let r = 0n;
  for (const ch of body.toLowerCase()) {
    if (ch === "_") continue;
    let d;
    if (ch >= "0" && ch <= "9") d = BigInt(ch.charCodeAt(0) - 48);
    else if (base === 16n && ch >= "a" && ch <= "f") d = BigInt(ch.charCodeAt(0) - 87);
    else return null;
    r = r * base + d;
    if (r > U64_MAX) return null;
  }
  return r;
}

/** probe.c bitmap_bytes: the buffer the probe allocates for a dirty bitmap. */
export function bitmapBytes(size, pgsize) {
  if (pgsize === 0n) return 8n;
  const pages = size / pgsize + (size % pgsize ? 1n : 0n);
  let bytes = ((pages + 63n) / 64n) * 8n;
  if (bytes === 0n) bytes = 8n;
  const cap = 16n << 20n;
  return bytes > cap ? cap : bytes;
}

const isVaddr = (t) =>
  t.startsWith("vaddr=+")
    ? parseNum(t.slice(7)) !== null
    : t.startsWith("vaddr=abs:") && parseNum(t.slice(10)) !== null;

/** Splits off `dev=K` (probe.c take_dev); returns null when K is bad. */
function takeDev(tok, ndev) {
  let dev = 0;
  const rest = [];
  for (const t of tok) {
    if (!t.startsWith("dev=")) {
      rest.push(t);
      continue;
    }
    const v = parseNum(t.slice(4));
    if (v === null || v >= BigInt(ndev)) return null;
    dev = Number(v);
  }
  return { dev, tok: rest };
}

/** Why the probe (or the recorder's machine) rejects body tokens `tok`, or null when the line is good. */
export function checkBody(tok, ndev) {
  const [cmd] = tok;
  const n = tok.length;
  switch (cmd) {
    case "ext":
    case "locked":
      return n === 1 ? null : "extra arguments";
    case "resv": {
      const d = takeDev(tok, ndev);
      return d && d.tok.length === 1 ? null : "bad resv";
    }
    case "info":
      for (const t of tok.slice(1)) {
        if (t.startsWith("argsz=")) {
          const v = parseNum(t.slice(6));
          if (v === null || v > 0xffff_ffffn) return "bad argsz";
        } else if (t.startsWith("fill=")) {
          const v = parseNum(t.slice(5));
          if (v === null || v > 0xffn) return "bad fill";
        } else return "unknown info argument";
      }
      return null;
    case "map":
    case "mapv": {
      if (n < 3 || parseNum(tok[1]) === null || parseNum(tok[2]) === null) return "usage: map";
      let i = 3;
      if (cmd === "map") {
        if (n < 4) return "missing PROT";
        if (!["r", "w", "rw", "-"].includes(tok[3])) return "bad PROT";
        i = 4;
      }
      return tok.slice(i).every(isVaddr) ? null : "bad argument";
    }
    case "unmap": {
      if (n < 3 || parseNum(tok[1]) === null || parseNum(tok[2]) === null) return "usage: unmap";
      for (let i = 3; i < n; i++) {
        if (tok[i] === "all" || tok[i] === "vaddr") continue;
        if (tok[i] === "dirty" && i + 1 < n && parseNum(tok[i + 1]) !== null) {
          const bytes = bitmapBytes(parseNum(tok[2]), parseNum(tok[i + 1]));
          if (bytes > BITMAP_MAX_BYTES) return "dirty bitmap too large for one record";
          i++;
          continue;
        }
        return "bad argument";
      }
      return null;
    }
    case "dirty":
      if (n === 2 && (tok[1] === "start" || tok[1] === "stop")) return null;
      if (n === 5 && tok[1] === "get" && tok.slice(2).every((t) => parseNum(t) !== null)) {
        return bitmapBytes(parseNum(tok[3]), parseNum(tok[4])) > BITMAP_MAX_BYTES
          ? "dirty bitmap too large for one record"
          : null;
      }
      return "usage: dirty start|stop|get IOVA SIZE PGSIZE";
    case "dma": {
      const d = takeDev(tok, ndev);
      if (!d) return "bad dev=K";
      const t = d.tok;
      if (t.length < 4 || parseNum(t[1]) === null || parseNum(t[2]) === null) return "usage: dma";
      if (t[3] !== "to-dev" && t[3] !== "from-dev") return "direction must be to-dev or from-dev";
      let off = 0n;
      for (const a of t.slice(4)) {
        if (a.startsWith("vaddr=+") && parseNum(a.slice(7)) !== null) off = parseNum(a.slice(7));
        else if (t[3] === "to-dev" && a.startsWith("fill=") && (parseNum(a.slice(5)) ?? 0x100n) <= 0xffn) continue;
        else if (a !== "klog=all") return "bad argument";
      }
      const len = parseNum(t[2]);
      if (len === 0n || len > 4096n || off > BASE_LEN || off + len > BASE_LEN) return "LEN must be 1..4096";
      return len > EDU_DMA_MAX ? "edu aborts QEMU 7.2 on a 4096-byte DMA" : null;
    }
    case "touch": {
      if (n !== 3 || !tok[1].startsWith("+")) return "usage: touch";
      const off = parseNum(tok[1].slice(1));
      const size = parseNum(tok[2]);
      return off === null || size === null || off > BASE_LEN || size > BASE_LEN - off ? "usage: touch" : null;
    }
    case "irq": {
      const d = takeDev(tok, ndev);
      if (!d) return "bad dev=K";
      const t = d.tok;
      if (t.length === 3 && t[1] === "msi" && (t[2] === "on" || t[2] === "off")) return null;
      if (t.length >= 2 && t[1] === "raise") {
        const ok = t
          .slice(2)
          .every((a) => a.startsWith("value=") && (parseNum(a.slice(6)) ?? 1n << 32n) <= 0xffff_ffffn);
        return ok ? null : "usage: irq raise";
      }
      return "usage: irq";
    }
    case "group":
    case "device": {
      const ops = cmd === "group" ? ["set", "unset", "status"] : ["open", "close"];
      const k = n === 3 ? parseNum(tok[1]) : null;
      return k !== null && k < BigInt(ndev) && ops.includes(tok[2]) ? null : `usage: ${cmd}`;
    }
    case "set-iommu":
      return n === 1 || (n === 2 && (tok[1] === "type1" || tok[1] === "type1v2")) ? null : "usage: set-iommu";
    default:
      return "unknown command";
  }
}

/** Why the probe rejects header tokens `tok`, or null. */
export function checkHeader(tok) {
  const [k, v] = tok;
  if (tok.length !== 2) return "unknown header line";
  if (k === "platform") return v === "x86-q35-vtd" || v === "arm64-virt-smmuv3" ? null : "unknown platform";
  if (k === "param") return /^[a-z_][a-z0-9_.]*=\S+$/.test(v) ? null : "bad param";
  if (k === "memlock") return parseNum(v) === null ? "bad memlock" : null;
  if (k === "devices") {
    const d = parseNum(v);
    return d !== null && d >= 1n && d <= BigInt(MAXDEV) ? null : "bad devices";
  }
  if (k === "iommu") return v === "type1" || v === "type1v2" ? null : "bad iommu";
  return "unknown header line";
}

/**
 * Every problem in `text` as `{ line, why }` (1-based line numbers); empty when the probe accepts it all.
 * `grammar` swaps in another body/header checker (the iommufd one, grammar-iommufd.mjs).
 */
export function checkScenario(text, grammar = { body: checkBody, header: checkHeader }) {
  const problems = [];
  const lines = text.split("\n");
  let inBody = false;
  let ndev = 1;
  let sawSeparator = false;
  lines.forEach((raw, i) => {
    if (raw.length > 4095) problems.push({ line: i + 1, why: "line longer than the probe's fgets buffer" });
    const tok = raw.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean);
    if (tok.length === 0) return;
    if (tok.length > 16) problems.push({ line: i + 1, why: "more than 16 tokens" });
    if (!inBody) {
      if (tok[0] === "---" && tok.length === 1) {
        inBody = true;
        sawSeparator = true;
        return;
      }
      const why = grammar.header(tok);
      if (why) problems.push({ line: i + 1, why });
      if (tok[0] === "devices" && !why) ndev = Number(parseNum(tok[1]));
      return;
    }
    const why = grammar.body(tok, ndev);
    if (why) problems.push({ line: i + 1, why });
  });
  if (!sawSeparator) problems.push({ line: 0, why: "no --- line" });
  return problems;
}
