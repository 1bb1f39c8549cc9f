/**
 * The host kernel's PCI/MSI plumbing for each board (design.md "MSI on ARM" / "MSI on x86").
 * ARM: the ITS driver allocates an LPI and an EventID for the device (MAPD/MAPTI), dma-iommu maps the
 * ITS doorbell page into the device's domain through the MSI cookie (`prepareMsi`) and rewrites the
 * address (`composeMsiMsg`): 0x08090040 becomes IOVA 0x8000040. x86: the interrupt-remapping driver
 * allocates an IRTE and hands back a remappable-format address (0xfee00218 for IRTE 16).
 */
import { composeMsiMsg, prepareMsi } from "@dma-iommu/msi-cookie";
import type { Iommu } from "@iommu/core";
import type { EduDevice } from "../devices/edu.js";
import type { Gicv3Its } from "../irq/gicv3-its.js";
import type { InterruptController } from "../irq/interrupt-controller.js";
import { writeMsiCapability } from "./msi-capability.js";
import type { MsiGlue, MsiSetup } from "./msi-glue.js";

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

export function createArmMsiGlue(k: { iommu: Iommu; its: Gicv3Its; gic: InterruptController }): MsiGlue {
  const active = new Map<EduDevice, MsiSetup>();
  // The ITS driver keeps a device's LPI across enable/disable cycles (its_msi_prepare per device).
  const lpis = new Map<EduDevice, number>();
  return {
    enable(dev, handler) {
      const steps: string[] = [];
      // its_msi_prepare + its_irq_domain_alloc: EventID 0 of DeviceID = requester id.
      let lpi = lpis.get(dev);
      if (lpi === undefined) {
        lpi = k.its.allocLpi();
        lpis.set(dev, lpi);
      }
      const eventId = 0;
      // iommu_dma_prepare_msi: map the doorbell page (throws ENOMEM leaving nothing behind).
      const page = prepareMsi(k.iommu, dev, k.its.doorbell);
      k.its.mapEvent(dev.requesterId, eventId, lpi);
      steps.push(`ITS: DeviceID ${hex(dev.requesterId)} EventID ${eventId} -> LPI ${lpi}`);
      if (page)
        steps.push(`dma-iommu: doorbell page ${hex(page.phys)} mapped at IOVA ${hex(page.iova)} (W, no-exec, MMIO)`);
      else steps.push("dma-iommu: no cookie in the device's domain, doorbell address used as is");
      const raw = {
        addressHi: Number(k.its.doorbell >> 32n),
        addressLo: Number(k.its.doorbell & 0xffffffffn),
        data: eventId,
      };
      const msg = composeMsiMsg(page, raw);
      const address = (BigInt(msg.addressHi >>> 0) << 32n) | BigInt(msg.addressLo >>> 0);
      steps.push(`compose: ${hex(k.its.doorbell)} -> ${hex(address)} data ${hex(msg.data)}`);
      k.gic.request(lpi, () => handler());
      writeMsiCapability(dev, address, msg.data, true);
      const setup: MsiSetup = { address, data: msg.data, vector: lpi, doorbellIova: page?.iova ?? null, steps };
      active.set(dev, setup);
      return setup;
    },
    disable(dev) {
      const s = active.get(dev);
      if (!s) return;
      k.gic.free(s.vector);
      k.its.unmapEvent(dev.requesterId, 0);
      // msi_domain_deactivate writes an all-zero message; the doorbell stays mapped (cookie pages live
      // as long as the domain).
      writeMsiCapability(dev, 0n, 0, false);
      active.delete(dev);
    },
    current(dev) {
      return active.get(dev) ?? null;
    },
  };
}

/** What the VT-d interrupt-remapping driver offers the x86 MSI domain (intel_irq_remapping). */
export interface IrRemapper {
  /** Allocate and program an IRTE for `dev`'s vector; returns the remappable-format message. */
  alloc(dev: EduDevice, vector: number): { address: bigint; data: number; index: number };
  /** Free the device's IRTE. */
  free(dev: EduDevice): void;
}

/** x86: vector from the local APIC's allocator, IRTE from the remapping driver, remappable message. */
export function createX86MsiGlue(k: { ir: IrRemapper; lapic: InterruptController }): MsiGlue {
  const active = new Map<EduDevice, MsiSetup>();
  // x86_vector_domain hands out IDT vectors from FIRST_EXTERNAL_VECTOR + 1 upward (0x21 here).
  let nextVector = 0x21;
  const vectors = new Map<EduDevice, number>();
  return {
    enable(dev, handler) {
      let vector = vectors.get(dev);
      if (vector === undefined) {
        vector = nextVector++;
        vectors.set(dev, vector);
      }
      const m = k.ir.alloc(dev, vector);
      const steps = [
        `x86 vector domain: vector ${hex(vector)} on CPU 0`,
        `intel_irq_remapping: IRTE ${m.index} -> vector ${hex(vector)}, source-id ${hex(dev.requesterId)}`,
        `compose: remappable format ${hex(m.address)} data ${hex(m.data)}`,
      ];
      k.lapic.request(vector, () => handler());
      writeMsiCapability(dev, m.address, m.data, true);
      const setup: MsiSetup = { address: m.address, data: m.data, vector, doorbellIova: null, steps };
      active.set(dev, setup);
      return setup;
    },
    disable(dev) {
      const s = active.get(dev);
      if (!s) return;
      k.lapic.free(s.vector);
      k.ir.free(dev);
      writeMsiCapability(dev, 0n, 0, false);
      active.delete(dev);
    },
    current(dev) {
      return active.get(dev) ?? null;
    },
  };
}
