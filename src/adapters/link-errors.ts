/**
 * Errors of the link transport (WIRE.md "Link frames"). A link peer is untrusted input: nothing it
 * sends ever throws out of the transport. A packet or message that breaks the framing is dropped
 * and reported as a {@link LinkError} through the transport's `error` event; misuse by the host
 * app (a bad MTU, attaching a room twice) throws one.
 *
 * @module
 */
import { ContextSyncError } from '../errors.js'

/**
 * Why the link refused something. Packet-level reasons describe a single channel message; the
 * others a reassembled link message or the host's own call.
 *
 * | reason             | what happened                                                        |
 * |--------------------|----------------------------------------------------------------------|
 * | `malformed`        | a packet or message that does not parse (bad version, truncated varint, continuation without a start, overrun of the declared length) |
 * | `oversized`        | a packet longer than the channel's MTU, or a message declaring more than `maxMessageBytes` |
 * | `out-of-order`     | a packet arrived ahead of its turn (reordered, or an earlier one was lost): the partial message is discarded and the rooms resync |
 * | `duplicate`        | a packet whose sequence number was already consumed                   |
 * | `no-credit`        | a data packet beyond the credit the receiver granted                  |
 * | `handshake`        | the peer speaks another link version, or both ends claim the same role |
 * | `timeout`          | nothing heard from the peer for three keepalive intervals             |
 * | `refused`          | the peer refused to open a room (the close code is in `closeCode`)    |
 * | `unknown-room`     | a message for a room reference this end never opened or accepted      |
 * | `malformed-update` | a y-protocols message that does not decode, or an implausible Yjs update |
 * | `forbidden`        | a hub peer touched presence it does not own, or went past the presence caps (dropped) |
 * | `invalid-argument` | the host app misused the API (bad MTU, room attached twice, closed)  |
 */
export type LinkErrorReason =
  | 'malformed'
  | 'oversized'
  | 'out-of-order'
  | 'duplicate'
  | 'no-credit'
  | 'handshake'
  | 'timeout'
  | 'refused'
  | 'unknown-room'
  | 'malformed-update'
  | 'forbidden'
  | 'invalid-argument'

/** A refusal or failure on a link; `reason` says which (see {@link LinkErrorReason}). */
export class LinkError extends ContextSyncError {
  override name = 'LinkError'
  /** What went wrong, for programs. */
  readonly reason: LinkErrorReason
  /** For `refused`: the relay close code the peer gave (4401, 4403, …). */
  readonly closeCode: number | undefined

  constructor(reason: LinkErrorReason, message: string, closeCode?: number) {
    super('link', message)
    this.reason = reason
    this.closeCode = closeCode
  }
}
