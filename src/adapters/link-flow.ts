/**
 * Credit-based flow control for link data packets (WIRE.md "Link frames").
 *
 * BLE write-without-response and notifications have no back-pressure of their own: a sender that
 * outruns the receiver's host stack loses packets. So the *receiver* grants credit: a credit
 * limit, an 8-bit sequence number the sender may send up to (exclusive). Grants are absolute
 * positions, not increments, so a lost grant or a lost data packet never leaks credit — the next
 * grant restates the whole window. Control packets (`HELLO`, `STATE`) need no credit.
 *
 * Losses are repaired go-back-N: every `STATE` carries the receiver's *ack* (the next sequence
 * number it wants), the sender keeps each data packet until it is acked — at most one window —
 * and on a retransmit request sends again everything from the ack on. A receiver that sees a
 * packet from the future asks at once. Acks are lazy (the session sends an owed one with its next
 * burst or at its keepalive tick), and a lost tail shows when the sender's next `STATE` names a
 * `nextSeq` the receiver has not reached.
 *
 * @module
 */
import { seqAhead } from './link-frames.js'

/** Largest window: half the 8-bit sequence space, so "ahead" and "behind" stay unambiguous. */
export const MAX_WINDOW = 127
/** Default window in packets. */
export const DEFAULT_WINDOW = 32

/**
 * The sender's side: which sequence number comes next, how far the receiver lets it go, and the
 * packets it has not acknowledged yet.
 */
export class SendCredit {
  /** Sequence number of the next data packet. */
  next = 0
  /** Credit limit granted by the peer (exclusive); no credit until its `HELLO` arrives. */
  limit = 0
  /** Oldest sequence number not acknowledged. */
  acked = 0
  /** Sent packets from {@link acked} up to {@link next}, kept for retransmission. */
  private readonly unacked: Uint8Array[] = []

  /** Whether the packet numbered {@link next} may be sent now. */
  get available(): boolean {
    const room = seqAhead(this.next, this.limit)
    return room > 0 && room <= MAX_WINDOW && this.unacked.length < MAX_WINDOW
  }

  /** Packets sent and not acknowledged. */
  get inFlight(): number {
    return this.unacked.length
  }

  /** The sequence number for the next packet. */
  spend(): number {
    const seq = this.next
    this.next = (this.next + 1) & 0xff
    return seq
  }

  /** Keep a sent packet until it is acknowledged. */
  record(packet: Uint8Array): void {
    this.unacked.push(packet)
  }

  /**
   * The receiver wants `ack` next: forget every packet before it. Returns whether anything was
   * newly acknowledged. An ack outside the packets in flight (stale, or forged) is ignored.
   */
  ack(ack: number): boolean {
    const count = seqAhead(this.acked, ack)
    if (count === 0 || count > this.unacked.length) return false
    this.unacked.splice(0, count)
    this.acked = ack & 0xff
    return true
  }

  /** Every unacknowledged packet, oldest first: what a retransmission sends again. */
  pending(): Uint8Array[] {
    return [...this.unacked]
  }

  /**
   * Take a grant from the peer. A grant that moves the limit backwards (a stale `STATE` that
   * arrived late) or past a full window from the next packet is ignored.
   */
  grant(limit: number): void {
    const forward = seqAhead(this.limit, limit)
    const room = seqAhead(this.next, limit)
    if (forward < 128 && room <= MAX_WINDOW) this.limit = limit & 0xff
  }
}

/** The receiver's side: the limit it granted, and when to grant more. */
export class ReceiveCredit {
  /** The credit limit last granted (exclusive). */
  limit: number

  constructor(readonly window: number) {
    this.limit = window & 0xff
  }

  /** Whether a data packet numbered `seq` lies within the granted credit. */
  covers(seq: number): boolean {
    const room = seqAhead(seq, this.limit)
    return room > 0 && room <= MAX_WINDOW
  }

  /**
   * After consuming up to `expected` (the next sequence number wanted): the new limit to grant,
   * or `undefined` while more than half the window is still open (grants cost packets too).
   */
  regrant(expected: number, force = false): number | undefined {
    const open = seqAhead(expected, this.limit)
    if (!force && open > this.window / 2 && open <= MAX_WINDOW) return undefined
    this.limit = (expected + this.window) & 0xff
    return this.limit
  }
}
