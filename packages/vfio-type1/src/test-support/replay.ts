/**
 * A small replay of the conformance scenarios (apps/demo/conformance/linux-6.1) that need no device: it
 * runs the probe's container/group/map/unmap/dirty/info/locked/touch commands against this package through
 * the byte ioctls and returns, per command, the fields the kernel's transcript has. DMA and interrupt
 * commands only open the device (as the probe does); their results are the demo's replay's business.
 */
import { readFileSync } from "node:fs";
import { ERRNO } from "@iommu/core";
import {
  encodeDirtyPages,
  encodeDmaMap,
  encodeDmaUnmap,
  toHex,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
  view,
} from "@vfio/uapi";
import type { Container } from "../container.js";
import type { VfioGroup } from "../group.js";
import { BASE, type Host, makeHost } from "./hosts.js";

export const FIXTURES = new URL("../../../../apps/demo/conformance/linux-6.1/", import.meta.url);

export type Rec = Record<string, unknown>;

const SCRATCH = 0x2000_0000_0000n;

function num(s: string): bigint {
  return BigInt(s.replace(/_/g, ""));
}

const hexs = (x: bigint | number): string => `0x${x.toString(16)}`;

function errnoName(ret: number): string {
  return Object.entries(ERRNO).find(([, v]) => v === -ret)?.[0] ?? `E${-ret}`;
}

function withRet(out: Rec, ret: number): Rec {
  if (ret < 0) return { ...out, ret: -1, errno: errnoName(ret) };
  return { ...out, ret };
}

/** Parse a .scn file: header settings and body lines with their line numbers. */
export function parseScenario(text: string): {
  platform: string;
  iommu: number;
  params: Record<string, string>;
  memlock: bigint | null;
  devices: number;
  body: { line: number; words: string[] }[];
} {
  let platform = "";
  let iommu = VFIO_TYPE1v2_IOMMU;
  const params: Record<string, string> = {};
  let memlock: bigint | null = null;
  let devices = 1;
  const body: { line: number; words: string[] }[] = [];
  let inBody = false;
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    if (line === "---") {
      inBody = true;
      return;
    }
    const words = line.split(/\s+/);
    if (inBody) body.push({ line: i + 1, words });
    else if (words[0] === "platform") platform = words[1]!;
    else if (words[0] === "iommu") iommu = words[1] === "type1" ? VFIO_TYPE1_IOMMU : VFIO_TYPE1v2_IOMMU;
    else if (words[0] === "param") {
      const [k, v] = words[1]!.split("=");
      params[k!] = v!;
    } else if (words[0] === "memlock") memlock = num(words[1]!);
    else if (words[0] === "devices") devices = Number(words[1]);
  });
  return { platform, iommu, params, memlock, devices, body };
}

/** Run one scenario; returns the records (setup first, then one per body command, without `done`). */
export function replayScenario(arch: "x86" | "arm64", name: string): { got: Rec[]; want: Rec[] } {
  const scn = parseScenario(readFileSync(new URL(`${arch}/${name}.scn`, FIXTURES), "utf8"));
  const want = readFileSync(new URL(`${arch}/${name}.jsonl`, FIXTURES), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Rec)
    .filter((r) => r.cmd !== "hello" && r.cmd !== "done");
  const h = makeHost({
    shape: arch,
    devices: scn.devices,
    params: {
      ...(scn.params.dma_entry_limit ? { dmaEntryLimit: Number(scn.params.dma_entry_limit) } : {}),
      ...(scn.params.disable_hugepages ? { disableHugepages: scn.params.disable_hugepages !== "0" } : {}),
      ...(scn.params.allow_unsafe_interrupts
        ? { allowUnsafeInterrupts: scn.params.allow_unsafe_interrupts !== "0" }
        : {}),
    },
  });
  h.proc.mmap({ start: SCRATCH, size: 1n << 24n, name: "probe-heap" });
  const got: Rec[] = [];
  const container = h.vfio.openContainer(h.proc);
  const groups: VfioGroup[] = h.groupIds.map((g) => h.vfio.openGroup(g));
  const open = new Set<number>();
  const st = new Uint8Array(8);
  view(st).setUint32(0, 8, true);
  const statusRet = groups[0]!.ioctl(VFIO_GROUP_GET_STATUS, st);
  const fdBuf = new Uint8Array(4);
  view(fdBuf).setInt32(0, container.fd, true);
  let ret = groups[0]!.ioctl(VFIO_GROUP_SET_CONTAINER, fdBuf);
  if (ret === 0) ret = container.ioctl(VFIO_SET_IOMMU, scn.iommu);
  if (scn.memlock !== null) {
    h.proc.capIpcLock = false;
    h.proc.rlimitMemlock = scn.memlock;
  }
  got.push(
    withRet(
      {
        cmd: "setup",
        api_version: container.ioctl(VFIO_GET_API_VERSION),
        group_status_ret: statusRet,
        group_flags: hexs(view(st).getUint32(4, true)),
      },
      ret,
    ),
  );
  for (const { words } of scn.body) got.push(runCommand(h, container, groups, open, words, want[got.length]));
  return { got, want };
}

function vaddrOf(words: string[]): bigint {
  const w = words.find((x) => x.startsWith("vaddr="));
  if (!w) return BASE;
  const v = w.slice(6);
  return v.startsWith("abs:") ? num(v.slice(4)) : BASE + num(v.slice(1));
}

function kv(words: string[], key: string): string | undefined {
  return words.find((w) => w.startsWith(`${key}=`))?.slice(key.length + 1);
}

function runCommand(
  h: Host,
  container: Container,
  groups: VfioGroup[],
  open: Set<number>,
  words: string[],
  expected: Rec | undefined,
): Rec {
  const [cmd, ...args] = words as [string, ...string[]];
  const devOf = (): number => Number(kv(args, "dev") ?? 0);
  switch (cmd) {
    case "ext": {
      const e = (x: number): number => container.ioctl(VFIO_CHECK_EXTENSION, x);
      return {
        cmd,
        type1: e(VFIO_TYPE1_IOMMU),
        type1v2: e(VFIO_TYPE1v2_IOMMU),
        type1_nesting: e(VFIO_TYPE1_NESTING_IOMMU),
        dma_cc: e(VFIO_DMA_CC_IOMMU),
        unmap_all: e(VFIO_UNMAP_ALL),
        update_vaddr: e(VFIO_UPDATE_VADDR),
        noiommu: e(VFIO_NOIOMMU_IOMMU),
      };
    }
    case "info": {
      const argsz = Number(kv(args, "argsz") ?? 4096);
      const fill = Number(kv(args, "fill") ?? 0);
      const buf = new Uint8Array(8192).fill(fill);
      view(buf).setUint32(0, argsz >>> 0, true);
      const ret = container.ioctl(VFIO_IOMMU_GET_INFO, buf);
      const v = view(buf);
      const rawHex = typeof expected?.raw === "string" ? expected.raw : "";
      return withRet(
        {
          cmd,
          argsz: v.getUint32(0, true),
          flags: hexs(v.getUint32(4, true)),
          iova_pgsizes: hexs(v.getBigUint64(8, true)),
          cap_offset: v.getUint32(16, true),
          raw: toHex(buf.subarray(0, rawHex.length / 2)),
        },
        ret,
      );
    }
    case "map":
    case "mapv": {
      const iova = num(args[0]!);
      const size = num(args[1]!);
      let flags = VFIO_DMA_MAP_FLAG_VADDR;
      if (cmd === "map") {
        const p = args[2]!;
        flags = (p.includes("r") ? VFIO_DMA_MAP_FLAG_READ : 0) | (p.includes("w") ? VFIO_DMA_MAP_FLAG_WRITE : 0);
      }
      const b = encodeDmaMap({ argsz: 32, flags, vaddr: vaddrOf(args), iova, size });
      return withRet({ cmd }, container.ioctl(VFIO_IOMMU_MAP_DMA, b));
    }
    case "unmap": {
      const iova = num(args[0]!);
      const size = num(args[1]!);
      let flags = 0;
      if (args.includes("all")) flags |= VFIO_DMA_UNMAP_FLAG_ALL;
      if (args.includes("vaddr")) flags |= VFIO_DMA_UNMAP_FLAG_VADDR;
      const di = args.indexOf("dirty");
      let bitmapSize = 0n;
      let b: Uint8Array;
      if (di >= 0) {
        flags |= VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
        bitmapSize = num(String(expected?.bitmap_size ?? "0x8"));
        h.proc.writeUser(SCRATCH, new Uint8Array(Number(bitmapSize)));
        b = encodeDmaUnmap({
          flags,
          iova,
          size,
          bitmap: { pgsize: num(args[di + 1]!), size: bitmapSize, data: SCRATCH },
        });
      } else b = encodeDmaUnmap({ flags, iova, size });
      const ret = container.ioctl(VFIO_IOMMU_UNMAP_DMA, b);
      const out: Rec = { cmd, unmapped: hexs(view(b).getBigUint64(16, true)) };
      if (di >= 0) out.bitmap = toHex(h.proc.readUser(SCRATCH, Number(bitmapSize)));
      return withRet(out, ret);
    }
    case "dirty": {
      const op = args[0]!;
      if (op === "start" || op === "stop") {
        const f = op === "start" ? VFIO_IOMMU_DIRTY_PAGES_FLAG_START : VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
        return withRet({ cmd, op }, container.ioctl(VFIO_IOMMU_DIRTY_PAGES, encodeDirtyPages(f)));
      }
      const iova = num(args[1]!);
      const size = num(args[2]!);
      const pgsize = num(args[3]!);
      const bitmapSize = num(String(expected?.bitmap_size ?? "0x8"));
      h.proc.writeUser(SCRATCH, new Uint8Array(Number(bitmapSize)));
      const b = encodeDirtyPages(VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, {
        iova,
        size,
        bitmap: { pgsize, size: bitmapSize, data: SCRATCH },
      });
      const ret = container.ioctl(VFIO_IOMMU_DIRTY_PAGES, b);
      return withRet({ cmd, op, bitmap: toHex(h.proc.readUser(SCRATCH, Number(bitmapSize))) }, ret);
    }
    case "locked":
      return { cmd, vmlck_kb: h.proc.vmLckKb, vmpin_kb: 0 };
    case "touch":
      h.proc.touch(BASE + num(args[0]!.slice(1)), num(args[1]!));
      return { cmd };
    case "group": {
      const k = Number(args[0]);
      const g = groups[k]!;
      const op = args[1]!;
      if (op === "status") {
        const st = new Uint8Array(8);
        view(st).setUint32(0, 8, true);
        const ret = g.ioctl(VFIO_GROUP_GET_STATUS, st);
        return withRet({ cmd, op, flags: hexs(view(st).getUint32(4, true)) }, ret);
      }
      if (op === "set") {
        const fdBuf = new Uint8Array(4);
        view(fdBuf).setInt32(0, container.fd, true);
        return withRet({ cmd, op }, g.ioctl(VFIO_GROUP_SET_CONTAINER, fdBuf));
      }
      return withRet({ cmd, op }, g.ioctl(VFIO_GROUP_UNSET_CONTAINER));
    }
    case "device": {
      const k = Number(args[0]);
      const gid = groups[k]!.id;
      if (args[1] === "open") {
        const was = open.has(k);
        if (was) return { cmd, was_open: 1, ret: 0 };
        const ret = h.vfio.deviceGet(gid);
        if (ret === 0) open.add(k);
        return withRet({ cmd, was_open: 0 }, ret);
      }
      const was = open.delete(k);
      if (was) h.vfio.devicePut(gid);
      return { cmd, was_open: was ? 1 : 0, ret: 0 };
    }
    case "dma":
    case "irq": {
      const k = devOf();
      if (!open.has(k) && h.vfio.deviceGet(groups[k]!.id) === 0) open.add(k);
      return { cmd };
    }
    case "set-iommu":
      return withRet({ cmd }, container.ioctl(VFIO_SET_IOMMU, args[0] === "type1" ? 1 : 3));
    default:
      return { cmd };
  }
}

/** The fields of `want` that `got` models (by command), for comparison. */
export function pick(want: Rec, got: Rec): Rec {
  const out: Rec = {};
  for (const k of Object.keys(got)) if (k in want) out[k] = want[k];
  return out;
}
