/**
 * The one place that knows how `@vfio/type1`'s host objects are opened and driven: a container (the
 * open /dev/vfio/vfio) and a group (/dev/vfio/N), each answering `ioctl(request, bytes)` with 0/positive
 * or a negative errno and writing back into the bytes what the kernel copies back.
 */
import type { Process } from "@vfio/type1";
import type { Board } from "../boards/index.js";

export interface VfioContainerLike {
  /** Requests whose argument is a struct in user memory. */
  ioctl(request: number, arg: Uint8Array): number;
  /** Requests whose argument is an integer (GET_API_VERSION, CHECK_EXTENSION, SET_IOMMU). */
  ioctlValue(request: number, value: number): number;
  close?(): void;
}

export interface VfioGroupLike {
  ioctl(request: number, arg: Uint8Array): number;
  /** VFIO_GROUP_SET_CONTAINER with the container the fd names. */
  setContainer(c: VfioContainerLike): number;
  /** VFIO_GROUP_UNSET_CONTAINER; `openDevices` = device fds of the group still open (container users). */
  unsetContainer(openDevices: number): number;
  close?(): void;
}

// Shapes assumed of @vfio/type1 until its API is read from the package (see README "Seams").
interface Type1Container {
  ioctl(request: number, arg: Uint8Array | number): number;
  close?(): void;
}
interface Type1Group {
  ioctl(request: number, arg: Uint8Array | number): number;
  setContainer?(c: Type1Container): number;
  unsetContainer?(): number;
  close?(): void;
}
interface Type1Vfio {
  openContainer(p: Process): Type1Container;
  openGroup(groupId: number): Type1Group;
}

const inner = new WeakMap<VfioContainerLike, Type1Container>();

export function vfioOpenContainer(board: Board, process: Process): VfioContainerLike {
  const c = (board.vfio as unknown as Type1Vfio).openContainer(process);
  const like: VfioContainerLike = {
    ioctl: (req, arg) => c.ioctl(req, arg),
    ioctlValue: (req, v) => c.ioctl(req, v),
    close: () => c.close?.(),
  };
  inner.set(like, c);
  return like;
}

export function vfioOpenGroup(board: Board, groupId: number): VfioGroupLike {
  const g = (board.vfio as unknown as Type1Vfio).openGroup(groupId);
  return {
    ioctl: (req, arg) => g.ioctl(req, arg),
    setContainer: (c) => g.setContainer!(inner.get(c)!),
    unsetContainer: (openDevices) => (openDevices > 0 ? -16 : g.unsetContainer!()),
    close: () => g.close?.(),
  };
}
