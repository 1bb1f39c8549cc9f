/**
 * vfio_pci_core_ioctl on bytes: VFIO_DEVICE_GET_INFO, VFIO_DEVICE_RESET, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_GET_IRQ_INFO and
 * VFIO_DEVICE_SET_IRQS decoded from the caller's memory and answered into it, as the kernel's entry does
 * (copy_from_user of minsz, the argsz check, the work, copy_to_user). Unknown requests are ENOTTY.
 * Returns the ioctl's value or a negative errno.
 */
import { ERRNO, ErrnoError } from "@iommu/core";
import {
  DEVICE_INFO_SIZE as SIZEOF_DEVICE_INFO,
  IRQ_INFO_SIZE as SIZEOF_IRQ_INFO,
  IRQ_SET_SIZE as SIZEOF_IRQ_SET,
  REGION_INFO_SIZE as SIZEOF_REGION_INFO,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_DATA_EVENTFD,
} from "@vfio/uapi";
import type { EventFd } from "./eventfd.js";
import { VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, type VfioPciDevice } from "./vfio-pci.js";

/** VFIO_DEVICE_FLAGS_PCI (edu has no reset method vfio-pci trusts, so no FLAGS_RESET). */
const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
/** `offsetofend(struct vfio_device_info, num_irqs)`: what GET_INFO reads and requires of argsz. */
const DEVICE_INFO_MINSZ = 16;

/** copy_from_user / copy_to_user of the calling process (ErrnoError EFAULT on a bad address). */
export interface IoctlUserAccess {
  read(addr: bigint, len: number): Uint8Array;
  write(addr: bigint, bytes: Uint8Array): void;
}

/** `eventfd_ctx_fdget`: the eventfd a descriptor number names, or a negative errno (EBADF, EINVAL). */
export type EventfdLookup = (fd: number) => EventFd | number;

/** On a device fd, request 12 and 13 are the hot reset ioctls (the same numbers as the container's GET_INFO/MAP_DMA). */
export const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = 0x3b70;
export const VFIO_DEVICE_PCI_HOT_RESET = 0x3b71;
/** offsetofend(struct vfio_pci_hot_reset_info, count) and offsetofend(struct vfio_pci_hot_reset, count): both 12 */
const HOT_RESET_MINSZ = 12;

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);

/** Runs `fn`, turning the ErrnoError it throws into a negative errno. */
function kernelCall(fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ErrnoError) return e.errno;
    throw e;
  }
}

export function vfioPciIoctl(
  h: VfioPciDevice,
  request: number,
  arg: bigint,
  user: IoctlUserAccess,
  eventfdOf: EventfdLookup,
): number {
  return kernelCall(() => {
    switch (request) {
      case VFIO_DEVICE_GET_INFO: {
        // vfio_pci_ioctl_get_info: answers min(argsz, sizeof) bytes; no capability applies to edu
        const v = dv(user.read(arg, DEVICE_INFO_MINSZ));
        const argsz = v.getUint32(0, true);
        if (argsz < DEVICE_INFO_MINSZ) return -ERRNO.EINVAL;
        const out = new Uint8Array(SIZEOF_DEVICE_INFO);
        const o = dv(out);
        o.setUint32(0, argsz, true);
        o.setUint32(4, VFIO_DEVICE_FLAGS_PCI, true);
        o.setUint32(8, VFIO_PCI_NUM_REGIONS, true);
        o.setUint32(12, VFIO_PCI_NUM_IRQS, true);
        user.write(arg, out.subarray(0, Math.min(argsz, SIZEOF_DEVICE_INFO)));
        return 0;
      }
      case VFIO_DEVICE_RESET:
        return h.reset();
      case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
      case VFIO_DEVICE_PCI_HOT_RESET: {
        // vfio_pci_ioctl_get_pci_hot_reset_info / _pci_hot_reset: argsz (and, for the reset, flags 0)
        // first, then neither a slot nor a bus reset is possible for a device on a root bus: ENODEV.
        const v = dv(user.read(arg, 8));
        if (v.getUint32(0, true) < HOT_RESET_MINSZ) return -ERRNO.EINVAL;
        if (request === VFIO_DEVICE_PCI_HOT_RESET && v.getUint32(4, true) !== 0) return -ERRNO.EINVAL;
        return h.hotResetProbe();
      }
      case VFIO_DEVICE_GET_REGION_INFO: {
        const b = user.read(arg, SIZEOF_REGION_INFO);
        const v = dv(b);
        if (v.getUint32(0, true) < SIZEOF_REGION_INFO) return -ERRNO.EINVAL;
        const ri = h.getRegionInfo(v.getUint32(8, true));
        v.setUint32(4, ri.flags, true);
        v.setUint32(12, 0, true);
        v.setBigUint64(16, ri.size, true);
        v.setBigUint64(24, ri.offset, true);
        user.write(arg + 4n, b.subarray(4));
        return 0;
      }
      case VFIO_DEVICE_GET_IRQ_INFO: {
        const b = user.read(arg, SIZEOF_IRQ_INFO);
        const v = dv(b);
        if (v.getUint32(0, true) < SIZEOF_IRQ_INFO) return -ERRNO.EINVAL;
        const ii = h.getIrqInfo(v.getUint32(8, true));
        v.setUint32(4, ii.flags, true);
        v.setUint32(12, ii.count, true);
        user.write(arg + 4n, b.subarray(4, 8));
        user.write(arg + 12n, b.subarray(12, 16));
        return 0;
      }
      case VFIO_DEVICE_SET_IRQS:
        return setIrqs(h, arg, user, eventfdOf);
      default:
        return -ERRNO.ENOTTY;
    }
  });
}

function setIrqs(h: VfioPciDevice, arg: bigint, user: IoctlUserAccess, eventfdOf: EventfdLookup): number {
  const v = dv(user.read(arg, SIZEOF_IRQ_SET));
  const argsz = v.getUint32(0, true);
  const flags = v.getUint32(4, true);
  const count = v.getUint32(16, true);
  if (argsz < SIZEOF_IRQ_SET) return -ERRNO.EINVAL;
  const eventfds: (EventFd | null)[] = [];
  if (flags & VFIO_IRQ_SET_DATA_EVENTFD) {
    // vfio_set_irqs_validate_and_prepare: the data must fit in argsz
    if (argsz - SIZEOF_IRQ_SET < count * 4) return -ERRNO.EINVAL;
    const data = dv(user.read(arg + BigInt(SIZEOF_IRQ_SET), count * 4));
    for (let i = 0; i < count; i++) {
      const fd = data.getInt32(i * 4, true);
      if (fd < 0) eventfds.push(null);
      else {
        const e = eventfdOf(fd);
        if (typeof e === "number") return e;
        eventfds.push(e);
      }
    }
  }
  return h.setIrqs({ flags, index: v.getUint32(8, true), start: v.getUint32(12, true), count, eventfds });
}
