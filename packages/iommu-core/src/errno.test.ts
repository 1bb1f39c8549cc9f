import { describe, expect, it } from "vitest";
import { ERRNO, ErrnoError, errnoName, isErrno } from "./errno.js";

describe("ErrnoError", () => {
  it("carries the errno as Node does (code: the name, errno: the negative number), the failing op and the offending values", () => {
    const e = new ErrnoError("EINVAL", "vfio_dma_do_map", "size is not page aligned", { size: 5n });
    expect(e.code).toBe("EINVAL");
    expect(e.errno).toBe(-22);
    expect(e.op).toBe("vfio_dma_do_map");
    expect(e.detail).toEqual({ size: 5n });
    expect(e.message).toContain("size is not page aligned");
    expect(isErrno(e, "EINVAL")).toBe(true);
    expect(isErrno(e, "ENOSPC")).toBe(false);
  });

  it("maps numbers back to names, either sign", () => {
    expect(errnoName(-ERRNO.ENOSPC)).toBe("ENOSPC");
    expect(errnoName(17)).toBe("EEXIST");
    expect(errnoName(4242)).toBeUndefined();
  });
});
