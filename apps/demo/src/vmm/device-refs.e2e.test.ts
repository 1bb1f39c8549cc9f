/**
 * vfio-pci's device references under a VMM: the device fd the VMM opens is one more user of its group's
 * container (6.1 vfio_device_assign_container), so VFIO_GROUP_UNSET_CONTAINER is EBUSY until it closes.
 */

import { ERRNO } from "@iommu/core";
import { type Board, createBoard } from "@iommu-sim/host";
import { VFIO_GROUP_UNSET_CONTAINER } from "@vfio/type1";
import { describe, expect, it } from "vitest";
import { Vmm } from "./vmm.js";

const EBUSY = ERRNO.EBUSY;
const unset = (b: Board, groupId: number) => b.vfio.ioctl(b.vfio.group(groupId)!.fd, VFIO_GROUP_UNSET_CONTAINER);
const users = (b: Board, groupId: number) => b.vfio.group(groupId)!.containerUsers;

describe.each(["x86-q35-vtd", "arm64-virt-smmuv3"] as const)("device references on %s", (name) => {
  it("VMM path: openDevice takes one reference, close drops it; UNSET_CONTAINER is EBUSY in between", () => {
    const b = createBoard(name, { qemuQuirks: false });
    const v = new Vmm(b, { guestRam: 1n << 30n });
    expect(v.run().ok).toBe(true);
    const g = b.groupIdOf(b.edus[0]!);
    expect(users(b, g)).toBe(2); // the container link + the open device
    expect(unset(b, g)).toBe(-EBUSY);
    b.vfioPci.handle(b.edus[0]!.name)!.close();
    expect(users(b, g)).toBe(1);
    expect(unset(b, g)).toBe(0);
  });
});
