/**
 * The VMM's iommufd file descriptors, as QEMU's iommufd backend opens them: /dev/iommu (one IOAS), the
 * device's cdev /dev/vfio/devices/vfioN bound to it and attached to the IOAS. The IOAS ioctls go through
 * `@iommu/iommufd`'s byte interface with the layouts of `@vfio/uapi/iommufd`; the ranges array lives in
 * the process's own memory, as a real VMM's does.
 */
import { errnoName } from "@iommu/core";
import { type IommufdCtx, iommufdIoctl } from "@iommu/iommufd";
import { type Board, type EduDevice, VfioCdev, type VfioPciDevice } from "@iommu-sim/host";
import type { Process } from "@vfio/type1";
import {
  IOAS_ALLOC,
  IOAS_IOVA_RANGES,
  IOAS_MAP,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  rd32,
  rd64,
  wr32,
  wr64,
} from "@vfio/uapi/iommufd";
import type { IoctlResult } from "./vfio-user.js";

/** Where the VMM keeps its small ioctl arrays (one anonymous page). */
const SCRATCH_VA = 0x7e00_0000_0000n;
/** Ranges the VMM has room for in one IOMMU_IOAS_IOVA_RANGES. */
const MAX_RANGES = 32;

export interface IoasRanges {
  /** Usable IOVA ranges, inclusive ends (`iommu_iova_range.last`). */
  readonly ranges: readonly { start: bigint; end: bigint }[];
  readonly alignment: bigint;
}

export interface IommufdUser {
  readonly process: Process;
  readonly ctx: IommufdCtx;
  readonly ioasId: number;
  readonly cdevPath: string;
  readonly devId: number;
  /** The HWPT the attach allocated (written back by VFIO_DEVICE_ATTACH_IOMMUFD_PT). */
  readonly hwptId: number;
  /** The device, opened by the cdev's bind. */
  readonly device: VfioPciDevice;
  /** IOMMU_IOAS_IOVA_RANGES: the holes of the attached device's reserved regions. */
  ranges(): IoasRanges;
  /** IOMMU_IOAS_MAP with a fixed IOVA (GPA = IOVA), readable and writeable. */
  map(vaddr: bigint, iova: bigint, size: bigint): IoctlResult;
}

function result(ret: number): IoctlResult {
  return ret < 0 ? { ret: -1, errno: errnoName(-ret) ?? `E${-ret}` } : { ret };
}

/** open /dev/iommu, IOAS_ALLOC, open the cdev, BIND_IOMMUFD, ATTACH_IOMMUFD_PT. Throws Error naming the step. */
export function openIommufdUser(board: Board, dev: EduDevice, memlockBytes: bigint): IommufdUser {
  const side = board.vfioIommufd;
  if (!side.hasIommufd) {
    throw new Error(`no /dev/iommu in the ${side.modset} module set (use --modset iommufd or iommufd-compat)`);
  }
  const process = board.createProcess({ memlockBytes, capIpcLock: false });
  process.mmap({ start: SCRATCH_VA, size: 0x1000n, kind: "anon", name: "ioctl-scratch" });
  const ctx = side.openIommufd(process, false);
  const alloc = new Uint8Array(IOAS_ALLOC.size);
  wr32(alloc, 0, IOAS_ALLOC.size);
  const ra = iommufdIoctl(ctx, IOMMU_IOAS_ALLOC, alloc);
  if (ra < 0) throw new Error(`IOMMU_IOAS_ALLOC failed: ${errnoName(-ra)}`);
  const ioasId = rd32(alloc, IOAS_ALLOC.outIoasId);
  const cdev = new VfioCdev(dev, board.groupIdOf(dev));
  const cdevPath = `/dev/vfio/devices/vfio${side.cdevIndex(dev)}`;
  const devId = side.cdevBind(cdev, () => ctx);
  const hwptId = side.cdevAttach(cdev, ioasId);
  return {
    process,
    ctx,
    ioasId,
    cdevPath,
    devId,
    hwptId,
    device: cdev.h as VfioPciDevice,
    ranges() {
      const q = new Uint8Array(IOAS_IOVA_RANGES.size);
      wr32(q, 0, IOAS_IOVA_RANGES.size);
      wr32(q, IOAS_IOVA_RANGES.ioasId, ioasId);
      wr32(q, IOAS_IOVA_RANGES.numIovas, MAX_RANGES);
      wr64(q, IOAS_IOVA_RANGES.allowedIovas, SCRATCH_VA);
      const r = iommufdIoctl(ctx, IOMMU_IOAS_IOVA_RANGES, q);
      if (r < 0) throw new Error(`IOMMU_IOAS_IOVA_RANGES failed: ${errnoName(-r)}`);
      const n = rd32(q, IOAS_IOVA_RANGES.numIovas);
      const arr = process.readUser(SCRATCH_VA, n * 16);
      const ranges = Array.from({ length: n }, (_, i) => ({ start: rd64(arr, i * 16), end: rd64(arr, i * 16 + 8) }));
      return { ranges, alignment: rd64(q, IOAS_IOVA_RANGES.outIovaAlignment) };
    },
    map(vaddr, iova, size) {
      const m = new Uint8Array(IOAS_MAP.size);
      wr32(m, 0, IOAS_MAP.size);
      wr32(m, IOAS_MAP.flags, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);
      wr32(m, IOAS_MAP.ioasId, ioasId);
      wr64(m, IOAS_MAP.userVa, vaddr);
      wr64(m, IOAS_MAP.length, size);
      wr64(m, IOAS_MAP.iova, iova);
      return result(iommufdIoctl(ctx, IOMMU_IOAS_MAP, m));
    },
  };
}
