/**
 * `arm_smmu_dump_event`'s decoded lines, printed after the raw dump from "iommu/arm-smmu-v3: Improve events
 * logging" (Linux 6.15) on: the event's name, client and addresses, then for the four translation faults its
 * access (privilege, instruction/data, read/write, stage, class). Written from the event record layout of the
 * SMMUv3 architecture (IHI 0070) and the kernel's output (linux-7.3/arm64 transcripts).
 */
import { EVT } from "../arch/structures.js";

/** The names the kernel knows (`event_str`); any other id prints as UNKNOWN. */
const EVENT_NAMES: Readonly<Record<number, string>> = {
  [EVT.C_BAD_STREAMID]: "C_BAD_STREAMID",
  [EVT.F_STE_FETCH]: "F_STE_FETCH",
  [EVT.C_BAD_STE]: "C_BAD_STE",
  [EVT.F_STREAM_DISABLED]: "F_STREAM_DISABLED",
  [EVT.C_BAD_SUBSTREAMID]: "C_BAD_SUBSTREAMID",
  [EVT.F_CD_FETCH]: "F_CD_FETCH",
  [EVT.C_BAD_CD]: "C_BAD_CD",
  [EVT.F_TRANSLATION]: "F_TRANSLATION",
  [EVT.F_ADDR_SIZE]: "F_ADDR_SIZE",
  [EVT.F_ACCESS]: "F_ACCESS",
  [EVT.F_PERMISSION]: "F_PERMISSION",
  37: "F_VMS_FETCH",
};

/** CLASS [41:40] of dword 1. */
const CLASS_NAMES = ["CD fetch", "Stage 1 translation table fetch", "Input address caused fault", "Reserved"];

const TRANSLATION_FAULTS: ReadonlySet<number> = new Set([
  EVT.F_TRANSLATION,
  EVT.F_ADDR_SIZE,
  EVT.F_ACCESS,
  EVT.F_PERMISSION,
]);
const FETCH_FAULTS: ReadonlySet<number> = new Set([EVT.F_STE_FETCH, EVT.F_CD_FETCH, 0x25]);

const bit = (v: bigint, n: bigint): boolean => ((v >> n) & 1n) === 1n;
const field = (v: bigint, lo: bigint, width: bigint): bigint => (v >> lo) & ((1n << width) - 1n);
/** printk's `%#x` / `%#llx`: 0 prints as "0", anything else with 0x. */
const hx = (v: bigint): string => (v === 0n ? "0x0" : `0x${v.toString(16)}`);

/**
 * The decoded lines of one event record (without the device prefix). `client` is the master's device name,
 * or null for a stream id no master owns.
 */
export function decodedEventLines(raw: readonly bigint[], client: string | null): string[] {
  const [d0 = 0n, d1 = 0n, d2 = 0n, d3 = 0n] = raw;
  const id = Number(field(d0, 0n, 8n));
  const sid = field(d0, 32n, 32n);
  // SSV (bit 11) says whether SSID [31:12] is meaningful; otherwise IOMMU_NO_PASID (0).
  const ssid = bit(d0, 11n) ? field(d0, 12n, 20n) : 0n;
  const head = `event: ${EVENT_NAMES[id] ?? "UNKNOWN"} client: ${client ?? "(unassigned sid)"} sid: ${hx(sid)} ssid: ${hx(ssid)}`;
  if (TRANSLATION_FAULTS.has(id)) {
    const ipa = d3 & (((1n << 52n) - 1n) & ~0xfffn);
    const cls = Number(field(d1, 40n, 2n));
    // TT_READ (bit 44) only means something for a permission fault on a table walk (CLASS TT).
    const tt = id === EVT.F_PERMISSION && cls === 1 ? (bit(d1, 44n) ? " ttd_read" : " ttd_write") : "";
    return [
      `${head} iova: ${hx(d2)} ipa: ${hx(ipa)}`,
      `${bit(d1, 33n) ? "priv" : "unpriv"} ${bit(d1, 34n) ? "inst" : "data"} ${bit(d1, 35n) ? "read" : "write"} ${
        bit(d1, 39n) ? "s2" : "s1"
      } "${CLASS_NAMES[cls]}"${tt}${bit(d1, 31n) ? " stall" : ""} stag: ${hx(field(d1, 0n, 16n))}`,
    ];
  }
  if (FETCH_FAULTS.has(id)) return [`${head} fetch_addr: ${hx(d3 & (((1n << 52n) - 1n) & ~0x7n))}`];
  return [head];
}
