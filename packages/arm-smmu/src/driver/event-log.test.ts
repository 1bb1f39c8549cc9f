import { IOMMU_READ } from "@iommu/core";
import { describe, expect, it } from "vitest";
import { makeRig, RAM_BASE } from "../testing/rig.js";
import { decodedEventLines } from "./event-log.js";

describe("decodedEventLog (Linux 6.15+ arm_smmu_dump_event; linux-7.3/arm64 transcripts)", () => {
  it("regression (linux-7.3 arm64 edu-dma): an F_TRANSLATION write prints its name, client, ids, addresses and access", () => {
    expect(decodedEventLines([0x0000000800000010n, 0n, 0x102000n, 0n], "0000:00:01.0")).toEqual([
      "event: F_TRANSLATION client: 0000:00:01.0 sid: 0x8 ssid: 0x0 iova: 0x102000 ipa: 0x0",
      'unpriv data write s1 "CD fetch" stag: 0x0',
    ]);
  });

  it("decodes the access bits (PnU, InD, RnW, S2, CLASS, TT_READ on a table-walk permission fault, STALL, STAG) and SSV", () => {
    const d1 = (1n << 33n) | (1n << 34n) | (1n << 35n) | (1n << 39n) | (1n << 40n) | (1n << 44n) | (1n << 31n) | 0x2an;
    const d0 = (0x10n << 32n) | (0x5n << 12n) | (1n << 11n) | 0x13n;
    expect(decodedEventLines([d0, d1, 0x4000n, 0x12345678fffn], null)).toEqual([
      "event: F_PERMISSION client: (unassigned sid) sid: 0x10 ssid: 0x5 iova: 0x4000 ipa: 0x12345678000",
      'priv inst read s2 "Stage 1 translation table fetch" ttd_read stall stag: 0x2a',
    ]);
  });

  it("fetch faults print the fetch address; other events the head only; unknown ids are UNKNOWN", () => {
    expect(decodedEventLines([0x09n, 0n, 0n, 0x4000_1238n], "d")).toEqual([
      "event: F_CD_FETCH client: d sid: 0x0 ssid: 0x0 fetch_addr: 0x40001238",
    ]);
    expect(decodedEventLines([0x04n | (3n << 32n), 0n, 0n, 0n], "d")).toEqual([
      "event: C_BAD_STE client: d sid: 0x3 ssid: 0x0",
    ]);
    expect(decodedEventLines([0x01n, 0n, 0n, 0n], "d")).toEqual(["event: UNKNOWN client: d sid: 0x0 ssid: 0x0"]);
  });

  it("the driver prints the decoded lines after each rate-limited raw dump only with the option", () => {
    for (const decoded of [false, true]) {
      const rig = makeRig({}, { decodedEventLog: decoded });
      rig.pci(1);
      const dev = rig.pci(2);
      const d = rig.domain([dev]);
      d.mapPages(0x200000n, RAM_BASE, 0x1000n, 1, IOMMU_READ);
      expect(dev.dmaWrite(0x200000n, new Uint8Array(4)).ok).toBe(false);
      expect(rig.log.length).toBe(decoded ? 7 : 5);
      if (decoded)
        expect(rig.log[5]).toMatch(/: event: F_PERMISSION client: 0000:00:02\.0 sid: 0x10 ssid: 0x0 iova: 0x200000/);
    }
  });
});
