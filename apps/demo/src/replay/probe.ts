/**
 * probe.c re-implemented over `ProbeSys`: the same setup, the same argument bytes (struct layouts, argsz,
 * fill bytes, user pointers), the same order of system calls and the same output fields. Nothing here
 * knows the model: every answer comes from the system calls.
 */
import { U64_MAX } from "@iommu/core";
import { BASE_LEN, BASE_VA, type Command, type DevOp, parseCommand, type Scenario } from "@iommu-sim/conformance";
import * as U from "@vfio/uapi";
import { ProbeIommufd } from "./probe-iommufd.js";
import type { ProbeSys } from "./sys.js";
import { errname, errorRecord, hexBytes, hexValue, Line, OUT_MAX, type RecordValue } from "./transcript.js";

function le(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

interface PDev {
  bdf: string;
  grp: number;
  gfd: number;
  deviceFd: number;
  bar0: bigint | null;
  bar0Len: bigint;
  efd: number;
}

/** probe.c bitmap_bytes: ceil(size/pgsize) bits rounded up to u64 words (C u64 arithmetic), 8..16 MiB. */
export function bitmapBytes(size: bigint, pgsize: bigint): number {
  if (pgsize === 0n) return 8;
  const pages = (size / pgsize + (size % pgsize !== 0n ? 1n : 0n)) & U64_MAX;
  let bytes = (((pages + 63n) & U64_MAX) / 64n) * 8n;
  if (bytes === 0n) bytes = 8n;
  if (bytes > 16n << 20n) bytes = 16n << 20n;
  return Number(bytes);
}

function protStr(flags: number): string {
  return ["-", "r", "w", "rw"][flags & 3]!;
}

/** Runs a parsed scenario; returns the transcript lines (without trailing newlines). */
export class Probe {
  private readonly out: Line[] = [];
  private container = -1;
  private readonly devs: PDev[];
  private lastPat = new Uint8Array(0);
  private lastPatLine = 0;
  private readonly fd: ProbeIommufd;

  constructor(
    private readonly sys: ProbeSys,
    private readonly scn: Scenario,
  ) {
    this.devs = sys.devices().map((d) => ({
      bdf: d.bdf,
      grp: d.group,
      gfd: -1,
      deviceFd: -1,
      bar0: null,
      bar0Len: 0n,
      efd: -1,
    }));
    this.fd = new ProbeIommufd(
      sys,
      this.devs,
      () => this.container,
      (l) => this.emit(l),
    );
  }

  /** Runs the scenario once: the transcript's lines as text. */
  run(): string[] {
    return this.lines().map((l) => l.end());
  }

  /** Runs the scenario once: the transcript's lines (text and record each). */
  lines(): Line[] {
    const { header } = this.scn;
    for (const e of this.scn.headerErrors) this.emit(errorRecord(e.line, e.text, e.why));
    const u = this.sys.uname();
    const d0 = this.devs[0];
    const hello = new Line("hello")
      .str("kernel", u.release)
      .str("kernel_version", u.version)
      .str("machine", u.machine)
      .str("platform", header.platform)
      .int("group", d0?.grp ?? -1)
      .str("device", d0?.bdf ?? "")
      .str("iommu", header.iommu)
      .str("params", header.params);
    if (header.mode !== "type1") hello.str("mode", header.mode);
    if (header.modset) hello.str("modset", header.modset);
    if (header.devices) {
      hello.int("devices_requested", header.devices);
      hello.value(
        "devices",
        this.devs.map((d, k) => ({ dev: k, device: d.bdf, group: d.grp })),
      );
    }
    if (header.memlock !== null) hello.hex("memlock", header.memlock);
    hello.hex("base", BASE_VA);
    this.emit(hello);

    const m = this.sys.mmapAnonymous(BASE_VA, BASE_LEN);
    if (m.ret < 0) {
      this.emit(new Line("setup").str("step", "mmap base").str("errno", errname(m.errno)));
      return this.done();
    }
    if (!d0 || d0.grp < 0) {
      this.emit(new Line("setup").str("step", "find iommu group"));
      return this.done();
    }
    if (!this.setup()) return this.done();
    for (const b of this.scn.body) {
      const c = parseCommand(b, this.devs.length);
      if (c.kind === "error") this.emit(errorRecord(c.line, c.text, c.why));
      else this.command(c, b.line);
    }
    return this.done();
  }

  private emit(line: Line): void {
    this.out.push(line);
  }

  /** The transcript text: lines joined by newlines, each cut as probe.c's 1 MiB line buffer cuts it. */
  static text(lines: readonly string[]): string {
    let t = "";
    for (const l of lines) {
      const full = `${l}\n`;
      t += full.length > OUT_MAX ? full.slice(0, OUT_MAX) : full;
    }
    return t;
  }

  private done(): Line[] {
    this.emit(new Line("done"));
    return this.out;
  }

  // ------------------------------------------------------------------ helpers over user memory

  /** ioctl with a struct argument: copies `bytes` into fresh user memory, calls, reads it back. */
  private ioctlStruct(fd: number, req: number, bytes: Uint8Array): { ret: number; errno: number } {
    const p = this.sys.calloc(bytes.length);
    this.sys.poke(p, bytes);
    const r = this.sys.ioctl(fd, req, p);
    bytes.set(this.sys.peek(p, bytes.length));
    this.sys.free(p);
    return r;
  }

  private ioctlInt(fd: number, req: number, v: number): { ret: number; errno: number } {
    return this.sys.ioctl(fd, req, BigInt(v));
  }

  private groupStatus(gfd: number): { ret: number; errno: number; flags: number } {
    const st = new Uint8Array(U.GROUP_STATUS_SIZE);
    le(st).setUint32(0, U.GROUP_STATUS_SIZE, true);
    const r = this.ioctlStruct(gfd, U.VFIO_GROUP_GET_STATUS, st);
    return { ...r, flags: le(st).getUint32(4, true) };
  }

  private setContainer(gfd: number): { ret: number; errno: number } {
    const b = new Uint8Array(4);
    le(b).setInt32(0, this.container, true);
    return this.ioctlStruct(gfd, U.VFIO_GROUP_SET_CONTAINER, b);
  }

  // ------------------------------------------------------------------ setup

  private setup(): boolean {
    const sys = this.sys;
    if (this.scn.header.mode !== "type1") return this.setupMemlockOnly();
    const c = sys.open("/dev/vfio/vfio");
    if (c.ret < 0) {
      this.emit(new Line("setup").str("step", "open /dev/vfio/vfio").str("errno", errname(c.errno)));
      return false;
    }
    this.container = c.ret;
    const api = this.ioctlInt(this.container, U.VFIO_GET_API_VERSION, 0).ret;
    const d0 = this.devs[0]!;
    const gpath = `/dev/vfio/${d0.grp}`;
    const g = sys.open(gpath);
    if (g.ret < 0) {
      this.emit(new Line("setup").str("step", "open group").str("path", gpath).str("errno", errname(g.errno)));
      return false;
    }
    d0.gfd = g.ret;
    const st = this.groupStatus(d0.gfd);
    const line = new Line("setup").int("api_version", api).int("group_status_ret", st.ret).hex("group_flags", st.flags);
    if (!(st.flags & U.VFIO_GROUP_FLAGS_VIABLE)) {
      this.emit(line.str("step", "group not viable"));
      return false;
    }
    let r = this.setContainer(d0.gfd);
    if (r.ret) {
      this.emit(line.str("step", "VFIO_GROUP_SET_CONTAINER").str("errno", errname(r.errno)));
      return false;
    }
    const type = this.scn.header.iommu === "type1" ? U.VFIO_TYPE1_IOMMU : U.VFIO_TYPE1v2_IOMMU;
    r = this.ioctlInt(this.container, U.VFIO_SET_IOMMU, type);
    if (r.ret) {
      this.emit(line.str("step", "VFIO_SET_IOMMU").str("errno", errname(r.errno)));
      return false;
    }
    line.str("iommu", this.scn.header.iommu);
    if (this.devs.length > 1) {
      const parts: RecordValue[] = [];
      for (let k = 1; k < this.devs.length; k++) {
        const d = this.devs[k]!;
        const o = sys.open(`/dev/vfio/${d.grp}`);
        d.gfd = o.ret < 0 ? -1 : o.ret;
        const g: Record<string, RecordValue> = { dev: k, device: d.bdf, group: d.grp };
        if (d.gfd < 0) g.open_errno = errname(o.errno);
        else {
          const gs = this.groupStatus(d.gfd);
          g.status_ret = gs.ret;
          g.flags = hexValue(gs.flags);
        }
        parts.push(g);
      }
      line.value("other_groups", parts);
    }
    const memlock = this.scn.header.memlock;
    if (memlock !== null) {
      line.hex("memlock", memlock);
      const why = sys.dropIpcLockAndSetMemlock(memlock);
      if (why !== null) {
        this.emit(line.str("step", "memlock").str("why", why));
        return false;
      }
      line.int("cap_ipc_lock", 0);
    }
    this.emit(line.int("ret", 0));
    return true;
  }

  /** probe.c setup_memlock_only: `mode iommufd|none` opens nothing; the scenario does. */
  private setupMemlockOnly(): boolean {
    const line = new Line("setup").str("mode", this.scn.header.mode);
    const memlock = this.scn.header.memlock;
    if (memlock !== null) {
      line.hex("memlock", memlock);
      const why = this.sys.dropIpcLockAndSetMemlock(memlock);
      if (why !== null) {
        this.emit(line.str("step", "memlock").str("why", why));
        return false;
      }
      line.int("cap_ipc_lock", 0);
    }
    this.emit(line.int("ret", 0));
    return true;
  }

  // ------------------------------------------------------------------ commands

  private command(c: Command, lineNo: number): void {
    switch (c.kind) {
      case "ext":
        this.cmdExt();
        break;
      case "resv":
        this.cmdResv(c.dev, c.devGiven);
        break;
      case "info":
        this.cmdInfo(c.argsz, c.fill);
        break;
      case "map":
        this.cmdMap(c.iova, c.size, c.flags, c.vaddr, c.vaddrOnly);
        break;
      case "unmap":
        this.cmdUnmap(c.iova, c.size, c.flags, c.pgsize);
        break;
      case "dirty-start":
      case "dirty-stop":
        this.cmdDirtyStartStop(c.kind === "dirty-start");
        break;
      case "dirty-get":
        this.cmdDirtyGet(c.iova, c.size, c.pgsize);
        break;
      case "locked":
        this.cmdLocked();
        break;
      case "dma":
        this.cmdDma(c, lineNo);
        break;
      case "touch":
        this.cmdTouch(c.off, c.size);
        break;
      case "irq":
        this.cmdIrq(c.dev, c.op, c.value);
        break;
      case "group":
        this.cmdGroup(c.dev, c.op);
        break;
      case "device":
        this.cmdDevice(c.dev, c.op);
        break;
      case "set-iommu":
        this.cmdSetIommu(c.iommu);
        break;
      case "iommufd":
        this.fd.run(c.tokens, lineNo, c.text);
        break;
    }
  }

  private cmdExt(): void {
    const exts: [string, number][] = [
      ["type1", U.VFIO_TYPE1_IOMMU],
      ["type1v2", U.VFIO_TYPE1v2_IOMMU],
      ["type1_nesting", U.VFIO_TYPE1_NESTING_IOMMU],
      ["dma_cc", U.VFIO_DMA_CC_IOMMU],
      ["unmap_all", U.VFIO_UNMAP_ALL],
      ["update_vaddr", U.VFIO_UPDATE_VADDR],
      ["noiommu", U.VFIO_NOIOMMU_IOMMU],
    ];
    const line = new Line("ext");
    for (const [name, ext] of exts) {
      const r = this.ioctlInt(this.container, U.VFIO_CHECK_EXTENSION, ext);
      line.int(name, r.ret);
      if (r.ret < 0) line.str(`${name}_errno`, errname(r.errno));
    }
    this.emit(line);
  }

  private readText(path: string, max: number): string | null {
    const r = this.sys.readFile(path, max);
    if (r.ret < 0) return null;
    return String.fromCharCode(...r.data);
  }

  private cmdResv(k: number, given: boolean): void {
    const gno = this.devs[k]!.grp;
    const line = new Line("resv");
    if (given) line.int("dev", k).int("group", gno);
    const text = this.readText(`/sys/kernel/iommu_groups/${gno}/reserved_regions`, 1 << 20);
    const regions: string[][] = [];
    if (text !== null) {
      // fgets(lbuf, 256) + tokenize, one list per non-empty line
      for (const l of splitFgets(text, 256)) {
        const tok = tokenizeMax(l, 16);
        if (tok.length) regions.push(tok);
      }
    }
    line.value("regions", regions);
    let type = this.readText(`/sys/kernel/iommu_groups/${gno}/type`, 63) ?? "";
    type = type.split("\0")[0]!.replace(/[\n ]+$/, "");
    line.str("type", type);
    const names = (this.sys.readDir(`/sys/kernel/iommu_groups/${gno}/devices`) ?? [])
      .filter((n) => !n.startsWith("."))
      .slice(0, 32)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    line.strList("devices", names);
    this.emit(line);
  }

  private cmdInfo(argsz: bigint, fill: number): void {
    const bufsz = argsz > 4096n ? Number(argsz) + 4096 : 8192;
    const buf = new Uint8Array(bufsz).fill(fill);
    le(buf).setUint32(0, Number(argsz), true);
    const r = this.ioctlStruct(this.container, U.VFIO_IOMMU_GET_INFO, buf);
    const v = le(buf);
    const infoArgsz = v.getUint32(0, true);
    const flags = v.getUint32(4, true);
    const capOffset = v.getUint32(16, true);
    const line = new Line("info").hex("argsz_in", argsz);
    if (fill) line.hex("fill", fill);
    line
      .ret(r.ret, r.errno)
      .int("argsz", infoArgsz)
      .hex("flags", flags)
      .hex("iova_pgsizes", v.getBigUint64(8, true))
      .int("cap_offset", capOffset);
    const lim = Math.min(Number(argsz), infoArgsz);
    let rawlen = lim;
    if (rawlen < U.INFO_SIZE) rawlen = U.INFO_SIZE;
    if (rawlen > bufsz) rawlen = bufsz;
    let shown = rawlen;
    if (r.ret === 0 && flags & U.VFIO_IOMMU_INFO_CAPS && capOffset && argsz >= BigInt(U.INFO_CAPSZ)) {
      const end = decodeCaps(line, buf, lim, capOffset);
      if (end && end >= U.INFO_SIZE && end < shown) shown = end;
    }
    line.int("raw_len", rawlen).bytes("raw", buf.subarray(0, shown));
    this.emit(line);
  }

  private cmdMap(iova: bigint, size: bigint, flags: number, vaddr: bigint, vaddrOnly: boolean): void {
    const m = new Uint8Array(U.DMA_MAP_SIZE);
    const v = le(m);
    v.setUint32(0, U.DMA_MAP_SIZE, true);
    v.setUint32(4, vaddrOnly ? U.VFIO_DMA_MAP_FLAG_VADDR : flags, true);
    v.setBigUint64(8, vaddr, true);
    v.setBigUint64(16, iova, true);
    v.setBigUint64(24, size, true);
    const r = this.ioctlStruct(this.container, U.VFIO_IOMMU_MAP_DMA, m);
    const line = new Line(vaddrOnly ? "mapv" : "map").hex("iova", iova).hex("size", size);
    if (!vaddrOnly) line.str("prot", protStr(flags));
    this.emit(line.hex("vaddr", vaddr).ret(r.ret, r.errno));
  }

  private cmdUnmap(iova: bigint, size: bigint, flags: number, pgsize: bigint): void {
    const dirty = (flags & U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
    const structsz = U.DMA_UNMAP_SIZE + (dirty ? U.BITMAP_SIZE : 0);
    const buf = new Uint8Array(structsz);
    const v = le(buf);
    v.setUint32(0, structsz, true);
    v.setUint32(4, flags, true);
    v.setBigUint64(8, iova, true);
    v.setBigUint64(16, size, true);
    let bmbytes = 0;
    let bm = 0n;
    if (dirty) {
      bmbytes = bitmapBytes(size, pgsize);
      bm = this.sys.calloc(bmbytes);
      v.setBigUint64(24, pgsize, true);
      v.setBigUint64(32, BigInt(bmbytes), true);
      v.setBigUint64(40, bm, true);
    }
    const r = this.ioctlStruct(this.container, U.VFIO_IOMMU_UNMAP_DMA, buf);
    const names: string[] = [];
    if (flags & U.VFIO_DMA_UNMAP_FLAG_ALL) names.push("all");
    if (dirty) names.push("dirty");
    if (flags & U.VFIO_DMA_UNMAP_FLAG_VADDR) names.push("vaddr");
    const line = new Line("unmap").hex("iova", iova).hex("size", size).strList("flags", names);
    if (dirty) line.hex("pgsize", pgsize).hex("bitmap_size", bmbytes);
    line.ret(r.ret, r.errno).hex("unmapped", v.getBigUint64(16, true));
    if (dirty) {
      line.bytes("bitmap", this.sys.peek(bm, bmbytes));
      this.sys.free(bm);
    }
    this.emit(line);
  }

  private cmdDirtyStartStop(start: boolean): void {
    const d = new Uint8Array(U.DIRTY_BITMAP_MINSZ);
    le(d).setUint32(0, U.DIRTY_BITMAP_MINSZ, true);
    le(d).setUint32(4, start ? U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START : U.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP, true);
    const r = this.ioctlStruct(this.container, U.VFIO_IOMMU_DIRTY_PAGES, d);
    this.emit(new Line("dirty").str("op", start ? "start" : "stop").ret(r.ret, r.errno));
  }

  private cmdDirtyGet(iova: bigint, size: bigint, pgsize: bigint): void {
    const sz = U.DIRTY_BITMAP_MINSZ + U.DIRTY_BITMAP_GET_SIZE;
    const buf = new Uint8Array(sz);
    const v = le(buf);
    const bmbytes = bitmapBytes(size, pgsize);
    const bm = this.sys.calloc(bmbytes);
    v.setUint32(0, sz, true);
    v.setUint32(4, U.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, true);
    v.setBigUint64(8, iova, true);
    v.setBigUint64(16, size, true);
    v.setBigUint64(24, pgsize, true);
    v.setBigUint64(32, BigInt(bmbytes), true);
    v.setBigUint64(40, bm, true);
    const r = this.ioctlStruct(this.container, U.VFIO_IOMMU_DIRTY_PAGES, buf);
    const line = new Line("dirty")
      .str("op", "get")
      .hex("iova", iova)
      .hex("size", size)
      .hex("pgsize", pgsize)
      .hex("bitmap_size", bmbytes)
      .ret(r.ret, r.errno)
      .bytes("bitmap", this.sys.peek(bm, bmbytes));
    this.sys.free(bm);
    this.emit(line);
  }

  private cmdLocked(): void {
    const line = new Line("locked");
    const text = this.readText("/proc/self/status", 1 << 16);
    if (text !== null) {
      for (const l of text.split("\n")) {
        const lck = /^VmLck:\s*(\d+)/.exec(l);
        const pin = /^VmPin:\s*(\d+)/.exec(l);
        if (lck) line.int("vmlck_kb", BigInt(lck[1]!));
        else if (pin) line.int("vmpin_kb", BigInt(pin[1]!));
      }
    }
    this.emit(line);
  }

  private cmdTouch(off: bigint, size: bigint): void {
    const pg = BigInt(this.sys.pageSize());
    for (let a = off & ~(pg - 1n); a < off + size; a += pg) this.sys.poke(BASE_VA + a, new Uint8Array([1]));
    this.emit(new Line("touch").hex("vaddr", BASE_VA + off).hex("size", size));
  }

  // ------------------------------------------------------------------ devices

  /** probe.c open_device: device fd, BAR0 mmap, MEM + BUS MASTER in the command register; 0 or an errno. */
  private openDevice(d: PDev): number {
    const sys = this.sys;
    if (d.deviceFd >= 0 && d.bar0 !== null) return 0;
    if (d.deviceFd < 0) {
      const name = new TextEncoder().encode(`${d.bdf}\0`);
      const r = this.ioctlStruct(d.gfd, U.VFIO_GROUP_GET_DEVICE_FD, name);
      if (r.ret < 0) {
        d.deviceFd = -1;
        return r.errno;
      }
      d.deviceFd = r.ret;
    }
    const ri = this.regionInfo(d.deviceFd, U.VFIO_PCI_BAR0_REGION_INDEX);
    if (ri.ret) return ri.errno;
    const m = sys.mmapDevice(d.deviceFd, ri.size, ri.offset);
    if (m.ret < 0) return m.errno;
    d.bar0 = m.addr;
    d.bar0Len = ri.size;
    const ci = this.regionInfo(d.deviceFd, U.VFIO_PCI_CONFIG_REGION_INDEX);
    if (ci.ret === 0) {
      const rd = sys.pread(d.deviceFd, 2, ci.offset + 4n);
      if (rd.ret === 2) {
        const cmd = (rd.data[0]! | (rd.data[1]! << 8) | 0x6) & 0xffff;
        sys.pwrite(d.deviceFd, new Uint8Array([cmd & 0xff, cmd >> 8]), ci.offset + 4n);
      }
    }
    return 0;
  }

  private regionInfo(fd: number, index: number): { ret: number; errno: number; size: bigint; offset: bigint } {
    const ri = new Uint8Array(U.REGION_INFO_SIZE);
    le(ri).setUint32(0, U.REGION_INFO_SIZE, true);
    le(ri).setUint32(8, index, true);
    const r = this.ioctlStruct(fd, U.VFIO_DEVICE_GET_REGION_INFO, ri);
    return { ...r, size: le(ri).getBigUint64(16, true), offset: le(ri).getBigUint64(24, true) };
  }

  private r32(d: PDev, off: number): number {
    return this.sys.read32(d.bar0! + BigInt(off));
  }
  private r64(d: PDev, off: number): bigint {
    return this.sys.read64(d.bar0! + BigInt(off));
  }
  private w32(d: PDev, off: number, v: number): void {
    this.sys.write32(d.bar0! + BigInt(off), v >>> 0);
  }
  private w64(d: PDev, off: number, v: bigint): void {
    this.sys.write64(d.bar0! + BigInt(off), v);
  }

  /** probe.c edu_run: program edu's DMA engine and poll its busy bit (4000 × 500 µs). */
  private eduRun(d: PDev, src: bigint, dst: bigint, len: bigint, eduToRam: boolean): boolean {
    this.w64(d, 0x80, src);
    this.w64(d, 0x88, dst);
    this.w64(d, 0x90, len);
    this.w64(d, 0x98, eduToRam ? 3n : 1n);
    for (let i = 0; i < 4000 && this.r64(d, 0x98) & 1n; i++) this.sys.usleep(500);
    return !(this.r64(d, 0x98) & 1n);
  }

  /** probe.c klog_drain2: kernel log lines since the last drain; `all` keeps all but clock/entropy chatter. */
  private klog(all: boolean): string[] {
    const out: string[] = [];
    for (const raw of this.sys.kmsg()) {
      const msg = raw.split("\n")[0]!;
      if (
        all &&
        (msg.includes("clocksource") || msg.includes("tsc:") || msg.includes("crng") || msg.includes("random:"))
      ) {
        continue;
      }
      if (
        all ||
        msg.includes("DMAR") ||
        msg.includes("fault") ||
        msg.includes("Fault") ||
        msg.includes("smmu") ||
        msg.includes("iommu")
      ) {
        out.push(msg);
      }
    }
    return out;
  }

  private cmdDma(c: Extract<Command, { kind: "dma" }>, lineNo: number): void {
    const d = this.devs[c.dev]!;
    const oerr = this.openDevice(d);
    if (oerr) {
      const l = new Line("dma");
      if (c.devGiven) l.int("dev", c.dev);
      this.emit(l.str("error", "device open/mmap failed").str("errno", errname(oerr)));
      return;
    }
    this.klog(false);
    const host = BASE_VA + c.off;
    const len = Number(c.len);
    const EDU_BUF = 0x40000n;
    let done: boolean;
    let changed = false;
    let match = false;
    let after: Uint8Array = new Uint8Array(0);
    if (c.toDev) {
      const seed = (0x11 + lineNo * 13) & 0xff;
      const pat = new Uint8Array(len);
      for (let i = 0; i < len; i++) pat[i] = c.fill !== null ? c.fill : (seed + i * 7) & 0xff;
      this.lastPat = pat;
      this.lastPatLine = lineNo;
      this.sys.poke(host, pat);
      done = this.eduRun(d, c.iova, EDU_BUF, c.len, false);
    } else {
      this.sys.poke(host, new Uint8Array(len).fill(0xee));
      done = this.eduRun(d, EDU_BUF, c.iova, c.len, true);
      after = this.sys.peek(host, len);
      changed = after.some((b) => b !== 0xee);
      match = this.lastPat.length >= len && after.every((b, i) => b === this.lastPat[i]);
    }
    this.sys.usleep(50000);
    const faults = this.klog(c.klogAll);
    const line = new Line("dma");
    if (c.devGiven) line.int("dev", c.dev);
    line
      .hex("iova", c.iova)
      .hex("len", c.len)
      .str("dir", c.toDev ? "to-dev" : "from-dev")
      .hex("vaddr", host);
    if (c.fill !== null) line.hex("fill", c.fill);
    line.int("completed", done ? 1 : 0).hex("edu_id", this.r32(d, 0));
    if (!c.toDev) {
      line.int("host_changed", changed ? 1 : 0).int("matches_last_to_dev", match ? 1 : 0);
      if (match) line.int("last_to_dev_line", this.lastPatLine);
      line.bytes("head", after.subarray(0, Math.min(len, 8)));
    }
    if (d.efd >= 0) {
      const r = this.sys.readEventfd(d.efd);
      line.int("eventfd_count", r.ret === 8 ? r.value : 0n);
    }
    this.emit(line.strList(c.klogAll ? "klog_all" : "klog", faults));
  }

  /** MSI capability in a 256-byte config image; `limit` bounds the walk as each probe reader does. */
  private msiFields(cfg: Uint8Array, got: number, phys: boolean): RecordValue {
    let cap = 0;
    if (cfg[6]! & 0x10) {
      let p = cfg[0x34]! & 0xfc;
      for (let i = 0; i < 48 && p >= 0x40 && (phys ? p + 1 < got : p < 0xff); i++) {
        if (cfg[p] === 0x05) {
          cap = p;
          break;
        }
        p = cfg[p + 1]! & 0xfc;
      }
    }
    if (!cap || cap + 14 > got) return { cap: null };
    const v = le(cfg);
    const ctl = v.getUint16(cap + 2, true);
    const lo = v.getUint32(cap + 4, true);
    let hi = 0;
    let data: number;
    if (ctl & 0x80) {
      hi = v.getUint32(cap + 8, true);
      data = v.getUint16(cap + 12, true);
    } else data = v.getUint16(cap + 8, true);
    const addr = (BigInt(hi) << 32n) | BigInt(lo);
    const h = hexValue;
    if (phys) {
      return {
        cap: h(cap),
        control: h(ctl),
        enabled: ctl & 1,
        addr64: ctl & 0x80 ? 1 : 0,
        address_lo: h(lo),
        address_hi: h(hi),
        address: h(addr),
        data: h(data),
      };
    }
    return { cap: h(cap), control: h(ctl), address: h(addr), data: h(data) };
  }

  private physMsi(bdf: string): RecordValue {
    const r = this.sys.readFile(`/sys/bus/pci/devices/${bdf}/config`, 256);
    const got = r.ret < 0 ? -1 : r.data.length;
    if (got < 64) return { error: got < 0 ? errname(r.errno) : "short read" };
    const cfg = new Uint8Array(256);
    cfg.set(r.data.subarray(0, 256));
    return this.msiFields(cfg, got, true);
  }

  private vfioMsi(d: PDev): RecordValue {
    const ci = this.regionInfo(d.deviceFd, U.VFIO_PCI_CONFIG_REGION_INDEX);
    if (ci.ret) return { error: errname(ci.errno) };
    const rd = this.sys.pread(d.deviceFd, 256, ci.offset);
    if (rd.ret !== 256) return { error: errname(rd.errno) };
    return this.msiFields(rd.data, 256, false);
  }

  private cmdIrq(k: number, op: "msi-on" | "msi-off" | "raise", value: bigint): void {
    const d = this.devs[k]!;
    this.klog(false);
    const oerr = this.openDevice(d);
    const line = new Line("irq").str("op", op).int("dev", k);
    if (oerr) {
      this.emit(line.str("step", "open device").int("ret", -1).str("errno", errname(oerr)));
      return;
    }
    if (op !== "raise") {
      const on = op === "msi-on";
      const ii = new Uint8Array(U.IRQ_INFO_SIZE);
      le(ii).setUint32(0, U.IRQ_INFO_SIZE, true);
      le(ii).setUint32(8, U.VFIO_PCI_MSI_IRQ_INDEX, true);
      const ir = this.ioctlStruct(d.deviceFd, U.VFIO_DEVICE_GET_IRQ_INFO, ii);
      line.int("irq_info_ret", ir.ret);
      if (ir.ret < 0) line.str("irq_info_errno", errname(ir.errno));
      line.hex("irq_info_flags", le(ii).getUint32(4, true)).int("irq_info_count", le(ii).getUint32(12, true));
      if (on && d.efd < 0) d.efd = this.sys.eventfd().ret;
      const s = new Uint8Array(U.IRQ_SET_SIZE + 4);
      const v = le(s);
      v.setUint32(0, on ? s.length : U.IRQ_SET_SIZE, true);
      v.setUint32(
        4,
        (on ? U.VFIO_IRQ_SET_DATA_EVENTFD : U.VFIO_IRQ_SET_DATA_NONE) | U.VFIO_IRQ_SET_ACTION_TRIGGER,
        true,
      );
      v.setUint32(8, U.VFIO_PCI_MSI_IRQ_INDEX, true);
      v.setUint32(12, 0, true);
      v.setUint32(16, on ? 1 : 0, true);
      if (on) v.setInt32(20, d.efd, true);
      const r = this.ioctlStruct(d.deviceFd, U.VFIO_DEVICE_SET_IRQS, s);
      line.ret(r.ret, r.errno);
      this.sys.usleep(20000);
      line.value("phys_msi", this.physMsi(d.bdf)).value("vfio_msi", this.vfioMsi(d));
    } else {
      let cnt = 0n;
      let stale = 0n;
      if (d.efd >= 0) {
        const r = this.sys.readEventfd(d.efd);
        stale = r.ret === 8 ? r.value : 0n;
      }
      const st0 = this.r32(d, 0x24);
      this.w32(d, 0x60, Number(value));
      const st1 = this.r32(d, 0x24);
      let fired = false;
      if (d.efd >= 0) {
        fired = this.sys.poll(d.efd, 1000).ret === 1;
        const r = this.sys.readEventfd(d.efd);
        cnt = r.ret === 8 ? r.value : 0n;
      } else {
        this.sys.usleep(200000);
      }
      this.w32(d, 0x64, Number(value));
      const st2 = this.r32(d, 0x24);
      line.hex("value", value).int("eventfd_armed", d.efd >= 0 ? 1 : 0);
      if (stale) line.int("eventfd_stale", stale);
      line
        .hex("irq_status_before", st0)
        .hex("irq_status_raised", st1)
        .hex("irq_status_acked", st2)
        .int("fired", fired ? 1 : 0)
        .int("eventfd_count", cnt);
    }
    this.sys.usleep(20000);
    this.emit(line.strList("klog_all", this.klog(true)));
  }

  // ------------------------------------------------------------------ groups, devices, container

  private cmdGroup(k: number, op: DevOp): void {
    const d = this.devs[k]!;
    if (op === "set-iommufd") {
      this.fd.groupSetIommufd(k);
      return;
    }
    if (op === "open" || op === "close") {
      // mode iommufd opens no group at setup: the scenario opens /dev/vfio/<group> itself
      const gpath = `/dev/vfio/${d.grp}`;
      let r: { ret: number; errno: number };
      if (op === "open") {
        r = this.sys.open(gpath);
        if (r.ret >= 0) {
          d.gfd = r.ret;
          r = { ret: 0, errno: 0 };
        }
      } else {
        r = d.gfd >= 0 ? this.sys.close(d.gfd) : { ret: -1, errno: 9 };
        d.gfd = -1;
      }
      this.emit(
        new Line("group").int("dev", k).int("group", d.grp).str("op", op).str("path", gpath).ret(r.ret, r.errno),
      );
      return;
    }
    const line = new Line("group").int("dev", k).int("group", d.grp).str("op", op);
    if (op === "status") {
      const st = this.groupStatus(d.gfd);
      line
        .ret(st.ret, st.errno)
        .hex("flags", st.flags)
        .int("viable", st.flags & U.VFIO_GROUP_FLAGS_VIABLE ? 1 : 0)
        .int("container_set", st.flags & U.VFIO_GROUP_FLAGS_CONTAINER_SET ? 1 : 0);
    } else if (op === "set") {
      const r = this.setContainer(d.gfd);
      line.ret(r.ret, r.errno);
    } else {
      const r = this.sys.ioctl(d.gfd, U.VFIO_GROUP_UNSET_CONTAINER, 0n);
      line.ret(r.ret, r.errno);
    }
    this.emit(line);
  }

  private cmdDevice(k: number, op: "open" | "close"): void {
    const d = this.devs[k]!;
    const line = new Line("device").int("dev", k).str("op", op);
    const wasOpen = d.deviceFd >= 0 ? 1 : 0;
    if (op === "open") {
      const e = this.openDevice(d);
      line.int("was_open", wasOpen).ret(e ? -1 : 0, e);
    } else {
      if (d.bar0 !== null) {
        this.sys.munmap(d.bar0, d.bar0Len);
        d.bar0 = null;
      }
      let r = { ret: 0, errno: 0 };
      if (d.deviceFd >= 0) {
        r = this.sys.close(d.deviceFd);
        d.deviceFd = -1;
      }
      if (d.efd >= 0) {
        this.sys.close(d.efd);
        d.efd = -1;
      }
      line.int("was_open", wasOpen).ret(r.ret, r.errno);
    }
    this.emit(line);
  }

  private cmdSetIommu(iommu: "type1" | "type1v2"): void {
    const t = iommu === "type1" ? U.VFIO_TYPE1_IOMMU : U.VFIO_TYPE1v2_IOMMU;
    const r = this.ioctlInt(this.container, U.VFIO_SET_IOMMU, t);
    this.emit(new Line("set-iommu").str("iommu", iommu).ret(r.ret, r.errno));
  }
}

/** probe.c decode_caps: writes `caps` and returns the end of the last decoded cap (0 if any was unknown). */
function decodeCaps(line: Line, buf: Uint8Array, len: number, off: number): number {
  const parts: RecordValue[] = [];
  let maxend = 0;
  let known = true;
  let count = 0;
  while (off && count < 32) {
    if (off + U.CAP_HEADER_SIZE > len) {
      parts.push({ offset: off, truncated: true });
      known = false;
      break;
    }
    const { id, version, next } = U.readCapHeader(buf, off);
    const c: Record<string, RecordValue> = { id, version, offset: off, next };
    if (id === U.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE && off + U.CAP_IOVA_RANGE_BASE <= len) {
      const cap = U.readIovaRangeCap(buf, off, len, 1024);
      c.name = "iova_range";
      c.nr_iovas = cap.nrIovas;
      c.reserved = cap.reserved;
      c.ranges = cap.ranges.map((r) => [hexValue(r.start), hexValue(r.end)]);
      maxend = Math.max(maxend, off + U.CAP_IOVA_RANGE_BASE + cap.nrIovas * U.IOVA_RANGE_SIZE);
    } else if (id === U.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION && off + U.CAP_MIGRATION_SIZE <= len) {
      const m = U.readMigrationCap(buf, off);
      c.name = "migration";
      c.flags = m.flags;
      c.pgsize_bitmap = hexValue(m.pgsizeBitmap);
      c.max_dirty_bitmap_size = hexValue(m.maxDirtyBitmapSize);
      maxend = Math.max(maxend, off + U.CAP_MIGRATION_SIZE);
    } else if (id === U.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL && off + U.CAP_DMA_AVAIL_SIZE <= len) {
      c.name = "dma_avail";
      c.avail = U.readDmaAvailCap(buf, off);
      maxend = Math.max(maxend, off + U.CAP_DMA_AVAIL_SIZE);
    } else {
      known = false;
      const end = next > off && next <= len ? next : Math.min(off + 32, len);
      c.name = "unknown";
      c.raw = hexBytes(buf.subarray(off, Math.max(off, end)));
    }
    parts.push(c);
    count++;
    if (next === 0 || next <= off) break;
    off = next;
  }
  line.value("caps", parts);
  return known ? maxend : 0;
}

/** Lines as `fgets(buf, size)` returns them (a long line comes back in pieces). */
function splitFgets(text: string, size: number): string[] {
  const out: string[] = [];
  let p = 0;
  while (p < text.length) {
    let end = p;
    while (end < text.length && end - p < size - 1) {
      end++;
      if (text[end - 1] === "\n") break;
    }
    out.push(text.slice(p, end));
    p = end;
  }
  return out;
}

function tokenizeMax(s: string, max: number): string[] {
  const tok: string[] = [];
  for (const t of s.split(/[ \t\n\v\f\r]+/)) {
    if (t.length && tok.length < max) tok.push(t);
  }
  return tok;
}
