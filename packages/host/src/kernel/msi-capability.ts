/** `pci_write_msi_msg` for the 64-bit MSI capability: address, data, then the enable bit. */
import type { EduDevice } from "../devices/edu.js";
import { MSI_ADDRESS_HI, MSI_ADDRESS_LO, MSI_DATA_64, MSI_FLAGS, MSI_FLAGS_ENABLE } from "../devices/pci-config.js";

/** Write a composed message into the device's physical MSI capability and set (or clear) the enable bit. */
export function writeMsiCapability(dev: EduDevice, address: bigint, data: number, enable: boolean): void {
  const c = dev.config.msiCap;
  dev.config.write(c + MSI_ADDRESS_LO, 4, Number(address & 0xffffffffn));
  dev.config.write(c + MSI_ADDRESS_HI, 4, Number((address >> 32n) & 0xffffffffn));
  dev.config.write(c + MSI_DATA_64, 2, data & 0xffff);
  const flags = dev.config.read(c + MSI_FLAGS, 2);
  dev.config.write(c + MSI_FLAGS, 2, enable ? flags | MSI_FLAGS_ENABLE : flags & ~MSI_FLAGS_ENABLE);
}
