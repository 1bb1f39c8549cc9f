/**
 * Fuzz of the VFIO device cdev's byte interface (BIND_IOMMUFD, ATTACH/DETACH_IOMMUFD_PT, device ioctls
 * before and after bind): any argsz, flags, fd and pt_id answer 0 or one of the errnos the kernel can give,
 * and a failed call changes nothing (binding, attachment, DMA ownership, iommufd object ids).
 */
import { ERRNO } from "@iommu/core";
import {
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_GET_INFO,
} from "@vfio/uapi";
import { IOMMU_IOAS_ALLOC } from "@vfio/uapi/iommufd";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createBoard } from "../boards/index.js";
import { BoardSys } from "../sys/board-sys.js";
import type { ProcessMemory } from "../sys/user-memory.js";

const KNOWN = new Set<number>([ERRNO.EINVAL, ERRNO.EBADF, ERRNO.EBADFD, ERRNO.EBUSY, ERRNO.ENOENT, ERRNO.EFAULT]);
const REQUESTS = [
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_GET_INFO,
];

const call = fc.record({
  req: fc.constantFrom(...REQUESTS),
  argsz: fc.oneof(fc.constantFrom(0, 8, 12, 16, 24, 4096), fc.nat(64)),
  flags: fc.oneof(fc.constant(0), fc.nat(7)),
  /** 0: /dev/iommu, 1: a sysfs file, 2: a closed number, 3: -1 */
  fdKind: fc.nat(3),
  ptId: fc.nat(6),
});

describe("VFIO device cdev ioctls: only known errnos, failures leave no trace", () => {
  it("random BIND/ATTACH/DETACH/GET_INFO sequences", () => {
    fc.assert(
      fc.property(fc.array(call, { maxLength: 12 }), (calls) => {
        const b = createBoard("arm64-virt-smmuv3", { modset: "iommufd" });
        const sys = new BoardSys(b);
        const mem = sys.memory as ProcessMemory;
        const iommufd = sys.open("/dev/iommu").ret;
        const file = sys.open("/sys/kernel/iommu_groups/0/type").ret;
        const ioas = mem.calloc(12);
        sys.memory.write(ioas, new Uint8Array(new Uint32Array([12, 0, 0]).buffer));
        expect(sys.ioctl(iommufd, IOMMU_IOAS_ALLOC, ioas).ret).toBe(0);
        const cdev = sys.open("/dev/vfio/devices/vfio0").ret;
        const ctx = (sys.fds.get(iommufd) as { ctx: { objects: { all(): { id: number }[] } } }).ctx;
        const group = b.iommu.groupById(b.groupIdOf(b.edus[0]!))!;
        const snapshot = () => ({
          ids: ctx.objects
            .all()
            .map((o) => o.id)
            .sort(),
          owners: group.ownerCount,
          open: b.vfioPci.handle(b.edus[0]!.name) !== undefined,
          domain: b.iommu.domainForDev(b.edus[0]!),
        });
        for (const c of calls) {
          const fd = [iommufd, file, 4242, -1][c.fdKind]!;
          const words =
            c.req === VFIO_DEVICE_BIND_IOMMUFD
              ? [c.argsz, c.flags, fd >>> 0, 0]
              : c.req === VFIO_DEVICE_GET_INFO
                ? [c.argsz, 0, 0, 0, 0, 0]
                : [c.argsz, c.flags, c.ptId];
          const p = mem.calloc(words.length * 4);
          sys.memory.write(p, new Uint8Array(new Uint32Array(words).buffer));
          const before = snapshot();
          const r = sys.ioctl(cdev, c.req, p);
          if (r.ret < 0) {
            expect(KNOWN.has(r.errno), `errno ${r.errno}`).toBe(true);
            expect(snapshot()).toEqual(before);
          } else expect(r.ret).toBe(0);
        }
        sys.close(cdev);
        expect(group.ownerCount).toBe(0);
      }),
      { numRuns: 60 },
    );
  });
});
