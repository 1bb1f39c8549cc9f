// The README's example, run as written (imports go through the package's own entry point).
import { VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU } from "@vfio/type1";
import { expect, it } from "vitest";
import { BoardSys, createBoard, type ProcessMemory } from "./index.js";

it("README example", () => {
  const board = createBoard("arm64-virt-smmuv3");
  const sys = new BoardSys(board); // one simulated process on the board's kernel
  const text = (path: string) => new TextDecoder().decode(sys.read(sys.open(path).ret, 4096).data);

  expect(text("/sys/kernel/iommu_groups/0/reserved_regions")).toBe("0x0000000008000000 0x00000000080fffff msi\n");
  const container = sys.open("/dev/vfio/vfio").ret;
  const group = sys.open("/dev/vfio/0").ret;
  const heap = sys.memory as ProcessMemory; // the model process's memory, with a C heap
  const arg = heap.calloc(4); // int *: the container fd, in the process's memory
  sys.memory.write(arg, new Uint8Array(new Int32Array([container]).buffer));
  expect(sys.ioctl(group, VFIO_GROUP_SET_CONTAINER, arg)).toEqual({ ret: 0, errno: 0 });
  expect(sys.ioctl(container, VFIO_SET_IOMMU, BigInt(VFIO_TYPE1v2_IOMMU))).toEqual({ ret: 0, errno: 0 });
  expect(sys.ioctl(container, VFIO_SET_IOMMU, BigInt(VFIO_TYPE1v2_IOMMU))).toEqual({ ret: -1, errno: 22 }); // EINVAL: already set
  expect(text("/sys/kernel/iommu_groups/0/type")).toBe("DMA\n"); // sysfs shows the default domain's type
});
