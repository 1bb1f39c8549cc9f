/**
 * Primary fault logging (VT-d spec 7.2.1): NFR fault recording registers used as a ring from FSTS.FRI;
 * a fault from a requester that already has an unread fault recorded is collapsed into it (QEMU's
 * `vtd_try_collapse_fault`: dropped, no overflow); any other fault arriving while the next register still
 * holds an unread fault sets PFO and is lost. The first pending fault raises the fault event (an interrupt
 * the board wires to the driver) unless FECTL.IM.
 */
import { FECTL, FRCD, FSTS } from "../arch/regs.js";

export interface FaultRecord {
  /** Low qword: fault info (page address, or interrupt index << 48). */
  lo: bigint;
  /** High qword: F, T, fault reason, source id. */
  hi: bigint;
}

export class FaultRecorder {
  readonly frcd: FaultRecord[];
  /** FSTS.FRI: where the oldest pending fault was recorded. */
  private fri = 0;
  /** Where the next fault goes (internal, as QEMU's next_frcd_reg). */
  private next = 0;
  private pfo = false;
  fectl = FECTL.IM;
  /** Faults that arrived while recording was full (overflowed) — for tests and stats. */
  lost = 0;
  /** Faults collapsed into a pending record of the same requester. */
  collapsed = 0;
  recorded = 0;

  constructor(
    nfr: number,
    private readonly raiseEvent: () => void,
  ) {
    this.frcd = Array.from({ length: nfr }, () => ({ lo: 0n, hi: 0n }));
  }

  /** Record one fault. `isRead` sets T; `info` is the page address or (IR) index << 48. */
  record(reason: number, sid: number, info: bigint, isRead: boolean): void {
    if (this.pfo) {
      this.lost++;
      return;
    }
    if (this.frcd.some((r) => r.hi >> 63n === 1n && Number(r.hi & 0xffffn) === (sid & 0xffff))) {
      this.collapsed++;
      return;
    }
    const slot = this.frcd[this.next] as FaultRecord;
    if (slot.hi >> 63n) {
      this.pfo = true;
      this.lost++;
      return;
    }
    const wasPending = this.pending();
    slot.lo = info;
    slot.hi = (1n << 63n) | (isRead ? 1n << 62n : 0n) | (BigInt(reason & 0xff) << 32n) | BigInt(sid & 0xffff);
    if (!wasPending) this.fri = this.next;
    this.next = (this.next + 1) % this.frcd.length;
    this.recorded++;
    if (!wasPending) this.event();
  }

  pending(): boolean {
    return this.frcd.some((r) => r.hi >> 63n === 1n);
  }

  get fsts(): number {
    return (this.pfo ? FSTS.PFO : 0) | (this.pending() ? FSTS.PPF : 0) | (this.fri << FSTS.FRI_SHIFT);
  }

  /** FSTS write: PFO is write-1-to-clear (PPF is read-only, derived from the F bits). */
  writeFsts(v: number): void {
    if (v & FSTS.PFO) this.pfo = false;
  }

  /** FECTL write: unmasking with IP pending delivers the held event. */
  writeFectl(v: number): void {
    const wasIp = (this.fectl & FECTL.IP) !== 0;
    this.fectl = (v & FECTL.IM) | (this.fectl & FECTL.IP);
    if (!(v & FECTL.IM) && wasIp) {
      this.fectl &= ~FECTL.IP;
      this.raiseEvent();
    }
  }

  /** Write to the top dword of FRCD[i]: F is write-1-to-clear. */
  writeTop(i: number, v: number): void {
    const r = this.frcd[i];
    if (r && v & FRCD.F) r.hi &= (1n << 63n) - 1n;
  }

  private event(): void {
    if (this.fectl & FECTL.IM) this.fectl |= FECTL.IP;
    else this.raiseEvent();
  }
}
