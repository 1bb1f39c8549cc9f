import { readScenario } from "@iommu-sim/conformance";
import { describe, expect, it } from "vitest";
import { type CliIo, EXIT, runCli } from "./cli.js";

function io(files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const x: CliIo = {
    out: (s) => out.push(s),
    err: (s) => err.push(s),
    tty: false,
    readFile: (p) => {
      const t = files[p];
      if (t === undefined) throw new Error("ENOENT");
      return t;
    },
    writeFile: () => {},
  };
  return { x, out: () => out.join(""), err: () => err.join("") };
}

describe("iommu-demo --modset / --uapi", () => {
  it("every command takes --modset; an unknown module set is a usage error", () => {
    for (const cmd of ["run", "map", "boards", "replay", "serve", "exec"]) {
      const t = io();
      expect(runCli([cmd, "--help"], t.x)).toBe(EXIT.OK);
      expect(t.out(), cmd).toMatch(/--modset/);
    }
    const t = io();
    expect(runCli(["boards", "--modset", "gentoo"], t.x)).toBe(EXIT.USAGE);
    expect(t.err()).toMatch(/unknown module set 'gentoo'/);
  });

  it("run --uapi iommufd narrates the IOAS's usable ranges and moves data through the cdev-attached device", () => {
    const t = io();
    const code = runCli(["run", "--uapi", "iommufd", "--board", "x86-q35-vtd", "--guest-ram", "1G"], t.x);
    const text = t.out();
    expect(code, text).toBe(EXIT.OK);
    expect(text).toMatch(/IOMMU_IOAS_ALLOC -> IOAS 1/);
    expect(text).toMatch(
      /\/dev\/vfio\/devices\/vfio0: VFIO_DEVICE_BIND_IOMMUFD -> dev_id 2; ATTACH_IOMMUFD_PT\(IOAS 1\) -> HWPT 3/,
    );
    // q35: the interrupt window is the attached device's hole, the 39-bit aperture the top
    expect(text).toMatch(/usable IOVA range \[0x0, 0xfedfffff\]/);
    expect(text).toMatch(/usable IOVA range \[0xfef00000, 0x7fffffffff\]/);
    expect(text).toMatch(/IOMMU_IOAS_MAP iova 0x0 size/);
    expect(text).toMatch(/pinned_vm 262144 pages/);
    expect(text).not.toMatch(/VFIO_IOMMU_GET_INFO/);
  });

  it("run --uapi iommufd on arm64: the SW_MSI window is the IOAS's hole and the MSI reaches the eventfd through it", () => {
    const t = io();
    const code = runCli(
      ["run", "--uapi", "iommufd", "--board", "arm64-virt-smmuv3", "--guest-ram", "1G", "--json"],
      t.x,
    );
    const r = JSON.parse(t.out());
    expect(code, t.out()).toBe(EXIT.OK);
    expect(r.uapi).toBe("iommufd");
    expect(r.info).toBeNull();
    expect(r.ioas.ranges).toEqual([
      { start: "0x0", end: "0x7ffffff" },
      { start: "0x8100000", end: "0xffffffffffff" },
    ]);
    expect(r.msi.eventfdCount).toBeGreaterThan(0);
    expect(r.dma.roundTrip).toBe(true);
  });

  it("run --uapi iommufd with --modset debian is refused (no /dev/iommu)", () => {
    const t = io();
    expect(runCli(["run", "--uapi", "iommufd", "--modset", "debian"], t.x)).toBe(EXIT.USAGE);
    expect(t.err()).toMatch(/debian module set has none/);
  });

  it("replay: the scenario's modset line opens /dev/iommu; --modset debian closes it again", () => {
    const scn = readScenario({ set: "linux-6.12-iommufd", arch: "x86", name: "iommufd-basic" });
    const opened = (argv: string[]) => {
      const t = io({ "s.scn": scn });
      runCli(["replay", "s.scn", ...argv], t.x);
      return t
        .out()
        .split("\n")
        .find((l) => l.startsWith('{"cmd":"iommufd","op":"open"'));
    };
    expect(opened([])).toMatch(/"ret":0/);
    expect(opened(["--modset", "debian"])).toMatch(/"errno":"ENOENT"/);
  });
});
