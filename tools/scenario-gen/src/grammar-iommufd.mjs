/**
 * The iommufd and VFIO cdev part of the recorder probe's grammar (probe/README.md, "iommufd and VFIO cdev
 * commands"), written from probe.c's parse_iopts and the cmd_ioas/cmd_cdev/… argument checks: the lines the
 * probe answers with an `error` record. Every other body line goes to the type1 checker.
 */
import { checkBody, checkHeader, checkScenario, parseNum } from "./grammar.mjs";
import { U32_MAX } from "./numbers.mjs";

/** probe.c MAXOBJ: IOAS and HWPT index lists hold 16 entries; `ioas=K`/`hwpt=K`/`src=K` need K < 16. */
export const MAXOBJ = 16;
/** probe.c: `ioas ranges N` caps its array at 64 entries; `ioas allow` takes at most 16 ranges. */
export const RANGES_MAX = 64;
export const ALLOW_MAX = 16;

const PROTS = ["r", "w", "rw", "-"];

/**
 * probe.c parse_iopts: options it recognises, positional numbers, and the words left over. A malformed
 * option (dev=K with K ≥ devices, ioas=16, size above u32) is not an error there: it becomes a word, which
 * every command that reads words then rejects. A bad vaddr= is an error.
 */
export function parseIopts(tok, ndev) {
  const o = { nums: [], words: [], badVaddr: false };
  for (const t of tok) {
    const opt = (p) => (t.startsWith(p) ? parseNum(t.slice(p.length)) : null);
    if (opt("size=") !== null && opt("size=") <= U32_MAX) o.size = opt("size=");
    else if (opt("tail=") !== null && opt("tail=") <= 0xffn) o.tail = opt("tail=");
    else if (t === "on=iommufd" || t === "on=container") o.on = t.slice(3);
    else if (opt("dev=") !== null && opt("dev=") < BigInt(ndev)) o.dev = Number(opt("dev="));
    else if (opt("ioas=") !== null && opt("ioas=") < BigInt(MAXOBJ)) o.ioas = Number(opt("ioas="));
    else if (opt("hwpt=") !== null && opt("hwpt=") < BigInt(MAXOBJ)) o.hwpt = Number(opt("hwpt="));
    else if (opt("id=") !== null && opt("id=") <= U32_MAX) o.id = opt("id=");
    else if (t === "auto") o.auto = true;
    else if (t.startsWith("vaddr=")) {
      const ok = t.startsWith("vaddr=+")
        ? parseNum(t.slice(7)) !== null
        : t.startsWith("vaddr=abs:") && parseNum(t.slice(10)) !== null;
      if (!ok) o.badVaddr = true;
    } else if (parseNum(t) !== null) o.nums.push(parseNum(t));
    else o.words.push(t);
  }
  return o;
}

/** probe.c parse_range_words: `START-LAST` or `START:LAST`, at most ALLOW_MAX of them. */
function rangeWordsOk(words) {
  if (words.length > ALLOW_MAX) return false;
  return words.every((w) => {
    const i = w.search(/[-:]/);
    return i > 0 && parseNum(w.slice(0, i)) !== null && parseNum(w.slice(i + 1)) !== null;
  });
}

/** Why the probe rejects body tokens `tok` of a `mode iommufd`/`mode none` scenario, or null. */
export function checkIommufdBody(tok, ndev) {
  const [cmd] = tok;
  const n = tok.length;
  const opts = (from) => parseIopts(tok.slice(from), ndev);
  switch (cmd) {
    case "iommufd":
      return n === 2 && (tok[1] === "open" || tok[1] === "close") ? null : "usage: iommufd open|close";
    case "ioas": {
      if (n < 2) return "usage: ioas";
      const rest = [];
      for (const t of tok.slice(2)) {
        if (!t.startsWith("src=")) rest.push(t);
        else if ((parseNum(t.slice(4)) ?? BigInt(MAXOBJ)) >= BigInt(MAXOBJ)) return "bad src=K";
      }
      const o = parseIopts(rest, ndev);
      if (o.badVaddr) return "bad vaddr";
      switch (tok[1]) {
        case "alloc":
        case "ranges":
        case "destroy":
          return null;
        case "allow":
          return rangeWordsOk(o.words) ? null : "usage: ioas allow START-LAST ... [ioas=K]";
        case "map":
        case "copy": {
          if (o.nums.length < (tok[1] === "map" ? 2 : 3)) return `usage: ioas ${tok[1]}`;
          if (!o.words.every((w) => PROTS.includes(w))) return "bad PROT/argument";
          return o.words.length ? null : "missing PROT (r, w, rw, -)";
        }
        case "unmap":
          return o.nums.length >= 2 ? null : "usage: ioas unmap IOVA SIZE [ioas=K]";
        default:
          return "usage: ioas alloc|ranges|allow|map|unmap|copy|destroy ...";
      }
    }
    case "destroy": {
      const o = opts(1);
      if (o.badVaddr) return "bad vaddr";
      return o.hwpt !== undefined || o.nums.length ? null : "usage: destroy ID|hwpt=K";
    }
    case "option": {
      if (n < 3 || !["rlimit", "huge"].includes(tok[1]) || !["get", "set"].includes(tok[2])) return "usage: option";
      const o = opts(3);
      if (o.badVaddr) return "bad vaddr";
      return tok[2] === "set" && !o.nums.length ? "set needs a value" : null;
    }
    case "vfio-ioas":
      if (n < 2 || !["get", "set", "clear"].includes(tok[1])) return "usage: vfio-ioas get|set|clear";
      return opts(2).badVaddr ? "bad vaddr" : null;
    case "hw-info":
    case "devinfo":
      return opts(1).badVaddr ? "bad vaddr" : null;
    case "hwpt":
      if (n < 2 || tok[1] !== "alloc") return "usage: hwpt alloc [dev=K] [ioas=K] [FLAGS]";
      return opts(2).badVaddr ? "bad vaddr" : null;
    case "cdev":
      if (n < 2 || !["open", "bind", "attach", "detach", "close"].includes(tok[1])) return "usage: cdev";
      return opts(2).badVaddr ? "bad vaddr" : null;
    case "group": {
      const k = n === 3 ? parseNum(tok[1]) : null;
      const ops = ["set", "unset", "status", "open", "close", "set-iommufd"];
      return k !== null && k < BigInt(ndev) && ops.includes(tok[2]) ? null : "usage: group";
    }
    default:
      return checkBody(tok, ndev);
  }
}

/** Header lines an iommufd scenario adds to the type1 ones: `mode type1|iommufd|none`, `modset NAME`. */
export function checkIommufdHeader(tok) {
  if (tok.length === 2 && tok[0] === "mode") return ["type1", "iommufd", "none"].includes(tok[1]) ? null : "bad mode";
  if (tok.length === 2 && tok[0] === "modset") return null;
  return checkHeader(tok);
}

/** checkScenario with the iommufd grammar: every problem in `text` as `{ line, why }`. */
export function checkIommufdScenario(text) {
  return checkScenario(text, { body: checkIommufdBody, header: checkIommufdHeader });
}
