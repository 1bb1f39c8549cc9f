/**
 * Issue #13 rule 2 (x86): a device's INTx takes its interrupt-remapping entry when the device is
 * enabled. Opening a vfio-pci device runs pci_enable_device → acpi_pci_irq_enable → the GSI is mapped
 * through the IOAPIC, whose pin reserves an IRTE then; closing it (pci_disable_device) frees the entry
 * with the pin's last user. MSI entries are first-fit after whatever the open devices hold, so the MSI
 * address depends on the open/close order. Addresses are the ones Linux 6.1 gives on QEMU q35.
 */
import * as U from "@vfio/type1";
import {
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_MSI_IRQ_INDEX,
} from "@vfio/uapi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Board, createBoard } from "../boards/index.js";
import { q35PciIrqRoute } from "../boards/x86-q35-vtd.js";
import { BoardSys } from "../sys/board-sys.js";
import type { ProcessMemory } from "../sys/user-memory.js";
import { EventFd } from "./eventfd.js";
import type { VfioPciDevice } from "./vfio-pci.js";

const MSI_EVENTFD_TRIGGER = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
const MSI_OFF = {
  flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
  index: VFIO_PCI_MSI_IRQ_INDEX,
  start: 0,
  count: 0,
};

/** A q35 board whose edu groups all sit in one type1v2 container (so their devices may be opened). */
function q35(eduCount: number): Board {
  const b = createBoard("x86-q35-vtd", { eduCount });
  const sys = new BoardSys(b);
  const c = sys.open("/dev/vfio/vfio").ret;
  const arg = (sys.memory as ProcessMemory).calloc(4);
  sys.memory.write(arg, new Uint8Array(new Int32Array([c]).buffer));
  b.edus.forEach((e, i) => {
    const gfd = sys.open(`/dev/vfio/${b.groupIdOf(e)}`).ret;
    expect(sys.ioctl(gfd, U.VFIO_GROUP_SET_CONTAINER, arg).ret).toBe(0);
    if (i === 0) expect(sys.ioctl(c, U.VFIO_SET_IOMMU, BigInt(U.VFIO_TYPE1v2_IOMMU)).ret).toBe(0);
  });
  return b;
}

const open = (b: Board, i: number): VfioPciDevice => {
  const e = b.edus[i]!;
  return b.vfioPci.openDevice(b.groupIdOf(e), e.name);
};
const msiOn = (b: Board, d: VfioPciDevice): string => {
  expect(
    d.setIrqs({
      flags: MSI_EVENTFD_TRIGGER,
      index: VFIO_PCI_MSI_IRQ_INDEX,
      start: 0,
      count: 1,
      eventfds: [new EventFd()],
    }),
  ).toBe(0);
  return `0x${b.vfioPci.msiSetupOf(d.device)?.address.toString(16)}`;
};

describe("issue #13 rule 2: x86 INTx takes its IRTE at pci_enable_device and frees it at pci_disable_device", () => {
  it("recorded (random-37): device 1 opened first, then MSI on device 0 is IRTE 17, 0xfee00238", () => {
    const b = q35(2);
    open(b, 1); // GSI 22: IRTE 15
    const d0 = open(b, 0); // GSI 21: IRTE 16
    expect(msiOn(b, d0)).toBe("0xfee00238");
    expect(b.kernelLog().filter((l) => l.startsWith("ACPI"))).toEqual([
      "ACPI: \\_SB_.GSIG: Enabled at IRQ 22",
      "ACPI: \\_SB_.GSIF: Enabled at IRQ 21",
    ]);
  });

  it("one device open: its INTx 15, its MSI 16 (0xfee00218), as msi.jsonl", () => {
    const b = q35(2);
    expect(msiOn(b, open(b, 0))).toBe("0xfee00218");
  });

  it("closing a device frees its INTx entry: the next MSI reuses it; reopening logs no second 'Enabled'", () => {
    const b = q35(2);
    const d1 = open(b, 1); // 15
    const d0 = open(b, 0); // 16
    d1.close(); // 15 free again
    expect(msiOn(b, d0)).toBe("0xfee001f8"); // MSI 15
    const again = open(b, 1); // GSI 22 again: 17 (15 and 16 taken)
    expect(msiOn(b, again)).toBe("0xfee00258"); // MSI 18
    expect(b.kernelLog().filter((l) => l.startsWith("ACPI"))).toHaveLength(2);
  });

  it("MSI off and close in any order leave the table as it was before the open", () => {
    const b = q35(2);
    const d0 = open(b, 0);
    expect(msiOn(b, d0)).toBe("0xfee00218");
    d0.close(); // MSI (16) and INTx (15) both freed
    const d1 = open(b, 1); // 15
    expect(msiOn(b, d1)).toBe("0xfee00218");
  });

  it("devices whose INTx share a GSI share one IOAPIC pin and one IRTE, freed with its last user", () => {
    // Slots 1 and 5 both route INTA to GSIF (GSI 21).
    const b = q35(5);
    expect(q35PciIrqRoute(b.edus[0]!, 1)).toEqual(q35PciIrqRoute(b.edus[4]!, 1));
    const a = open(b, 0); // pin 21: 15
    const e = open(b, 4); // same pin: no new entry
    expect(msiOn(b, e)).toBe("0xfee00218"); // 16
    a.close(); // pin 21 still used by slot 5: 15 stays
    expect(msiOn(b, open(b, 1))).toBe("0xfee00258"); // INTx 17 (GSI 22), MSI 18
    e.close(); // last user of pin 21: 15 and the MSI's 16 go
    expect(msiOn(b, open(b, 2))).toBe("0xfee00218"); // INTx 15 (GSI 23), MSI 16
  });

  it("property: whatever opens, closes and MSI toggles ran, once every device is closed the table is back at boot", () => {
    const op = fc.record({ dev: fc.integer({ min: 0, max: 4 }), kind: fc.constantFrom("open", "close", "msi") });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 20 }), (ops) => {
        const b = q35(5);
        const handles = new Map<number, VfioPciDevice>();
        for (const { dev, kind } of ops) {
          const h = handles.get(dev);
          if (kind === "open" && !h) handles.set(dev, open(b, dev));
          else if (kind === "close" && h) {
            h.close();
            handles.delete(dev);
          } else if (kind === "msi" && h) {
            const on = h.msiEnabled;
            if (h.msiEnabled) expect(h.setIrqs(MSI_OFF)).toBe(0);
            else msiOn(b, h);
            expect(h.msiEnabled).toBe(!on);
          }
        }
        for (const h of handles.values()) h.close();
        expect(msiOn(b, open(b, 3))).toBe("0xfee00218");
      }),
      { numRuns: 25, seed: 13 },
    );
  });
});
