/**
 * `--trace` of the native door: one line per VFIO call a client made (open/close of VFIO paths, ioctl by
 * name with its decoded argument, pread/pwrite/mmap of a device fd) and what the model answered, so a VMM
 * developer sees what their VMM did. BAR loads/stores and sysfs reads are left out (one per guest access).
 */
import * as uapi from "@vfio/uapi";
import { VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, VFIO_DEVICE_PCI_HOT_RESET } from "../kernel/vfio-pci-ioctl.js";
import { OP } from "./door-server-ops.js";

const IOCTL_NAMES = new Map<number, string>(
  Object.entries(uapi)
    .filter(([k, v]) => /^VFIO_(GET|CHECK|SET|GROUP|DEVICE|IOMMU)_[A-Z_0-9]+$/.test(k) && typeof v === "number")
    .filter(([, v]) => (v as number) >= 0x3b64 && (v as number) < 0x3c00)
    .map(([k, v]) => [v as number, k]),
);

/** On a device fd, numbers 12 and 13 are the hot reset ioctls, not the container's GET_INFO / MAP_DMA. */
const DEVICE_IOCTL_NAMES = new Map<number, string>([
  [VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, "VFIO_DEVICE_GET_PCI_HOT_RESET_INFO"],
  [VFIO_DEVICE_PCI_HOT_RESET, "VFIO_DEVICE_PCI_HOT_RESET"],
]);

/** The ioctl's name (`VFIO_IOMMU_MAP_DMA`) or its number in hex; `onDevice` for a device fd's numbers. */
export function ioctlName(req: number | bigint, onDevice = false): string {
  const n = Number(req);
  return (onDevice ? DEVICE_IOCTL_NAMES.get(n) : undefined) ?? IOCTL_NAMES.get(n) ?? `0x${req.toString(16)}`;
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;
const region = (off: bigint) => `region ${off >> 40n} + ${hex(off & ((1n << 40n) - 1n))}`;

/** Decodes an ioctl's argument struct from the caller's memory (after the call: out fields filled). */
export function ioctlArgs(req: number, arg: bigint, read: (addr: bigint, len: number) => Uint8Array): string {
  const at = (len: number) => {
    const b = read(arg, len);
    return new DataView(b.buffer, b.byteOffset, b.length);
  };
  switch (req) {
    case uapi.VFIO_CHECK_EXTENSION:
    case uapi.VFIO_SET_IOMMU:
      return String(arg);
    case uapi.VFIO_GET_API_VERSION:
    case uapi.VFIO_DEVICE_RESET:
    case uapi.VFIO_GROUP_UNSET_CONTAINER:
      return "";
    case uapi.VFIO_GROUP_SET_CONTAINER:
      return `container fd ${at(4).getInt32(0, true)}`;
    case uapi.VFIO_GROUP_GET_STATUS:
      return `flags ${hex(at(8).getUint32(4, true))}`;
    case uapi.VFIO_GROUP_GET_DEVICE_FD: {
      const b = read(arg, 64);
      const end = b.indexOf(0);
      return `"${new TextDecoder().decode(b.subarray(0, end < 0 ? b.length : end))}"`;
    }
    case uapi.VFIO_IOMMU_GET_INFO: {
      const v = at(24);
      return `argsz ${v.getUint32(0, true)} flags ${hex(v.getUint32(4, true))} iova_pgsizes ${hex(v.getBigUint64(8, true))} cap_offset ${v.getUint32(16, true)}`;
    }
    case uapi.VFIO_IOMMU_MAP_DMA: {
      const v = at(32);
      return `flags ${hex(v.getUint32(4, true))} vaddr ${hex(v.getBigUint64(8, true))} iova ${hex(v.getBigUint64(16, true))} size ${hex(v.getBigUint64(24, true))}`;
    }
    case uapi.VFIO_IOMMU_UNMAP_DMA: {
      const v = at(24);
      return `flags ${hex(v.getUint32(4, true))} iova ${hex(v.getBigUint64(8, true))} size ${hex(v.getBigUint64(16, true))}`;
    }
    case uapi.VFIO_DEVICE_GET_INFO: {
      const v = at(16);
      return `flags ${hex(v.getUint32(4, true))} num_regions ${v.getUint32(8, true)} num_irqs ${v.getUint32(12, true)}`;
    }
    case uapi.VFIO_DEVICE_GET_REGION_INFO: {
      const v = at(32);
      return `index ${v.getUint32(8, true)} flags ${hex(v.getUint32(4, true))} size ${hex(v.getBigUint64(16, true))} offset ${hex(v.getBigUint64(24, true))}`;
    }
    case uapi.VFIO_DEVICE_GET_IRQ_INFO: {
      const v = at(16);
      return `index ${v.getUint32(8, true)} flags ${hex(v.getUint32(4, true))} count ${v.getUint32(12, true)}`;
    }
    case uapi.VFIO_DEVICE_SET_IRQS: {
      const v = at(20);
      const flags = v.getUint32(4, true);
      const count = v.getUint32(16, true);
      let data = "";
      if (flags & uapi.VFIO_IRQ_SET_DATA_EVENTFD && count > 0 && count <= 64) {
        const d = read(arg + 20n, 4 * count);
        const fds = new DataView(d.buffer, d.byteOffset, d.length);
        data = ` eventfds [${Array.from({ length: count }, (_, i) => fds.getInt32(4 * i, true)).join(", ")}]`;
      }
      return `flags ${hex(flags)} index ${v.getUint32(8, true)} start ${v.getUint32(12, true)} count ${count}${data}`;
    }
    default:
      return hex(arg);
  }
}

/** A result as strace prints it: the value, or -1 and the errno's number. */
export function traceResult(ret: number | bigint, errno: number): string {
  return Number(ret) < 0 ? `-1 (errno ${errno})` : String(ret);
}

/** One trace line for a door request, or null for the calls left out. */
export function traceLine(
  op: number,
  p: Buffer,
  reply: { ret: number | bigint; errno: number },
  ctx: {
    isVfioFd: (fd: number) => boolean;
    isVfioDevice: (fd: number) => boolean;
    read: (addr: bigint, len: number) => Uint8Array;
  },
): string | null {
  const res = ` = ${traceResult(reply.ret, reply.errno)}`;
  switch (op) {
    case OP.OPEN: {
      const path = p.subarray(8).toString("latin1");
      return /^\/dev\/(vfio\/|iommu$)/.test(path) ? `open("${path}")${res}` : null;
    }
    case OP.CLOSE:
      return ctx.isVfioFd(p.readInt32LE(0)) ? `close(${p.readInt32LE(0)})${res}` : null;
    case OP.IOCTL: {
      const req = Number(p.readBigUInt64LE(8));
      const arg = p.readBigUInt64LE(16);
      const onDevice = ctx.isVfioDevice(p.readInt32LE(0));
      let args: string;
      try {
        args =
          onDevice && DEVICE_IOCTL_NAMES.has(req)
            ? `argsz ${new DataView(ctx.read(arg, 4).slice().buffer).getUint32(0, true)}`
            : ioctlArgs(req, arg, ctx.read);
      } catch {
        args = hex(arg);
      }
      return `ioctl(${p.readInt32LE(0)}, ${ioctlName(req, onDevice)}${args ? `, ${args}` : ""})${res}`;
    }
    case OP.PREAD:
      if (!ctx.isVfioFd(p.readInt32LE(0))) return null;
      return `pread(${p.readInt32LE(0)}, ${p.readUInt32LE(4)}, ${region(p.readBigInt64LE(8))})${res}`;
    case OP.PWRITE:
      if (!ctx.isVfioFd(p.readInt32LE(0))) return null;
      return `pwrite(${p.readInt32LE(0)}, ${p.length - 16}, ${region(p.readBigInt64LE(8))})${res}`;
    case OP.MMAP:
      return `mmap(${p.readInt32LE(0)}, ${hex(p.readBigUInt64LE(8))}, ${region(p.readBigInt64LE(16))})${res}`;
    default:
      return null;
  }
}
