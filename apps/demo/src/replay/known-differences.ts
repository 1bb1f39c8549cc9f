/**
 * Committed fixtures the model does not reproduce yet, with the rule it misses (`arch/name` → why). The
 * replay suite and the native door both read it: neither may pass such a fixture silently.
 */
export const KNOWN_DIFFERENCES: Readonly<Record<string, string>> = {
  // (none: issue #13 rule 2, x86 INTx IRTE at pci_enable_device, explained x86 random-9/16/17/32/37)
};
