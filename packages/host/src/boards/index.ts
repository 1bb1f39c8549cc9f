/** Board factory: one passthrough host per QEMU machine the conformance data was recorded on. */
import { createArm64VirtSmmuV3 } from "./arm64-virt-smmuv3.js";
import type { Board, BoardName, BoardOptions } from "./types.js";
import { createX86Q35Vtd } from "./x86-q35-vtd.js";

export type { Board, BoardInterrupt, BoardName, BoardOptions, BoardRegion } from "./types.js";
export { BOARD_NAMES } from "./types.js";

/** Build a fresh host. Throws RangeError for an unknown board name. */
export function createBoard(name: BoardName, opts: BoardOptions = {}): Board {
  switch (name) {
    case "x86-q35-vtd":
      return createX86Q35Vtd(opts);
    case "arm64-virt-smmuv3":
      return createArm64VirtSmmuV3(opts, { seed: false });
    case "arm64-virt-smmuv3-seed":
      return createArm64VirtSmmuV3(opts, { seed: true });
    default:
      throw new RangeError(`unknown board ${String(name)}`);
  }
}
