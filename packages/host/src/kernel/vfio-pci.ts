/**
 * vfio-pci's device side (drivers/vfio/pci/vfio_pci_core.c, vfio_pci_intrs.c, vfio_pci_config.c in
 * 6.1): a device handle opened from a VFIO group, its regions (BAR0 mmap, config space with the
 * virtualized MSI capability user space sees), VFIO_DEVICE_GET_IRQ_INFO and VFIO_DEVICE_SET_IRQS for
 * MSI with eventfd triggers. The host kernel (the board's MSI glue) programs the physical capability.
 */
import { ERRNO, ErrnoError } from "@iommu/core";
import {
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from "@vfio/uapi";
import type { EduDevice } from "../devices/edu.js";
import { EDU_BAR0_SIZE } from "../devices/edu.js";
import { MSI_FLAGS_64BIT, PCI_COMMAND, PCI_COMMAND_MEMORY } from "../devices/pci-config.js";
import type { EventFd } from "./eventfd.js";
import type { MsiGlue, MsiSetup } from "./msi-glue.js";

/** vfio.h values vfio-pci answers with that the uAPI package does not name (region/irq flags, counts). */
export const VFIO_PCI_NUM_REGIONS = 9;
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
export const VFIO_PCI_NUM_IRQS = 5;

export const VFIO_REGION_INFO_FLAG_READ = 1;
export const VFIO_REGION_INFO_FLAG_WRITE = 2;
export const VFIO_REGION_INFO_FLAG_MMAP = 4;

export const VFIO_IRQ_INFO_EVENTFD = 1;
export const VFIO_IRQ_INFO_MASKABLE = 2;
export const VFIO_IRQ_INFO_AUTOMASKED = 4;
export const VFIO_IRQ_INFO_NORESIZE = 8;

const DATA_TYPE_MASK = 7;
const ACTION_TYPE_MASK = 0x38;

/** VFIO_PCI_INDEX_TO_OFFSET: each region lives at index << 40 of the device fd. */
export function regionOffset(index: number): bigint {
  return BigInt(index) << 40n;
}

export interface RegionInfo {
  readonly index: number;
  readonly flags: number;
  readonly size: bigint;
  readonly offset: bigint;
}

export interface IrqInfo {
  readonly index: number;
  readonly flags: number;
  readonly count: number;
}

export interface SetIrqs {
  readonly flags: number;
  readonly index: number;
  readonly start: number;
  readonly count: number;
  /** DATA_EVENTFD: one per vector (null = -1, i.e. tear that vector down). DATA_BOOL: one per vector. */
  readonly eventfds?: readonly (EventFd | null)[];
  readonly bools?: readonly boolean[];
}

/** CPU access to an mmapped BAR: the same MMIO handler the bus uses, no IOMMU on this path. */
export interface BarMapping {
  readonly size: number;
  read32(offset: number): number;
  read64(offset: number): bigint;
  write32(offset: number, value: number): void;
  write64(offset: number, value: bigint): void;
}

/**
 * The group's device reference, as `@vfio/type1`'s `Vfio.deviceGet` / `devicePut`: VFIO_GROUP_GET_DEVICE_FD
 * needs the group in a container with an IOMMU backend set (6.1 vfio_device_assign_container: -EINVAL
 * otherwise). `get` returns 0 or a negative errno and counts the fd as a container user (so
 * VFIO_GROUP_UNSET_CONTAINER fails with EBUSY while it is open); `put` drops it when the fd is closed.
 * `VfioPciHost` takes and drops this reference itself: callers must not.
 */
export interface DeviceAccessGate {
  get(groupId: number): number;
  put(groupId: number): void;
}

/** The rest of the host kernel that `pci_enable_device` talks to. */
export interface VfioPciKernel {
  /** printk. */
  readonly printk?: (line: string) => void;
  /**
   * `pcibios_enable_device`'s IRQ part (x86: `pcibios_enable_irq` → `acpi_pci_irq_enable`: the INTx GSI
   * is mapped through the IOAPIC and its pin takes an interrupt-remapping entry). May throw an
   * ErrnoError (the open fails). Absent on arm64 virt (DT interrupt-map, nothing allocated).
   */
  readonly pcibiosEnableIrq?: (dev: EduDevice) => void;
  /** `pcibios_disable_device`'s IRQ part (x86: `acpi_pci_irq_disable`: the GSI is unmapped). */
  readonly pcibiosDisableIrq?: (dev: EduDevice) => void;
}

export class VfioPciDevice {
  /** The user-visible (virtualized) MSI capability: address/data/enable as user space wrote them. */
  private readonly vmsi = new Uint8Array(16);
  private irqType: "none" | "msi" = "none";
  private trigger: EventFd | null = null;
  private closed = false;

  constructor(
    readonly device: EduDevice,
    readonly groupId: number,
    private readonly glue: MsiGlue,
    private readonly onClose: (d: VfioPciDevice) => void,
  ) {
    const cap = device.config.msiCap;
    this.vmsi.set(device.config.bytes.subarray(cap, cap + 16));
    // vfio_msi_cap_init: address/data start zeroed and enable clear in the virtual view.
    this.vmsi.fill(0, 4);
    this.vmsi[2] = MSI_FLAGS_64BIT & 0xff;
    this.vmsi[3] = 0;
  }

  get name(): string {
    return this.device.name;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** The armed MSI trigger, if any. */
  get msiTrigger(): EventFd | null {
    return this.trigger;
  }

  get msiEnabled(): boolean {
    return this.irqType === "msi";
  }

  /**
   * VFIO_DEVICE_RESET: EINVAL, as 6.1 answers when `reset_works` is false: edu has no FLR, AF or PM
   * capability and sits on a root bus (no secondary bus reset), so pci_try_reset_function is ENOTTY at open.
   */
  reset(): number {
    if (this.closed) return -ERRNO.EBADF;
    return -ERRNO.EINVAL;
  }

  /**
   * The hot reset ioctls' probe: pci_probe_reset_slot fails (no hotplug slot) and pci_probe_reset_bus is
   * ENOTTY on a root bus (no bridge to reset it), so both answer ENODEV.
   */
  hotResetProbe(): number {
    if (this.closed) return -ERRNO.EBADF;
    return -ERRNO.ENODEV;
  }

  /** VFIO_DEVICE_GET_REGION_INFO. Throws EINVAL for an unknown index. */
  getRegionInfo(index: number): RegionInfo {
    this.assertOpen("vfio_pci_ioctl_get_region_info");
    if (index === VFIO_PCI_BAR0_REGION_INDEX) {
      const f = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP;
      return { index, flags: f, size: BigInt(EDU_BAR0_SIZE), offset: regionOffset(index) };
    }
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) {
      const f = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
      return { index, flags: f, size: 256n, offset: regionOffset(index) };
    }
    if (index >= 0 && index < VFIO_PCI_NUM_REGIONS) return { index, flags: 0, size: 0n, offset: regionOffset(index) };
    throw new ErrnoError("EINVAL", "vfio_pci_ioctl_get_region_info", "region index out of range", { index });
  }

  /** mmap of BAR0 through the device fd. */
  mmapBar0(): BarMapping {
    this.assertOpen("vfio_pci_core_mmap");
    const h = this.device.bar0;
    return {
      size: EDU_BAR0_SIZE,
      read32: (o) => Number(h.read(BigInt(o), 4, {})),
      read64: (o) => h.read(BigInt(o), 8, {}),
      write32: (o, v) => h.write(BigInt(o), 4, BigInt(v >>> 0), {}),
      write64: (o, v) => h.write(BigInt(o), 8, v, {}),
    };
  }

  /** pread of the config region: the MSI capability is virtualized, the rest read through. */
  configRead(offset: number, size: 1 | 2 | 4): number {
    this.assertOpen("vfio_pci_config_rw");
    const cap = this.device.config.msiCap;
    if (offset >= cap && offset + size <= cap + 16) {
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.vmsi[offset - cap + i] as number);
      return v;
    }
    return this.device.config.read(offset, size);
  }

  /** pwrite of the config region: command register through; MSI capability writes stay virtual. */
  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.assertOpen("vfio_pci_config_rw");
    const cap = this.device.config.msiCap;
    if (offset >= cap && offset + size <= cap + 16) {
      for (let i = 0; i < size; i++) {
        const at = offset - cap + i;
        if (at >= 2) this.vmsi[at] = (value >>> (8 * i)) & 0xff;
      }
      return;
    }
    // The command register takes writes of any width that reach it (a byte at 4 or 5 merges into it),
    // as vfio_config_do_rw hands each byte of an access to its capability's handler.
    if (offset <= PCI_COMMAND + 1 && offset + size > PCI_COMMAND) {
      let cmd = this.device.config.read(PCI_COMMAND, 2);
      for (let i = 0; i < size; i++) {
        const at = offset + i - PCI_COMMAND;
        if (at === 0 || at === 1) cmd = (cmd & ~(0xff << (8 * at))) | (((value >>> (8 * i)) & 0xff) << (8 * at));
      }
      this.device.config.write(PCI_COMMAND, 2, cmd);
    }
  }

  /** VFIO_DEVICE_GET_IRQ_INFO (vfio_pci_ioctl_get_irq_info). */
  getIrqInfo(index: number): IrqInfo {
    this.assertOpen("vfio_pci_ioctl_get_irq_info");
    if (index < 0 || index >= VFIO_PCI_NUM_IRQS) {
      throw new ErrnoError("EINVAL", "vfio_pci_ioctl_get_irq_info", "irq index out of range", { index });
    }
    let flags = VFIO_IRQ_INFO_EVENTFD;
    if (index === VFIO_PCI_INTX_IRQ_INDEX) flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    else flags |= VFIO_IRQ_INFO_NORESIZE;
    return { index, flags, count: this.irqCount(index) };
  }

  /**
   * VFIO_DEVICE_SET_IRQS. Returns 0 or a negative errno, as the ioctl does. Only MSI (index 1) with
   * TRIGGER is wired to hardware; INTx/MSI-X/ERR/REQ validate and answer like 6.1.
   */
  setIrqs(req: SetIrqs): number {
    if (this.closed) return -ERRNO.EBADF;
    const dataType = req.flags & DATA_TYPE_MASK;
    const action = req.flags & ACTION_TYPE_MASK;
    // vfio_set_irqs_validate_and_prepare
    if (req.index < 0 || req.index >= VFIO_PCI_NUM_IRQS) return -ERRNO.EINVAL;
    if (req.flags & ~(DATA_TYPE_MASK | ACTION_TYPE_MASK)) return -ERRNO.EINVAL;
    if (popcount(dataType) !== 1 || popcount(action) !== 1) return -ERRNO.EINVAL;
    const max = this.irqCount(req.index);
    // Range is checked only when data follows the header (DATA_NONE carries none).
    if (dataType !== VFIO_IRQ_SET_DATA_NONE && (req.start >= max || req.start + req.count > max)) return -ERRNO.EINVAL;
    if (dataType === VFIO_IRQ_SET_DATA_EVENTFD && (req.eventfds?.length ?? 0) < req.count) return -ERRNO.EINVAL;
    if (dataType === VFIO_IRQ_SET_DATA_BOOL && (req.bools?.length ?? 0) < req.count) return -ERRNO.EINVAL;
    if (req.index !== VFIO_PCI_MSI_IRQ_INDEX || action !== VFIO_IRQ_SET_ACTION_TRIGGER) {
      // Not modelled on hardware: INTx masking, MSI-X (edu has none), ERR/REQ notifications.
      return req.index === VFIO_PCI_MSIX_IRQ_INDEX ? -ERRNO.EINVAL : 0;
    }
    return this.setMsiTrigger(req, dataType);
  }

  /** vfio_pci_set_msi_trigger, for MSI (not MSI-X). */
  private setMsiTrigger(req: SetIrqs, dataType: number): number {
    const isMsi = this.irqType === "msi";
    if (isMsi && req.count === 0 && dataType === VFIO_IRQ_SET_DATA_NONE) {
      this.msiDisable();
      return 0;
    }
    if (!(isMsi || this.irqType === "none")) return -ERRNO.EINVAL;
    if (dataType === VFIO_IRQ_SET_DATA_EVENTFD) {
      if (isMsi) return this.setBlock(req);
      try {
        this.glue.enable(this.device, () => this.trigger?.signal());
      } catch (e) {
        if (e instanceof ErrnoError) return e.errno;
        throw e;
      }
      this.irqType = "msi";
      const r = this.setBlock(req);
      if (r !== 0) this.msiDisable();
      return r;
    }
    if (!isMsi || req.start + req.count > 1) return -ERRNO.EINVAL;
    // DATA_NONE / DATA_BOOL trigger: signal the eventfd from the host side (loopback test path).
    for (let i = 0; i < req.count; i++) {
      if (dataType === VFIO_IRQ_SET_DATA_NONE || req.bools?.[i]) this.trigger?.signal();
    }
    return 0;
  }

  private setBlock(req: SetIrqs): number {
    for (let i = 0; i < req.count; i++) {
      // vfio_msi_set_vector_signal: drop the old trigger, install the new one (fd -1 = none).
      this.trigger = req.eventfds?.[i] ?? null;
    }
    return 0;
  }

  private msiDisable(): void {
    this.glue.disable(this.device);
    this.trigger = null;
    this.irqType = "none";
  }

  /** vfio_pci_get_irq_count */
  private irqCount(index: number): number {
    if (index === VFIO_PCI_INTX_IRQ_INDEX) return 1;
    if (index === VFIO_PCI_MSI_IRQ_INDEX) return this.device.config.msiCap ? 1 : 0;
    if (index === VFIO_PCI_MSIX_IRQ_INDEX) return 0;
    if (index === VFIO_PCI_ERR_IRQ_INDEX) return 1;
    if (index === VFIO_PCI_REQ_IRQ_INDEX) return 1;
    return 0;
  }

  /** close(2) of the device fd: MSI torn down (vfio_pci_core_disable). */
  close(): void {
    if (this.closed) return;
    if (this.irqType === "msi") this.msiDisable();
    this.closed = true;
    this.onClose(this);
  }

  private assertOpen(op: string): void {
    if (this.closed) throw new ErrnoError("EBADF", op, "device fd is closed", { device: this.name });
  }
}

/** The host's vfio-pci driver: the devices bound to it and their open handles. */
export class VfioPciHost {
  private readonly open = new Map<string, VfioPciDevice>();

  constructor(
    readonly devices: readonly EduDevice[],
    private readonly groupOf: (dev: EduDevice) => number,
    private readonly gate: DeviceAccessGate,
    /** The host kernel's MSI plumbing for this board. */
    readonly glue: MsiGlue,
    private readonly kernel: VfioPciKernel = {},
  ) {}

  /**
   * VFIO_GROUP_GET_DEVICE_FD(name). Throws ErrnoError: ENODEV (no such device in the group), EINVAL
   * (group not in a container with an IOMMU set), EBUSY (already open: vfio-pci allows one user).
   */
  openDevice(groupId: number, name: string): VfioPciDevice {
    const dev = this.devices.find((d) => d.name === name && this.groupOf(d) === groupId);
    if (!dev)
      throw new ErrnoError("ENODEV", "vfio_device_get_from_name", "no such device in the group", { groupId, name });
    if (this.open.has(name))
      throw new ErrnoError("EBUSY", "vfio_pci_core_open_device", "device already open", { name });
    const g = this.gate.get(groupId);
    if (g < 0)
      throw new ErrnoError("EINVAL", "vfio_device_assign_container", "group has no container/IOMMU", { groupId });
    try {
      this.pciEnableDevice(dev);
    } catch (e) {
      this.gate.put(groupId);
      throw e;
    }
    const h = new VfioPciDevice(dev, groupId, this.glue, (d) => {
      // vfio_pci_core_disable: MSI is already off, so pci_disable_device releases the INTx route.
      this.kernel.pcibiosDisableIrq?.(d.device);
      this.open.delete(d.name);
      this.gate.put(d.groupId);
    });
    this.open.set(name, h);
    return h;
  }

  /**
   * vfio_pci_core_enable → `pci_enable_device`: `pci_enable_resources` turns on memory decoding for
   * edu's memory BAR, logging "enabling device (old -> new)" when the command register changes (arm64
   * virt: the kernel assigned the BARs and left decoding off; q35: SeaBIOS already enabled it), then
   * the platform's IRQ setup. Closing leaves decoding on (pci_disable_device only clears bus mastering
   * and releases the IRQ route), so a later open logs nothing.
   */
  private pciEnableDevice(dev: EduDevice): void {
    const old = dev.config.command;
    const cmd = old | PCI_COMMAND_MEMORY;
    if (cmd !== old) {
      const h4 = (v: number) => v.toString(16).padStart(4, "0");
      this.kernel.printk?.(`vfio-pci ${dev.name}: enabling device (${h4(old)} -> ${h4(cmd)})`);
      dev.config.write(PCI_COMMAND, 2, cmd);
    }
    this.kernel.pcibiosEnableIrq?.(dev);
  }

  /** Open handles of a group (a group with an open device cannot leave its container). */
  openDevicesOf(groupId: number): VfioPciDevice[] {
    return [...this.open.values()].filter((d) => d.groupId === groupId);
  }

  /** What the host's MSI glue programmed for a device (null while MSI is off). */
  msiSetupOf(dev: EduDevice): MsiSetup | null {
    return this.glue.current(dev);
  }

  handle(name: string): VfioPciDevice | undefined {
    return this.open.get(name);
  }
}

function popcount(v: number): number {
  let n = 0;
  for (let x = v; x; x &= x - 1) n++;
  return n;
}
