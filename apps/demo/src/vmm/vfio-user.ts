/**
 * The VMM's file descriptors: /dev/vfio/vfio (container), /dev/vfio/N (group), the process that owns
 * them. Everything goes through @vfio/type1's ioctl byte interface with the bytes `@vfio/uapi` lays out (the
 * header a real VMM compiles against), as a real VMM's calls go through the syscall boundary.
 */
import { errnoName } from "@iommu/core";
import type { Board } from "@iommu-sim/host";
import type { Process } from "@vfio/type1";
import {
  DMA_MAP_SIZE,
  DMA_UNMAP_SIZE,
  decodeDmaUnmap,
  decodeIommuInfo,
  encodeDmaMap,
  encodeDmaUnmap,
  GROUP_STATUS_SIZE,
  type IommuType1Info,
  infoBuffer,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  view,
} from "@vfio/uapi";

export interface IoctlResult {
  readonly ret: number;
  readonly errno?: string;
}

export interface VfioUser {
  readonly process: Process;
  readonly apiVersion: number;
  readonly hasType1v2: boolean;
  readonly setIommuRet: number;
  getInfo(): IommuType1Info;
  mapDma(vaddr: bigint, iova: bigint, size: bigint, prot?: number): IoctlResult;
  unmapDma(iova: bigint, size: bigint): IoctlResult & { unmapped: bigint };
  /** Put another group into this container (VFIO_GROUP_SET_CONTAINER). Returns 0 or -errno. */
  attachGroup(groupId: number): number;
  close(): void;
}

function result(ret: number): IoctlResult {
  return ret < 0 ? { ret: -1, errno: errnoName(-ret) ?? `E${-ret}` } : { ret };
}

/** Open the container and the group, bind them, select TYPE1v2. Throws Error naming the failing step. */
export function openVfioUser(board: Board, groupId: number, memlockBytes: bigint): VfioUser {
  const process = board.createProcess({ memlockBytes, capIpcLock: false });
  const container = board.vfio.openContainer(process);
  const group = board.vfio.openGroup(groupId);
  const apiVersion = container.ioctl(VFIO_GET_API_VERSION);
  const hasType1v2 = container.ioctl(VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) === 1;
  const status = new Uint8Array(GROUP_STATUS_SIZE);
  view(status).setUint32(0, GROUP_STATUS_SIZE, true);
  const st = group.ioctl(VFIO_GROUP_GET_STATUS, status);
  if (st < 0 || (view(status).getUint32(4, true) & VFIO_GROUP_FLAGS_VIABLE) === 0) {
    throw new Error(`/dev/vfio/${groupId}: group not viable (${st})`);
  }
  const fd = new Uint8Array(4);
  new DataView(fd.buffer).setInt32(0, container.fd, true);
  const sc = group.ioctl(VFIO_GROUP_SET_CONTAINER, fd);
  if (sc < 0) throw new Error(`VFIO_GROUP_SET_CONTAINER failed: ${errnoName(-sc)}`);
  const setIommuRet = container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  if (setIommuRet < 0) throw new Error(`VFIO_SET_IOMMU failed: ${errnoName(-setIommuRet)}`);
  return {
    process,
    apiVersion,
    hasType1v2,
    setIommuRet,
    getInfo() {
      const b = infoBuffer();
      const r = container.ioctl(VFIO_IOMMU_GET_INFO, b);
      if (r < 0) throw new Error(`VFIO_IOMMU_GET_INFO failed: ${errnoName(-r)}`);
      return decodeIommuInfo(b);
    },
    mapDma(vaddr, iova, size, prot = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE) {
      const req = encodeDmaMap({ argsz: DMA_MAP_SIZE, flags: prot, vaddr, iova, size });
      return result(container.ioctl(VFIO_IOMMU_MAP_DMA, req));
    },
    unmapDma(iova, size) {
      const b = encodeDmaUnmap({ argsz: DMA_UNMAP_SIZE, iova, size });
      const r = container.ioctl(VFIO_IOMMU_UNMAP_DMA, b);
      return { ...result(r), unmapped: r === 0 ? decodeDmaUnmap(b).size : 0n };
    },
    attachGroup(id) {
      const g = board.vfio.openGroup(id);
      const b = new Uint8Array(4);
      new DataView(b.buffer).setInt32(0, container.fd, true);
      return g.ioctl(VFIO_GROUP_SET_CONTAINER, b);
    },
    close() {
      group.ioctl(VFIO_GROUP_UNSET_CONTAINER);
    },
  };
}
