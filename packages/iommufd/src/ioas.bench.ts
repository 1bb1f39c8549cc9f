// IOAS_MAP / UNMAP costs on the x86 test host (one device attached, its domain filled as mapped).
import { bench, describe } from "vitest";
import { IommufdCtx } from "./iommufd-ctx.js";
import { BASE, testHost, X86 } from "./test-support/hosts.js";

const RW = { fixed: true, read: true, write: true };

function attached() {
  const host = testHost(X86);
  const ctx = new IommufdCtx({ iommu: host.iommu, mm: host.proc });
  const ioas = ctx.ioasAlloc();
  ctx.attachDevice(ctx.bindDevice(host.device(1)), ioas);
  return { ctx, ioas };
}

describe("iommufd IOAS", () => {
  bench("1,024 x 4 KiB IOAS_MAP then unmap-all", () => {
    const { ctx, ioas } = attached();
    for (let i = 0n; i < 1024n; i++) ctx.ioasMap(ioas, BASE + i * 0x1000n, 0x1000n, 0x100000n + i * 0x1000n, RW);
    ctx.ioasUnmap(ioas, 0n, (1n << 64n) - 1n);
  });

  bench("one 16 MiB IOAS_MAP (4,096 pages) then unmap", () => {
    const { ctx, ioas } = attached();
    ctx.ioasMap(ioas, BASE, 16n << 20n, 0x4000_0000n, RW);
    ctx.ioasUnmap(ioas, 0x4000_0000n, 16n << 20n);
  });

  bench("16,384 x 4 KiB IOAS_MAP then unmap-all (one cut for every area)", () => {
    const { ctx, ioas } = attached();
    for (let i = 0n; i < 16384n; i++) ctx.ioasMap(ioas, BASE + i * 0x1000n, 0x1000n, 0x1000_0000n + i * 0x1000n, RW);
    ctx.ioasUnmap(ioas, 0n, (1n << 64n) - 1n);
  });

  bench("1,024 kernel-chosen IOVAs (iopt_alloc_iova)", () => {
    const { ctx, ioas } = attached();
    for (let i = 0n; i < 1024n; i++) {
      ctx.ioasMap(ioas, BASE + i * 0x1000n, 0x1000n, 0n, { fixed: false, read: true, write: true });
    }
  });
});
