/**
 * How large a sync frame a WebSocket transport sends to its relay, learnt from refusals.
 *
 * A relay closes a connection with 1009 ("message too big") when a frame exceeds its
 * `maxMessageBytes`; WebSocket gives no way to ask the limit beforehand, and a browser cannot read
 * handshake headers. So the transport starts from a budget (1 MiB by default, far under the
 * relay's default 16 MiB) and, when a relay refuses a frame anyway, halves the largest frame it
 * could have cut smaller and tries again: progress already accepted stays (the next sync step 1
 * asks only for the rest). When the largest frame sent could not be cut — one envelope larger
 * than the relay accepts — no budget helps: that is reported as lasting (WIRE.md, "Frame sizes").
 *
 * @module
 */
import { MIN_SYNC_FRAME_BYTES, type SyncFrames } from '../wire/sync-frames.js'

/** What a 1009 refusal means for the next attempt. */
export type FrameRefusal =
  | { outcome: 'smaller'; budget: number }
  | { outcome: 'lasting'; frameBytes: number }

/** The frame budget of one room's connection. */
export class FrameBudget {
  /** Current budget for one frame, in bytes. */
  bytes: number
  /** Largest frame a smaller budget would have cut, on the current connection. */
  private largestSplittable = 0
  /** Largest frame no budget cuts (one item, or the delete set), on the current connection. */
  private largestWhole = 0

  constructor(initial: number) {
    this.bytes = initial
  }

  /** A new connection: what was sent on the last one no longer tells anything. */
  connected(): void {
    this.largestSplittable = 0
    this.largestWhole = 0
  }

  /** Record frames handed to the socket. */
  sent(sent: SyncFrames): void {
    sent.frames.forEach((frame, i) => {
      if (sent.splittable[i]) this.largestSplittable = Math.max(this.largestSplittable, frame.length)
      else this.largestWhole = Math.max(this.largestWhole, frame.length)
    })
  }

  /**
   * The relay closed with 1009. The refused frame was larger than its limit, so the largest frame
   * sent was too: if that one cannot be cut, nothing will get through; otherwise halve it.
   */
  refused(): FrameRefusal {
    if (this.largestWhole >= this.largestSplittable || this.bytes <= MIN_SYNC_FRAME_BYTES) {
      return { outcome: 'lasting', frameBytes: Math.max(this.largestWhole, this.largestSplittable) }
    }
    this.bytes = Math.max(MIN_SYNC_FRAME_BYTES, Math.min(this.bytes, Math.floor(this.largestSplittable / 2)))
    return { outcome: 'smaller', budget: this.bytes }
  }
}
