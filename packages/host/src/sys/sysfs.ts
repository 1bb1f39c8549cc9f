/**
 * The sysfs, procfs and /dev entries a VFIO user reads, rendered from the model's state at the moment of
 * the read: `/sys/kernel/iommu_groups/N/{reserved_regions,type,devices/}` from the IOMMU core's groups,
 * `/sys/bus/pci/devices/BDF/{iommu_group,config}` from the PCI devices, `/proc/self/status` (VmLck is
 * type1's `locked_vm`), and the `/dev/vfio` directory (the container node and one node per group).
 */
import type { Board } from "../boards/types.js";

export type NodeKind = "file" | "dir" | "link" | "chr";

/** The rest of a process's /proc/self/status around the lines the model owns (VmLck, VmPin). */
export type StatusText = (vmLckKb: number, vmPinKb?: number) => string;

const kb = (n: number) => `${String(n).padStart(8, " ")} kB`;

/** /proc/self/status of a process the model is the whole of (the replay's probe). */
export const modelStatus: StatusText = (vmLck, vmPin = 0) =>
  `Name:\tprobe\nVmLck:\t${kb(vmLck)}\nVmPin:\t${kb(vmPin)}\n`;

/** A real process's status text with its VmLck / VmPin lines replaced by the model's accounting. */
export function spliceStatus(real: string): StatusText {
  return (vmLck, vmPin = 0) =>
    real.replace(/^VmLck:.*$/m, `VmLck:\t${kb(vmLck)}`).replace(/^VmPin:.*$/m, `VmPin:\t${kb(vmPin)}`);
}

const GROUPS = "/sys/kernel/iommu_groups";
const PCI = "/sys/bus/pci/devices";

export class SysFs {
  constructor(
    private readonly board: Board,
    private readonly vmLckKb: () => number,
    private readonly status: StatusText = modelStatus,
    /** VmPin (iommufd's `pinned_vm`), in KiB. */
    private readonly vmPinKb: () => number = () => 0,
  ) {}

  private group(id: string) {
    return /^\d+$/.test(id) ? this.board.iommu.groupById(Number(id)) : undefined;
  }

  private pciDevice(bdf: string) {
    return this.board.edus.find((d) => d.name === bdf);
  }

  /** Contents of a regular file, or null when it does not exist. */
  file(path: string): Uint8Array | null {
    const text = this.fileText(path);
    if (text === null) return null;
    return typeof text === "string" ? Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff) : text;
  }

  private fileText(path: string): string | Uint8Array | null {
    let m = /^\/sys\/kernel\/iommu_groups\/([^/]+)\/(reserved_regions|type)$/.exec(path);
    if (m) {
      const g = this.group(m[1]!);
      if (!g) return null;
      return m[2] === "type" ? g.typeText() : g.resvRegionsText();
    }
    m = /^\/sys\/bus\/pci\/devices\/([^/]+)\/config$/.exec(path);
    if (m) {
      const d = this.pciDevice(m[1]!);
      return d ? d.config.bytes.slice(0, 256) : null;
    }
    if (path === "/proc/self/status") return this.status(this.vmLckKb(), this.vmPinKb());
    return null;
  }

  /** Entries of a directory (no `.`/`..`), or null when it does not exist. */
  readdir(path: string): string[] | null {
    const p = path.replace(/\/+$/, "");
    if (p === GROUPS) return this.board.iommu.groups().map((g) => String(g.id));
    if (p === PCI) return this.board.edus.map((d) => d.name);
    if (p === "/dev/vfio") {
      const devices = this.board.vfioIommufd.hasIommufd ? ["devices"] : [];
      return ["vfio", ...devices, ...this.vfioGroups().map(String)];
    }
    let m = /^\/sys\/kernel\/iommu_groups\/([^/]+)$/.exec(p);
    if (m) return this.group(m[1]!) ? ["devices", "reserved_regions", "type"] : null;
    m = /^\/sys\/kernel\/iommu_groups\/([^/]+)\/devices$/.exec(p);
    if (m) {
      const g = this.group(m[1]!);
      return g ? g.devices.map((d) => d.name) : null;
    }
    m = /^\/sys\/bus\/pci\/devices\/([^/]+)$/.exec(p);
    if (m) {
      if (!this.pciDevice(m[1]!)) return null;
      return this.board.vfioIommufd.hasIommufd ? ["config", "iommu_group", "vfio-dev"] : ["config", "iommu_group"];
    }
    m = /^\/sys\/bus\/pci\/devices\/([^/]+)\/vfio-dev$/.exec(p);
    if (m) {
      // the device cdev's class device (vfio_device_add: "vfio%d")
      const d = this.pciDevice(m[1]!);
      return d && this.board.vfioIommufd.hasIommufd ? [`vfio${this.board.vfioIommufd.cdevIndex(d)}`] : null;
    }
    if (p === "/dev/vfio/devices" && this.board.vfioIommufd.hasIommufd) {
      return this.board.edus.map((d) => `vfio${this.board.vfioIommufd.cdevIndex(d)}`);
    }
    return null;
  }

  /** Target of a symbolic link, or null when the path is not one. */
  readlink(path: string): string | null {
    let m = /^\/sys\/bus\/pci\/devices\/([^/]+)\/iommu_group$/.exec(path);
    if (m) {
      const d = this.pciDevice(m[1]!);
      const g = d ? this.board.iommu.groupOf(d) : undefined;
      return g ? `../../../../kernel/iommu_groups/${g.id}` : null;
    }
    m = /^\/sys\/bus\/pci\/devices\/([^/]+)$/.exec(path);
    if (m) return this.pciDevice(m[1]!) ? `../../../devices/pci0000:00/${m[1]}` : null;
    m = /^\/sys\/kernel\/iommu_groups\/([^/]+)\/devices\/([^/]+)$/.exec(path);
    if (m) {
      const g = this.group(m[1]!);
      return g?.devices.some((d) => d.name === m![2]) ? `../../../../devices/pci0000:00/${m[2]}` : null;
    }
    return null;
  }

  /** What the path is (stat(2)'s file type), or null (ENOENT). */
  stat(path: string): NodeKind | null {
    const p = path.replace(/\/+$/, "");
    if (p === "/dev/kmsg" || p === "/dev/vfio/vfio") return "chr";
    if (p === "/dev/iommu") return this.board.vfioIommufd.hasIommufd ? "chr" : null;
    const cdev = /^\/dev\/vfio\/devices\/vfio(\d+)$/.exec(p);
    if (cdev) return this.board.vfioIommufd.cdevDevice(Number(cdev[1])) ? "chr" : null;
    const dev = /^\/dev\/vfio\/(\d+)$/.exec(p);
    if (dev) return this.vfioGroups().includes(Number(dev[1])) ? "chr" : null;
    if (this.readlink(p) !== null) return "link";
    if (this.readdir(p) !== null) return "dir";
    if (this.fileText(p) !== null) return "file";
    return null;
  }

  /** Groups with a /dev/vfio node: those of the devices bound to vfio-pci. */
  private vfioGroups(): number[] {
    return [...new Set(this.board.edus.map((d) => this.board.groupIdOf(d)))].sort((a, b) => a - b);
  }
}
