/**
 * probe.c's iommufd section over `ProbeSys`: `/dev/iommu` (`iommufd`, `ioas`, `destroy`, `option`,
 * `vfio-ioas`, `hw-info`, `hwpt`), the VFIO device cdev (`cdev`, `devinfo`) and `group K set-iommufd`.
 * The same option parser (parse_iopts), the same 256-byte argument buffer with its `size=`/`tail=`
 * overrides, the same output fields and raw bytes (user pointers and fd numbers zeroed).
 */
import { BASE_VA, parseNum } from "@iommu-sim/conformance";
import * as U from "@vfio/uapi";
import * as F from "@vfio/uapi/iommufd";
import type { ProbeSys } from "./sys.js";
import { errorRecord, hexValue, Line, type RecordValue } from "./transcript.js";

/** probe.c MAXOBJ: IOAS and HWPT indices the probe remembers. */
const MAXOBJ = 16;

/** A device as the probe tracks it (probe.c struct pdev, the fields the iommufd commands touch). */
export interface IommufdPDev {
  bdf: string;
  grp: number;
  gfd: number;
  deviceFd: number;
  bar0: bigint | null;
  bar0Len: bigint;
  efd: number;
}

/** probe.c struct iopts. */
interface Iopts {
  size: number | null;
  tail: number | null;
  fd: number;
  on: "iommufd" | "container";
  dev: number;
  ioas: number;
  ioasGiven: boolean;
  hwpt: number;
  hwptGiven: boolean;
  autoIova: boolean;
  vaddr: bigint;
  id: number | null;
  num: bigint[];
  words: string[];
}

/** probe.c parse_vaddr (vaddr=+OFF or vaddr=abs:ADDR). */
function parseVaddr(t: string): bigint | null {
  const rest = t.slice(6);
  if (rest.startsWith("+")) {
    const v = parseNum(rest.slice(1));
    return v === null ? null : BigInt.asUintN(64, BASE_VA + v);
  }
  if (rest.startsWith("abs:")) return parseNum(rest.slice(4));
  return null;
}

export class ProbeIommufd {
  /** /dev/iommu fd (-1 when closed). */
  iommufd = -1;
  private readonly ioasIds: number[] = [];
  private readonly hwptIds: number[] = [];
  private readonly cdevFd: number[];
  private readonly devIds: number[];
  /** The argument buffer (probe.c ibuf) and the size field written into it. */
  private ibuf = new Uint8Array(256);
  private ibufSize = 0;

  constructor(
    private readonly sys: ProbeSys,
    private readonly devs: IommufdPDev[],
    private readonly container: () => number,
    private readonly emit: (line: Line) => void,
  ) {
    this.cdevFd = devs.map(() => -1);
    this.devIds = devs.map(() => 0);
  }

  /** Dispatches one iommufd-section line (`tokens[0]` names the command). */
  run(tok: string[], line: number, text: string): void {
    const handlers: Record<string, (t: string[], l: number, x: string) => void> = {
      iommufd: (t, l, x) => this.cmdIommufd(t, l, x),
      ioas: (t, l, x) => this.cmdIoas(t, l, x),
      destroy: (t, l, x) => this.cmdDestroy(t, l, x),
      option: (t, l, x) => this.cmdOption(t, l, x),
      "vfio-ioas": (t, l, x) => this.cmdVfioIoas(t, l, x),
      "hw-info": (t, l, x) => this.cmdHwInfo(t, l, x),
      hwpt: (t, l, x) => this.cmdHwpt(t, l, x),
      cdev: (t, l, x) => this.cmdCdev(t, l, x),
      devinfo: (t, l, x) => this.cmdDevinfo(t, l, x),
    };
    handlers[tok[0]!]?.(tok, line, text);
  }

  private error(line: number, text: string, why: string): void {
    this.emit(errorRecord(line, text, why));
  }

  private parse(tok: string[], first: number, line: number, text: string): Iopts | null {
    const o: Iopts = {
      size: null,
      tail: null,
      fd: this.iommufd,
      on: "iommufd",
      dev: 0,
      ioas: 0,
      ioasGiven: false,
      hwpt: 0,
      hwptGiven: false,
      autoIova: false,
      vaddr: BASE_VA,
      id: null,
      num: [],
      words: [],
    };
    for (let i = first; i < tok.length; i++) {
      const t = tok[i]!;
      let v: bigint | null = null;
      if (t.startsWith("size=") && (v = parseNum(t.slice(5))) !== null && v <= 0xffffffffn) o.size = Number(v);
      else if (t.startsWith("tail=") && (v = parseNum(t.slice(5))) !== null && v <= 0xffn) o.tail = Number(v);
      else if (t === "on=iommufd") {
        o.fd = this.iommufd;
        o.on = "iommufd";
      } else if (t === "on=container") {
        o.fd = this.container();
        o.on = "container";
      } else if (t.startsWith("dev=") && (v = parseNum(t.slice(4))) !== null && v < BigInt(this.devs.length))
        o.dev = Number(v);
      else if (t.startsWith("ioas=") && (v = parseNum(t.slice(5))) !== null && v < BigInt(MAXOBJ)) {
        o.ioas = Number(v);
        o.ioasGiven = true;
      } else if (t.startsWith("hwpt=") && (v = parseNum(t.slice(5))) !== null && v < BigInt(MAXOBJ)) {
        o.hwpt = Number(v);
        o.hwptGiven = true;
      } else if (t.startsWith("id=") && (v = parseNum(t.slice(3))) !== null && v <= 0xffffffffn) o.id = Number(v);
      else if (t === "auto") o.autoIova = true;
      else if (t.startsWith("vaddr=")) {
        const va = parseVaddr(t);
        if (va === null) {
          this.error(line, text, "bad vaddr");
          return null;
        }
        o.vaddr = va;
      } else if ((v = parseNum(t)) !== null) {
        if (o.num.length < 8) o.num.push(v);
      } else if (o.words.length < 8) o.words.push(t);
    }
    return o;
  }

  private ioasIdOf(o: Iopts): number {
    if (o.id !== null) return o.id;
    const k = o.ioasGiven ? o.ioas : 0;
    return k < this.ioasIds.length ? this.ioasIds[k]! : 0;
  }

  private remember(list: number[], id: number): void {
    if (list.length < MAXOBJ) list.push(id);
  }

  /** probe.c ibuf_prep: zeroed, the tail filled when asked, the size field first. */
  private prep(o: Iopts, real: number): DataView {
    this.ibuf = new Uint8Array(256);
    if (o.tail !== null) this.ibuf.fill(o.tail, real);
    this.ibufSize = o.size ?? real;
    const v = new DataView(this.ibuf.buffer);
    v.setUint32(0, this.ibufSize, true);
    return v;
  }

  /** ioctl(fd, req, ibuf): the buffer lives in user memory for the call. */
  private call(fd: number, req: number): { ret: number; errno: number } {
    const p = this.sys.calloc(256);
    this.sys.poke(p, this.ibuf);
    const r = this.sys.ioctl(fd, req, p);
    this.ibuf.set(this.sys.peek(p, 256));
    this.sys.free(p);
    return r;
  }

  /** probe.c o_common: size, tail, on, ret/errno, raw (at most 128 bytes). */
  private common(l: Line, o: Iopts, r: { ret: number; errno: number }, real: number): Line {
    l.int("size", this.ibufSize);
    if (o.tail !== null) l.hex("tail", o.tail);
    if (o.on !== "iommufd") l.str("on", o.on);
    l.ret(r.ret, r.errno);
    const shown = Math.min(128, Math.max(this.ibufSize, real));
    return l.bytes("raw", this.ibuf.subarray(0, shown));
  }

  private cmdIommufd(tok: string[], line: number, text: string): void {
    if (tok.length !== 2 || (tok[1] !== "open" && tok[1] !== "close")) {
      this.error(line, text, "usage: iommufd open|close");
      return;
    }
    const l = new Line("iommufd").str("op", tok[1]);
    if (tok[1] === "open") {
      const r = this.sys.open("/dev/iommu");
      if (r.ret >= 0) this.iommufd = r.ret;
      l.str("path", "/dev/iommu").ret(r.ret < 0 ? -1 : 0, r.errno);
    } else {
      const r = this.iommufd >= 0 ? this.sys.close(this.iommufd) : { ret: -1, errno: 9 };
      this.iommufd = -1;
      l.ret(r.ret, r.errno);
    }
    this.emit(l);
  }

  /** Writes `ranges` (16 bytes each) into fresh user memory of `slots` ranges filled with `fill`. */
  private rangesBuf(slots: number, fill: number): bigint {
    const p = this.sys.calloc(slots * 16);
    this.sys.poke(p, new Uint8Array(slots * 16).fill(fill));
    return p;
  }

  private rangesJson(bytes: Uint8Array, n: number): RecordValue {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Array.from({ length: n }, (_, i) => [
      hexValue(v.getBigUint64(i * 16, true)),
      hexValue(v.getBigUint64(i * 16 + 8, true)),
    ]);
  }

  private cmdIoas(tokIn: string[], line: number, text: string): void {
    if (tokIn.length < 2) {
      this.error(line, text, "usage: ioas alloc|ranges|allow|map|unmap|copy|destroy ...");
      return;
    }
    const op = tokIn[1];
    let srcK = 0;
    const tok: string[] = [];
    for (let i = 0; i < tokIn.length; i++) {
      const t = tokIn[i]!;
      if (i >= 2 && t.startsWith("src=")) {
        const v = parseNum(t.slice(4));
        if (v === null || v >= BigInt(MAXOBJ)) {
          this.error(line, text, "bad src=K");
          return;
        }
        srcK = Number(v);
      } else tok.push(t);
    }
    const o = this.parse(tok, 2, line, text);
    if (!o) return;
    if (op === "alloc") {
      this.prep(o, F.IOAS_ALLOC.size);
      const r = this.call(o.fd, F.IOMMU_IOAS_ALLOC);
      const id = F.rd32(this.ibuf, F.IOAS_ALLOC.outIoasId);
      const l = this.common(new Line("ioas").str("op", "alloc"), o, r, F.IOAS_ALLOC.size);
      if (r.ret === 0) {
        l.int("ioas", this.ioasIds.length).int("ioas_id", id);
        this.remember(this.ioasIds, id);
      }
      this.emit(l);
      return;
    }
    if (op === "ranges") {
      let num = o.num.length ? Number(BigInt.asUintN(32, o.num[0]!)) : 16;
      if (num > 64) num = 64;
      const rr = this.rangesBuf(64, 0xa5);
      const v = this.prep(o, F.IOAS_IOVA_RANGES.size);
      v.setUint32(F.IOAS_IOVA_RANGES.ioasId, this.ioasIdOf(o), true);
      v.setUint32(F.IOAS_IOVA_RANGES.numIovas, num, true);
      v.setBigUint64(F.IOAS_IOVA_RANGES.allowedIovas, rr, true);
      const r = this.call(o.fd, F.IOMMU_IOAS_IOVA_RANGES);
      const got = v.getUint32(F.IOAS_IOVA_RANGES.numIovas, true);
      const l = new Line("ioas")
        .str("op", "ranges")
        .int("ioas_id", v.getUint32(F.IOAS_IOVA_RANGES.ioasId, true))
        .int("num_in", num)
        .int("num_iovas", got)
        .hex("out_iova_alignment", v.getBigUint64(F.IOAS_IOVA_RANGES.outIovaAlignment, true));
      if (r.ret === 0) l.value("ranges", this.rangesJson(this.sys.peek(rr, 64 * 16), Math.min(got, num)));
      this.sys.free(rr);
      v.setBigUint64(F.IOAS_IOVA_RANGES.allowedIovas, 0n, true);
      this.emit(this.common(l, o, r, F.IOAS_IOVA_RANGES.size));
      return;
    }
    if (op === "allow") {
      const ranges: [bigint, bigint][] = [];
      for (const w of o.words) {
        let sep = w.indexOf("-");
        if (sep < 0) sep = w.indexOf(":");
        const a = sep < 0 ? null : parseNum(w.slice(0, sep));
        const b = sep < 0 ? null : parseNum(w.slice(sep + 1));
        if (a === null || b === null || ranges.length >= 16) {
          this.error(line, text, "usage: ioas allow START-LAST ... [ioas=K]");
          return;
        }
        ranges.push([a, b]);
      }
      const rr = this.sys.calloc(16 * 16);
      const rb = new Uint8Array(16 * 16);
      const rv = new DataView(rb.buffer);
      ranges.forEach(([a, b], i) => {
        rv.setBigUint64(i * 16, a, true);
        rv.setBigUint64(i * 16 + 8, b, true);
      });
      this.sys.poke(rr, rb);
      const v = this.prep(o, F.IOAS_ALLOW_IOVAS.size);
      v.setUint32(F.IOAS_ALLOW_IOVAS.ioasId, this.ioasIdOf(o), true);
      v.setUint32(F.IOAS_ALLOW_IOVAS.numIovas, ranges.length, true);
      v.setBigUint64(F.IOAS_ALLOW_IOVAS.allowedIovas, rr, true);
      const r = this.call(o.fd, F.IOMMU_IOAS_ALLOW_IOVAS);
      const l = new Line("ioas")
        .str("op", "allow")
        .int("ioas_id", v.getUint32(F.IOAS_ALLOW_IOVAS.ioasId, true))
        .value("allowed", this.rangesJson(rb, ranges.length));
      this.sys.free(rr);
      v.setBigUint64(F.IOAS_ALLOW_IOVAS.allowedIovas, 0n, true);
      this.emit(this.common(l, o, r, F.IOAS_ALLOW_IOVAS.size));
      return;
    }
    if (op === "map" || op === "copy") {
      const isCopy = op === "copy";
      if (o.num.length < (isCopy ? 3 : 2)) {
        this.error(
          line,
          text,
          isCopy
            ? "usage: ioas copy SRC_IOVA SIZE DST_IOVA PROT [src=K] [ioas=K] [auto]"
            : "usage: ioas map IOVA SIZE PROT [vaddr=..] [auto] [ioas=K]",
        );
        return;
      }
      const [iova, len] = [o.num[0]!, o.num[1]!];
      const dst = isCopy ? o.num[2]! : 0n;
      let flags = 0;
      let prot: string | null = null;
      for (const w of o.words) {
        if (w === "r") {
          flags |= F.IOMMU_IOAS_MAP_READABLE;
          prot = "r";
        } else if (w === "w") {
          flags |= F.IOMMU_IOAS_MAP_WRITEABLE;
          prot = "w";
        } else if (w === "rw") {
          flags |= F.IOMMU_IOAS_MAP_READABLE | F.IOMMU_IOAS_MAP_WRITEABLE;
          prot = "rw";
        } else if (w === "-") prot = "-";
        else {
          this.error(line, text, "bad PROT/argument");
          return;
        }
      }
      if (prot === null) {
        this.error(line, text, "missing PROT (r, w, rw, -)");
        return;
      }
      if (!o.autoIova) flags |= F.IOMMU_IOAS_MAP_FIXED_IOVA;
      if (!isCopy) {
        const M = F.IOAS_MAP;
        const v = this.prep(o, M.size);
        v.setUint32(M.flags, flags, true);
        v.setUint32(M.ioasId, this.ioasIdOf(o), true);
        v.setBigUint64(M.userVa, o.vaddr, true);
        v.setBigUint64(M.length, len, true);
        v.setBigUint64(M.iova, o.autoIova ? 0n : iova, true);
        const r = this.call(o.fd, F.IOMMU_IOAS_MAP);
        const l = new Line("ioas")
          .str("op", "map")
          .int("ioas_id", v.getUint32(M.ioasId, true))
          .hex("iova", iova)
          .hex("length", len)
          .str("prot", prot)
          .hex("vaddr", o.vaddr)
          .hex("flags", flags)
          .hex("out_iova", v.getBigUint64(M.iova, true));
        this.emit(this.common(l, o, r, M.size));
      } else {
        const C = F.IOAS_COPY;
        const v = this.prep(o, C.size);
        v.setUint32(C.flags, flags, true);
        v.setUint32(C.dstIoasId, this.ioasIdOf(o), true);
        v.setUint32(C.srcIoasId, srcK < this.ioasIds.length ? this.ioasIds[srcK]! : 0, true);
        v.setBigUint64(C.length, len, true);
        v.setBigUint64(C.srcIova, iova, true);
        v.setBigUint64(C.dstIova, o.autoIova ? 0n : dst, true);
        const r = this.call(o.fd, F.IOMMU_IOAS_COPY);
        const l = new Line("ioas")
          .str("op", "copy")
          .int("src_ioas_id", v.getUint32(C.srcIoasId, true))
          .int("dst_ioas_id", v.getUint32(C.dstIoasId, true))
          .hex("src_iova", iova)
          .hex("length", len)
          .hex("dst_iova", dst)
          .str("prot", prot)
          .hex("flags", flags)
          .hex("out_dst_iova", v.getBigUint64(C.dstIova, true));
        this.emit(this.common(l, o, r, C.size));
      }
      return;
    }
    if (op === "unmap") {
      if (o.num.length < 2) {
        this.error(line, text, "usage: ioas unmap IOVA SIZE [ioas=K]");
        return;
      }
      const M = F.IOAS_UNMAP;
      const v = this.prep(o, M.size);
      v.setUint32(M.ioasId, this.ioasIdOf(o), true);
      v.setBigUint64(M.iova, o.num[0]!, true);
      v.setBigUint64(M.length, o.num[1]!, true);
      const r = this.call(o.fd, F.IOMMU_IOAS_UNMAP);
      const l = new Line("ioas")
        .str("op", "unmap")
        .int("ioas_id", v.getUint32(M.ioasId, true))
        .hex("iova", o.num[0]!)
        .hex("length", o.num[1]!)
        .hex("unmapped", v.getBigUint64(M.length, true));
      this.emit(this.common(l, o, r, M.size));
      return;
    }
    if (op === "destroy") {
      const v = this.prep(o, F.DESTROY.size);
      const id = this.ioasIdOf(o);
      v.setUint32(F.DESTROY.id, id, true);
      const r = this.call(o.fd, F.IOMMU_DESTROY);
      this.emit(this.common(new Line("ioas").str("op", "destroy").int("id", id), o, r, F.DESTROY.size));
      return;
    }
    this.error(line, text, "usage: ioas alloc|ranges|allow|map|unmap|copy|destroy ...");
  }

  private cmdDestroy(tok: string[], line: number, text: string): void {
    const o = this.parse(tok, 1, line, text);
    if (!o) return;
    let id: number;
    if (o.hwptGiven) id = o.hwpt < this.hwptIds.length ? this.hwptIds[o.hwpt]! : 0;
    else if (o.num.length) id = Number(BigInt.asUintN(32, o.num[0]!));
    else {
      this.error(line, text, "usage: destroy ID|hwpt=K");
      return;
    }
    const v = this.prep(o, F.DESTROY.size);
    v.setUint32(F.DESTROY.id, id, true);
    const r = this.call(o.fd, F.IOMMU_DESTROY);
    this.emit(this.common(new Line("destroy").int("id", id), o, r, F.DESTROY.size));
  }

  private cmdOption(tok: string[], line: number, text: string): void {
    if (tok.length < 3 || (tok[1] !== "rlimit" && tok[1] !== "huge") || (tok[2] !== "get" && tok[2] !== "set")) {
      this.error(line, text, "usage: option rlimit|huge get|set [VAL] [ioas=K|id=N]");
      return;
    }
    const o = this.parse(tok, 3, line, text);
    if (!o) return;
    const isSet = tok[2] === "set";
    if (isSet && !o.num.length) {
      this.error(line, text, "set needs a value");
      return;
    }
    const P = F.OPTION;
    const v = this.prep(o, P.size);
    const optionId = tok[1] === "rlimit" ? F.IOMMU_OPTION_RLIMIT_MODE : F.IOMMU_OPTION_HUGE_PAGES;
    v.setUint32(P.optionId, optionId, true);
    v.setUint16(P.op, isSet ? F.IOMMU_OPTION_OP_SET : F.IOMMU_OPTION_OP_GET, true);
    const objectId = o.id ?? (optionId === F.IOMMU_OPTION_HUGE_PAGES ? this.ioasIdOf(o) : 0);
    v.setUint32(P.objectId, objectId, true);
    v.setBigUint64(P.val64, isSet ? o.num[0]! : 0n, true);
    const r = this.call(o.fd, F.IOMMU_OPTION);
    const l = new Line("option")
      .str("option", tok[1])
      .str("op", tok[2])
      .int("object_id", v.getUint32(P.objectId, true))
      .hex("val64", v.getBigUint64(P.val64, true));
    this.emit(this.common(l, o, r, P.size));
  }

  private cmdVfioIoas(tok: string[], line: number, text: string): void {
    const op = tok[1];
    if (tok.length < 2 || (op !== "get" && op !== "set" && op !== "clear")) {
      this.error(line, text, "usage: vfio-ioas get|set|clear [ioas=K] [on=container]");
      return;
    }
    const o = this.parse(tok, 2, line, text);
    if (!o) return;
    const P = F.VFIO_IOAS;
    const v = this.prep(o, P.size);
    v.setUint16(
      P.op,
      op === "get" ? F.IOMMU_VFIO_IOAS_GET : op === "set" ? F.IOMMU_VFIO_IOAS_SET : F.IOMMU_VFIO_IOAS_CLEAR,
      true,
    );
    v.setUint32(P.ioasId, op === "set" ? this.ioasIdOf(o) : 0, true);
    const r = this.call(o.fd, F.IOMMU_VFIO_IOAS);
    const id = v.getUint32(P.ioasId, true);
    const l = new Line("vfio-ioas").str("op", op).int("ioas_id", id);
    if (r.ret === 0 && op === "get") {
      l.int("ioas", this.ioasIds.length);
      this.remember(this.ioasIds, id);
    }
    this.emit(this.common(l, o, r, P.size));
  }

  private cmdHwInfo(tok: string[], line: number, text: string): void {
    const o = this.parse(tok, 1, line, text);
    if (!o) return;
    const H = F.HW_INFO;
    const data = this.sys.calloc(256);
    const v = this.prep(o, H.size);
    v.setUint32(H.devId, o.id ?? this.devIds[o.dev]!, true);
    v.setUint32(H.dataLen, o.num.length ? Number(BigInt.asUintN(32, o.num[0]!)) : 256, true);
    v.setBigUint64(H.dataUptr, data, true);
    const r = this.call(o.fd, F.IOMMU_GET_HW_INFO);
    const dataLen = v.getUint32(H.dataLen, true);
    const type = v.getUint32(H.outDataType, true);
    const l = new Line("hw-info")
      .int("dev", o.dev)
      .int("dev_id", v.getUint32(H.devId, true))
      .int("data_len", dataLen)
      .int("out_data_type", type)
      .int("out_max_pasid_log2", this.ibuf[H.outMaxPasidLog2]!)
      .hex("out_capabilities", v.getBigUint64(32, true));
    if (r.ret === 0) {
      const dl = Math.min(dataLen, 256);
      const bytes = this.sys.peek(data, 256);
      l.bytes("data", bytes.subarray(0, dl));
      if (type === F.IOMMU_HW_INFO_TYPE_INTEL_VTD && dl >= F.HW_INFO_VTD.size) {
        const d = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        l.hex("vtd_flags", d.getUint32(F.HW_INFO_VTD.flags, true))
          .hex("vtd_cap_reg", d.getBigUint64(F.HW_INFO_VTD.capReg, true))
          .hex("vtd_ecap_reg", d.getBigUint64(F.HW_INFO_VTD.ecapReg, true));
      }
    }
    this.sys.free(data);
    v.setBigUint64(H.dataUptr, 0n, true);
    this.emit(this.common(l, o, r, H.size));
  }

  private cmdHwpt(tok: string[], line: number, text: string): void {
    if (tok.length < 2 || tok[1] !== "alloc") {
      this.error(line, text, "usage: hwpt alloc [dev=K] [ioas=K] [FLAGS]");
      return;
    }
    const o = this.parse(tok, 2, line, text);
    if (!o) return;
    const H = F.HWPT_ALLOC;
    const v = this.prep(o, H.size);
    v.setUint32(H.flags, o.num.length ? Number(BigInt.asUintN(32, o.num[0]!)) : 0, true);
    v.setUint32(H.devId, this.devIds[o.dev]!, true);
    v.setUint32(H.ptId, this.ioasIdOf(o), true);
    v.setUint32(H.dataType, F.IOMMU_HWPT_DATA_NONE, true);
    const r = this.call(o.fd, F.IOMMU_HWPT_ALLOC);
    const l = new Line("hwpt")
      .str("op", "alloc")
      .int("dev", o.dev)
      .int("dev_id", v.getUint32(H.devId, true))
      .int("pt_id", v.getUint32(H.ptId, true))
      .hex("flags", v.getUint32(H.flags, true));
    if (r.ret === 0) {
      const id = v.getUint32(H.outHwptId, true);
      l.int("hwpt", this.hwptIds.length).int("hwpt_id", id);
      this.remember(this.hwptIds, id);
    }
    this.emit(this.common(l, o, r, H.size));
  }

  /** probe.c cdev_path: /dev/vfio/devices/<the first vfio* entry of the device's vfio-dev directory>. */
  private cdevPath(bdf: string): string | null {
    const names = this.sys.readDir(`/sys/bus/pci/devices/${bdf}/vfio-dev`);
    const n = names?.find((x) => x.startsWith("vfio"));
    return n === undefined ? null : `/dev/vfio/devices/${n}`;
  }

  private cmdCdev(tok: string[], line: number, text: string): void {
    if (tok.length < 2) {
      this.error(line, text, "usage: cdev open|bind|attach|detach|close [dev=K] ...");
      return;
    }
    const op = tok[1]!;
    const o = this.parse(tok, 2, line, text);
    if (!o) return;
    const d = this.devs[o.dev]!;
    const l = new Line("cdev").str("op", op).int("dev", o.dev);
    if (op === "open") {
      const path = this.cdevPath(d.bdf);
      if (path === null) {
        this.emit(l.str("path", "").ret(-1, 2));
        return;
      }
      const r = this.sys.open(path);
      l.str("path", path);
      if (r.ret >= 0) {
        this.cdevFd[o.dev] = r.ret;
        if (d.deviceFd < 0) d.deviceFd = r.ret;
        else l.int("device_fd_from_group", 1);
      }
      this.emit(l.ret(r.ret < 0 ? -1 : 0, r.errno));
      return;
    }
    if (op === "close") {
      if (d.bar0 !== null) {
        this.sys.munmap(d.bar0, d.bar0Len);
        d.bar0 = null;
      }
      if (d.efd >= 0) {
        this.sys.close(d.efd);
        d.efd = -1;
      }
      const fd = this.cdevFd[o.dev]!;
      const r = fd >= 0 ? this.sys.close(fd) : { ret: -1, errno: 9 };
      if (d.deviceFd === fd) d.deviceFd = -1;
      this.cdevFd[o.dev] = -1;
      this.emit(l.ret(r.ret, r.errno));
      return;
    }
    const fd = this.cdevFd[o.dev]!;
    if (op === "bind") {
      const v = this.prep(o, U.DEVICE_BIND_IOMMUFD_SIZE);
      v.setInt32(8, o.words[0] === "bad" ? -1 : this.iommufd, true);
      const r = this.call(fd, U.VFIO_DEVICE_BIND_IOMMUFD);
      const devid = v.getUint32(12, true);
      l.int("iommufd_fd_valid", v.getInt32(8, true) >= 0 ? 1 : 0).int("out_devid", devid);
      if (r.ret === 0) this.devIds[o.dev] = devid;
      v.setInt32(8, 0, true);
      this.emit(this.common(l, o, r, U.DEVICE_BIND_IOMMUFD_SIZE));
      return;
    }
    if (op === "attach") {
      const v = this.prep(o, U.DEVICE_ATTACH_IOMMUFD_PT_SIZE);
      const ptIn = o.hwptGiven ? (o.hwpt < this.hwptIds.length ? this.hwptIds[o.hwpt]! : 0) : this.ioasIdOf(o);
      v.setUint32(8, ptIn, true);
      const r = this.call(fd, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT);
      l.int("pt_id_in", ptIn).int("pt_id", v.getUint32(8, true));
      this.emit(this.common(l, o, r, U.DEVICE_ATTACH_IOMMUFD_PT_SIZE));
      return;
    }
    if (op === "detach") {
      this.prep(o, U.DEVICE_DETACH_IOMMUFD_PT_SIZE);
      const r = this.call(fd, U.VFIO_DEVICE_DETACH_IOMMUFD_PT);
      this.emit(this.common(l, o, r, U.DEVICE_DETACH_IOMMUFD_PT_SIZE));
      return;
    }
    this.emit(l.str("why", "unknown cdev op"));
  }

  private cmdDevinfo(tok: string[], line: number, text: string): void {
    const o = this.parse(tok, 1, line, text);
    if (!o) return;
    const d = this.devs[o.dev]!;
    const v = this.prep(o, U.DEVICE_INFO_SIZE);
    const r = this.call(d.deviceFd, U.VFIO_DEVICE_GET_INFO);
    const l = new Line("devinfo")
      .int("dev", o.dev)
      .int("argsz", v.getUint32(0, true))
      .hex("flags", v.getUint32(4, true))
      .int("num_regions", v.getUint32(8, true))
      .int("num_irqs", v.getUint32(12, true))
      .int("cap_offset", v.getUint32(16, true));
    this.emit(this.common(l, o, r, U.DEVICE_INFO_SIZE));
  }

  /** `group K set-iommufd`: VFIO_GROUP_SET_CONTAINER with the /dev/iommu fd. */
  groupSetIommufd(k: number): void {
    const d = this.devs[k]!;
    const p = this.sys.calloc(4);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, this.iommufd, true);
    this.sys.poke(p, b);
    const r = this.sys.ioctl(d.gfd, U.VFIO_GROUP_SET_CONTAINER, p);
    this.sys.free(p);
    this.emit(new Line("group").int("dev", k).int("group", d.grp).str("op", "set-iommufd").ret(r.ret, r.errno));
  }
}
