/**
 * `replayScenario`: a scenario in the recorder's language → the transcript the model gives, in the
 * kernel's JSON Lines format. The board is the one the `platform` line names, with the scenario's
 * devices and vfio_iommu_type1 module parameters.
 */
import { parseNum, parseScenario } from "@iommu-sim/conformance";
import {
  BOARD_NAMES,
  type BoardName,
  type BoardOptions,
  createBoard,
  type KernelVersion,
  MODSETS,
  type Modset,
} from "@iommu-sim/host";
import { Probe } from "./probe.js";
import { ProbeLibc } from "./probe-libc.js";
import { errorRecord, Line, type TranscriptRecord } from "./transcript.js";

export interface ReplayOptions {
  /** Scenario file name (for messages only). */
  file?: string;
  /** Board to use when the scenario's `platform` names none of ours. */
  board?: BoardName;
  /** The kernel the model answers as (scenarios carry none: the conformance folder says which). Default 6.1. */
  kernel?: KernelVersion;
  /** The VFIO module set (which doors exist); default the scenario's `modset` line, else `debian`. */
  modset?: Modset;
}

/** The module set a replay runs with: the caller's, else the scenario's `modset NAME` line, else Debian's. */
export function modsetOf(header: string, given?: Modset): Modset {
  if (given) return given;
  return (MODSETS as readonly string[]).includes(header) ? (header as Modset) : "debian";
}

type VfioParams = NonNullable<BoardOptions["vfioParams"]>;

/** Kernel bool module parameter (param_set_bool: y/Y/1 and n/N/0). */
function parseBool(v: string): boolean | null {
  if (/^[yY1]/.test(v)) return true;
  if (/^[nN0]/.test(v)) return false;
  return null;
}

/**
 * `param KEY=VAL` lines without a module prefix go to vfio_iommu_type1 (as the VM's /init passes them);
 * `MOD.KEY=VAL` go to other modules, which the model does not have.
 */
export function vfioParamsOf(params: string): VfioParams {
  const out: { -readonly [K in keyof VfioParams]: VfioParams[K] } = {};
  for (const p of params.split(" ")) {
    const eq = p.indexOf("=");
    if (eq <= 0) continue;
    const key = p.slice(0, eq).replace(/-/g, "_");
    const val = p.slice(eq + 1);
    if (key === "dma_entry_limit") {
      const n = parseNum(val);
      if (n !== null && n <= 0xffffffffn) out.dmaEntryLimit = Number(n);
    } else if (key === "allow_unsafe_interrupts") {
      const b = parseBool(val);
      if (b !== null) out.allowUnsafeInterrupts = b;
    } else if (key === "disable_hugepages") {
      const b = parseBool(val);
      if (b !== null) out.disableHugepages = b;
    }
  }
  return out;
}

/** Runs a scenario through the model; returns the JSON Lines transcript (each line ends with "\n"). */
export function replayScenario(text: string, opts: ReplayOptions = {}): string {
  return Probe.text(replayLines(text, opts).map((l) => l.end()));
}

/**
 * Runs a scenario through the model; returns its records as objects (what `--json` shows): the same
 * records as the text, built field by field, so a record longer than probe.c's 1 MiB line (cut in the
 * text) is still one object, marked `line_cut`.
 */
export function replayRecords(text: string, opts: ReplayOptions = {}): TranscriptRecord[] {
  return replayLines(text, opts).map((l) => l.record());
}

function replayLines(text: string, opts: ReplayOptions): Line[] {
  const scn = parseScenario(text);
  const named = (BOARD_NAMES as readonly string[]).includes(scn.header.platform)
    ? (scn.header.platform as BoardName)
    : undefined;
  const boardName = named ?? opts.board;
  if (boardName === undefined) {
    const lines = scn.headerErrors.map((e) => errorRecord(e.line, e.text, e.why));
    lines.push(
      errorRecord(
        0,
        `platform ${scn.header.platform}`,
        `no board for this platform (one of ${BOARD_NAMES.join(", ")})${opts.file ? ` in ${opts.file}` : ""}`,
      ),
      new Line("done"),
    );
    return lines;
  }
  const board = createBoard(boardName, {
    eduCount: scn.header.devices || 1,
    vfioParams: vfioParamsOf(scn.header.params),
    ...(opts.kernel ? { kernel: opts.kernel } : {}),
    modset: modsetOf(scn.header.modset, opts.modset),
  });
  return new Probe(new ProbeLibc(board), scn).lines();
}
