/**
 * What Linux 6.12.117 with CONFIG_IOMMUFD answered (@iommu-sim/conformance), replayed on this layer:
 * - linux-6.12-iommufd iommufd-basic / -map / -dma-msi: every `/dev/iommu` ioctl line through the byte
 *   interface (ret, errno and the struct bytes after the call), the cdev lines through the kernel API VFIO
 *   calls (ids and errnos), `locked` (VmPin); both platforms.
 * - linux-6.12-iommufd-compat, the scenarios that never open the device: every container line (map, unmap,
 *   info, ext, locked) through the compat ioctls.
 * Lines that need the VFIO side or a device (open, devinfo, resv, dma, irq) are the host's to replay.
 */

import { errnoName } from "@iommu/core";
import { type Arch, listFixtures, readRecords, readScenario, type TranscriptRecord } from "@iommu-sim/conformance";
import {
  encodeDmaMap,
  encodeDmaUnmap,
  infoBuffer,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "@vfio/uapi";
import * as U from "@vfio/uapi/iommufd";
import { describe, expect, it } from "vitest";
import type { IommufdDevice } from "./device.js";
import { IommufdCtx } from "./iommufd-ctx.js";
import { iommufdIoctl } from "./iommufd-ioctl.js";
import { ARM64, BASE, testHost, X86 } from "./test-support/hosts.js";

const ARCHES: Arch[] = ["x86", "arm64"];
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const num = (x: string) => BigInt(x.replace(/_/g, ""));
/** A user buffer for arrays the kernel writes (IOVA_RANGES, GET_HW_INFO data). */
const SCRATCH = BASE + 0x3000_0000n;

/** Body lines of a scenario without comments, in order. */
function body(text: string): string[][] {
  const lines = text.split("\n");
  return lines
    .slice(lines.indexOf("---") + 1)
    .map((l) => l.replace(/#.*/, "").trim())
    .filter((l) => l !== "")
    .map((l) => l.split(/\s+/));
}

/** Compare an ioctl's outcome with the kernel's record: ret, errno and (pointers zeroed) the struct bytes. */
function expectOutcome(line: string[], rec: TranscriptRecord, rc: number, buf: Uint8Array | null, ptrs: number[] = []) {
  const got: Record<string, unknown> = { ret: rc < 0 ? -1 : rc, errno: rc < 0 ? errnoName(rc) : undefined };
  const want: Record<string, unknown> = { ret: rec.ret, errno: rec.errno };
  if (buf && typeof rec.raw === "string") {
    const r = buf.slice(0, rec.raw.length / 2);
    for (const p of ptrs) r.fill(0, p, p + 8);
    got.raw = hex(r);
    want.raw = rec.raw;
  }
  expect(got, line.join(" ")).toEqual(want);
}

describe.each(ARCHES)("linux-6.12-iommufd %s: /dev/iommu ioctls and the cdev's kernel calls", (arch) => {
  it.each(["iommufd-basic", "iommufd-map", "iommufd-dma-msi"])("%s", (name) => {
    const f = { set: "linux-6.12-iommufd", arch, name };
    const records = readRecords(f).filter((r) => !["hello", "setup", "done"].includes(String(r.cmd)));
    const lines = body(readScenario(f));
    expect(records.length).toBe(lines.length);
    const host = testHost(arch === "x86" ? X86 : ARM64);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
    const ioas: number[] = [];
    let idev: IommufdDevice | null = null;
    let attached = false;
    let checked = 0;
    lines.forEach((w, i) => {
      const rec = records[i]!;
      const opt = (key: string) => w.find((x) => x.startsWith(`${key}=`))?.slice(key.length + 1);
      const pos = (k: number) => (w[k] && !w[k]!.includes("=") ? w[k] : undefined);
      const ioasId = ioas[Number(opt("ioas") ?? 0)]!;
      const sizeOverride = opt("size");
      const tail = Number(opt("tail") ?? 0);
      const struct = (size: number) => {
        const b = new Uint8Array(256).fill(tail);
        b.fill(0, 0, size);
        U.wr32(b, 0, sizeOverride ? Number(sizeOverride) : size);
        return b;
      };
      const vaddr = () => {
        const v = opt("vaddr");
        if (v === undefined) return BASE;
        return v.startsWith("abs:") ? num(v.slice(4)) : BASE + num(v.slice(1));
      };
      const mapFlags = (prot: string) =>
        (w.includes("auto") ? 0 : U.IOMMU_IOAS_MAP_FIXED_IOVA) |
        (prot.includes("w") ? U.IOMMU_IOAS_MAP_WRITEABLE : 0) |
        (prot.includes("r") ? U.IOMMU_IOAS_MAP_READABLE : 0);
      const run = (cmd: number, b: Uint8Array, ptrs: number[] = []) => {
        const rc = iommufdIoctl(ctx, cmd, b);
        expectOutcome(w, rec, rc, b, ptrs);
        checked++;
        return rc;
      };
      const [c0, c1] = w;
      if (c0 === "ioas" && c1 === "alloc") {
        const b = struct(12);
        if (run(U.IOMMU_IOAS_ALLOC, b) === 0) ioas.push(U.rd32(b, 8));
      } else if (c0 === "ioas" && c1 === "ranges") {
        const b = struct(32);
        U.wr32(b, 4, ioasId);
        U.wr32(b, 8, Number(pos(2) ?? 16));
        U.wr64(b, 16, SCRATCH);
        run(U.IOMMU_IOAS_IOVA_RANGES, b, [16]);
      } else if (c0 === "ioas" && c1 === "map") {
        const b = struct(40);
        U.wr32(b, 4, mapFlags(w[4]!));
        U.wr32(b, 8, ioasId);
        U.wr64(b, 16, vaddr());
        U.wr64(b, 24, num(w[3]!));
        U.wr64(b, 32, num(w[2]!));
        run(U.IOMMU_IOAS_MAP, b);
      } else if (c0 === "ioas" && c1 === "unmap") {
        const b = struct(24);
        U.wr32(b, 4, ioasId);
        U.wr64(b, 8, num(w[2]!));
        U.wr64(b, 16, num(w[3]!));
        run(U.IOMMU_IOAS_UNMAP, b);
      } else if (c0 === "ioas" && c1 === "copy") {
        const b = struct(40);
        U.wr32(b, 4, mapFlags(w[5]!));
        U.wr32(b, 8, ioasId);
        U.wr32(b, 12, ioas[Number(opt("src"))]!);
        U.wr64(b, 16, num(w[3]!));
        U.wr64(b, 24, num(w[4]!));
        U.wr64(b, 32, num(w[2]!));
        run(U.IOMMU_IOAS_COPY, b);
      } else if ((c0 === "ioas" && c1 === "destroy") || c0 === "destroy") {
        const b = struct(8);
        U.wr32(b, 4, c0 === "destroy" ? Number(c1) : ioasId);
        run(U.IOMMU_DESTROY, b);
      } else if (c0 === "hw-info") {
        const b = struct(40);
        // The probe hands the kernel a zeroed data buffer each time.
        host.proc.writeUser(SCRATCH, new Uint8Array(256));
        U.wr32(b, 8, idev!.id);
        U.wr32(b, 12, Number(pos(1) ?? 256));
        U.wr64(b, 16, SCRATCH);
        run(U.IOMMU_GET_HW_INFO, b, [16]);
        expect(hex(host.proc.readUser(SCRATCH, Number(rec.data_len)))).toBe(rec.data);
      } else if (c0 === "locked") {
        expect(host.proc.pinnedVm * 4, w.join(" ")).toBe(rec.vmpin_kb);
        checked++;
      } else if (c0 === "cdev" && c1 === "bind" && w[2] !== "bad" && rec.ret === 0) {
        idev = ctx.bindDevice(host.device(1));
        expect(idev.id).toBe(rec.out_devid);
        checked++;
      } else if (c0 === "cdev" && c1 === "attach" && idev) {
        // vfio_iommufd_physical_attach_ioas: attach first, replace once attached.
        const pt = opt("id") ? Number(opt("id")) : ioasId;
        let got: unknown;
        try {
          got = attached ? ctx.replaceDevice(idev, pt) : ctx.attachDevice(idev, pt);
          attached = true;
        } catch (e) {
          got = (e as { code: string }).code;
        }
        expect(got, w.join(" ")).toBe(rec.ret === 0 ? rec.pt_id : rec.errno);
        checked++;
      } else if (c0 === "cdev" && c1 === "detach" && idev && attached) {
        ctx.detachDevice(idev);
        attached = false;
      } else if (c0 === "cdev" && c1 === "close" && idev) {
        ctx.unbindDevice(idev);
        idev = null;
        attached = false;
      } else if (c0 === "iommufd" && c1 === "close") {
        ctx.close();
      }
    });
    expect(checked).toBeGreaterThan(8);
  });
});

describe.each(ARCHES)(
  "linux-6.12-iommufd %s: iommufd-group-compat through the calls VFIO's group path makes",
  (arch) => {
    it("ids, VFIO_IOAS bytes and IOVA ranges as the kernel", () => {
      const f = { set: "linux-6.12-iommufd", arch, name: "iommufd-group-compat" };
      const records = readRecords(f).filter((r) => !["hello", "setup", "done"].includes(String(r.cmd)));
      const lines = body(readScenario(f));
      expect(records.length).toBe(lines.length);
      const host = testHost(arch === "x86" ? X86 : ARM64);
      const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
      const ioas: number[] = [];
      let idev: IommufdDevice | null = null;
      let checked = 0;
      lines.forEach((w, i) => {
        const rec = records[i]!;
        const opt = (key: string) => w.find((x) => x.startsWith(`${key}=`))?.slice(key.length + 1);
        const line = w.join(" ");
        if (w[0] === "vfio-ioas") {
          const op = { get: U.IOMMU_VFIO_IOAS_GET, set: U.IOMMU_VFIO_IOAS_SET, clear: U.IOMMU_VFIO_IOAS_CLEAR }[w[1]!]!;
          const b = new Uint8Array(12);
          U.wr32(b, 0, 12);
          if (op === U.IOMMU_VFIO_IOAS_SET) U.wr32(b, 4, ioas[Number(opt("ioas"))]!);
          b[8] = op;
          const rc = iommufdIoctl(ctx, U.IOMMU_VFIO_IOAS, b);
          expectOutcome(w, rec, rc, b);
          if (rc === 0 && op === U.IOMMU_VFIO_IOAS_GET) ioas.push(U.rd32(b, 4));
          checked++;
        } else if (w[0] === "group" && w[2] === "set-iommufd") {
          // vfio_group_ioctl_set_container with an iommufd: the group holds the file, the compat IOAS appears.
          ctx.get();
          ctx.vfioCompatIoasCreate();
        } else if (w[0] === "group" && w[2] === "unset") {
          ctx.put();
        } else if (w[0] === "device" && w[2] === "open") {
          idev = ctx.bindDevice(host.device(1));
          ctx.attachDevice(idev, ctx.vfioIoasGet());
        } else if (w[0] === "device" && w[2] === "close" && idev) {
          ctx.unbindDevice(idev);
          idev = null;
        } else if (w[0] === "ioas" && w[1] === "alloc") {
          ioas.push(ctx.ioasAlloc());
          expect(ioas[ioas.length - 1], line).toBe(rec.ioas_id);
          checked++;
        } else if (w[0] === "ioas" && w[1] === "ranges") {
          const r = ctx.ioasIovaRanges(ioas[Number(opt("ioas") ?? 0)]!);
          expect(
            r.ranges.map((x) => [`0x${x.start.toString(16)}`, `0x${x.last.toString(16)}`]),
            line,
          ).toEqual(rec.ranges);
          checked++;
        } else if (w[0] === "ioas" && w[1] === "map") {
          const iova = ctx.ioasMap(ioas[Number(opt("ioas") ?? 0)]!, BASE, num(w[3]!), num(w[2]!), {
            fixed: true,
            read: true,
            write: true,
          });
          expect(`0x${iova.toString(16)}`, line).toBe(rec.out_iova);
          checked++;
        } else if (w[0] === "cdev" && w[1] === "bind" && rec.ret === 0) {
          idev = ctx.bindDevice(host.device(1));
          expect(idev.id, line).toBe(rec.out_devid);
          checked++;
        } else if (w[0] === "cdev" && w[1] === "attach" && idev) {
          expect(ctx.attachDevice(idev, ioas[Number(opt("ioas"))]!), line).toBe(rec.pt_id);
          checked++;
        }
      });
      expect(checked).toBeGreaterThan(8);
    });
  },
);

describe.each(ARCHES)("linux-6.12-iommufd-compat %s: the container ioctls before a device opens", (arch) => {
  const fixtures = listFixtures("linux-6.12-iommufd-compat", arch).filter(
    (f) =>
      !/^\s*(dma|irq|device|group)\b/m.test(
        body(readScenario(f))
          .map((w) => w.join(" "))
          .join("\n"),
      ),
  );
  it("has scenarios to replay", () => {
    expect(fixtures.length).toBeGreaterThan(5);
  });
  it.each(fixtures.map((f) => [f.name, f] as const))("%s", (_name, f) => {
    const records = readRecords(f);
    const host = testHost(arch === "x86" ? X86 : ARM64);
    const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc, vfioCompat: true });
    // The probe's set-up: group set on the container (the compat IOAS), then SET_IOMMU.
    ctx.vfioCompatIoasCreate();
    const type = records[0]!.iommu === "type1" ? VFIO_TYPE1_IOMMU : VFIO_TYPE1v2_IOMMU;
    expect(iommufdIoctl(ctx, VFIO_SET_IOMMU, type)).toBe(0);
    let checked = 0;
    for (const rec of records) {
      const rcOf = (rc: number) => ({ ret: rc < 0 ? -1 : rc, errno: rc < 0 ? errnoName(rc) : undefined });
      if (rec.cmd === "map") {
        const prot = String(rec.prot);
        const flags = (prot.includes("r") ? 1 : 0) | (prot.includes("w") ? 2 : 0);
        const b = encodeDmaMap({
          argsz: 32,
          flags,
          vaddr: num(String(rec.vaddr)),
          iova: num(String(rec.iova)),
          size: num(String(rec.size)),
        });
        expect(rcOf(iommufdIoctl(ctx, VFIO_IOMMU_MAP_DMA, b)), JSON.stringify(rec)).toEqual({
          ret: rec.ret,
          errno: rec.errno,
        });
      } else if (rec.cmd === "unmap") {
        const names = rec.flags as string[];
        const flags =
          (names.includes("dirty") ? VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP : 0) |
          (names.includes("all") ? VFIO_DMA_UNMAP_FLAG_ALL : 0) |
          (names.includes("vaddr") ? VFIO_DMA_UNMAP_FLAG_VADDR : 0);
        const b = encodeDmaUnmap({ argsz: 24, flags, iova: num(String(rec.iova)), size: num(String(rec.size)) });
        const rc = iommufdIoctl(ctx, VFIO_IOMMU_UNMAP_DMA, b);
        const unmapped = `0x${new DataView(b.buffer).getBigUint64(16, true).toString(16)}`;
        expect({ ...rcOf(rc), unmapped }, JSON.stringify(rec)).toEqual({
          ret: rec.ret,
          errno: rec.errno,
          unmapped: rec.unmapped,
        });
      } else if (rec.cmd === "info") {
        const b = infoBuffer(Number(rec.argsz_in), rec.fill ? Number(rec.fill) : 0, 4096);
        const rc = iommufdIoctl(ctx, VFIO_IOMMU_GET_INFO, b);
        expect({ ...rcOf(rc), raw: hex(b.subarray(0, String(rec.raw).length / 2)) }).toEqual({
          ret: rec.ret,
          errno: rec.errno,
          raw: rec.raw,
        });
      } else if (rec.cmd === "ext") {
        const e = (t: number) => iommufdIoctl(ctx, VFIO_CHECK_EXTENSION, t);
        const got = {
          type1: e(1),
          type1v2: e(3),
          type1_nesting: e(6),
          dma_cc: e(4),
          unmap_all: e(9),
          update_vaddr: e(10),
          noiommu: e(8),
        };
        expect({ cmd: "ext", ...got }).toEqual(rec);
      } else if (rec.cmd === "dirty") {
        // iommufd_vfio_ioctl has no VFIO_IOMMU_DIRTY_PAGES: every op is ENOTTY before the struct is read.
        expect(rcOf(iommufdIoctl(ctx, VFIO_IOMMU_DIRTY_PAGES, new Uint8Array(64)))).toEqual({
          ret: rec.ret,
          errno: rec.errno,
        });
      } else if (rec.cmd === "locked") {
        expect({ vmlck: host.proc.lockedVm * 4, vmpin: host.proc.pinnedVm * 4 }).toEqual({
          vmlck: rec.vmlck_kb,
          vmpin: rec.vmpin_kb,
        });
      } else continue;
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });
});
