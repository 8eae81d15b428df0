/**
 * Link messages (WIRE.md "Link frames"): what the data packets of `link-frames.ts` carry once
 * reassembled. Several rooms share one channel; each is named once, in `OPEN`, and afterwards by
 * a small *room reference*, so a 20-byte packet is not spent on a 60-character room id.
 *
 * ```
 * varuint kind · varuint ref · body
 *   0 OPEN    varstring roomId · varstring token ('' for none)
 *   1 ACCEPT  —
 *   2 REFUSE  varuint closeCode · varstring reason
 *   3 CLOSE   —
 *   4 Y       a y-websocket frame: varuint 0 (sync) | 1 (awareness) | 3 (query awareness) · …
 * ref = number · 2 + (1 when the number was chosen by the receiver of this message)
 * ```
 *
 * Numbers are chosen by the end that sends `OPEN`, so both ends can open rooms without agreeing
 * on numbers first; the low bit says whose number space a reference is in.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { LinkError } from './link-errors.js'

/** Longest room id a link accepts (the relay's limit too). */
export const MAX_ROOM_ID = 256
/** Longest token a link accepts (`verifyAccessToken` refuses longer ones anyway). */
export const MAX_TOKEN = 4096

/** Message kinds. */
export const MessageKind = { Open: 0, Accept: 1, Refuse: 2, Close: 3, Y: 4 } as const

/** A room reference: the number and whether the *sender of the message* chose it. */
export interface RoomRef {
  num: number
  senderChose: boolean
}

/** A parsed link message. */
export type LinkMessage =
  | { kind: 'open'; ref: RoomRef; roomId: string; token: string }
  | { kind: 'accept'; ref: RoomRef }
  | { kind: 'refuse'; ref: RoomRef; code: number; reason: string }
  | { kind: 'close'; ref: RoomRef }
  | { kind: 'y'; ref: RoomRef; frame: Uint8Array }

function start(kind: number, ref: RoomRef): encoding.Encoder {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, kind)
  encoding.writeVarUint(enc, ref.num * 2 + (ref.senderChose ? 0 : 1))
  return enc
}

/** Encode a link message. */
export function encodeMessage(message: LinkMessage): Uint8Array {
  switch (message.kind) {
    case 'open': {
      const enc = start(MessageKind.Open, message.ref)
      encoding.writeVarString(enc, message.roomId)
      encoding.writeVarString(enc, message.token)
      return encoding.toUint8Array(enc)
    }
    case 'accept':
      return encoding.toUint8Array(start(MessageKind.Accept, message.ref))
    case 'refuse': {
      const enc = start(MessageKind.Refuse, message.ref)
      encoding.writeVarUint(enc, message.code)
      encoding.writeVarString(enc, message.reason.slice(0, 120))
      return encoding.toUint8Array(enc)
    }
    case 'close':
      return encoding.toUint8Array(start(MessageKind.Close, message.ref))
    case 'y': {
      const enc = start(MessageKind.Y, message.ref)
      encoding.writeUint8Array(enc, message.frame)
      return encoding.toUint8Array(enc)
    }
  }
}

/** Parse a reassembled message; throws a {@link LinkError} (`malformed`) for anything else. */
export function parseMessage(bytes: Uint8Array): LinkMessage {
  try {
    const dec = decoding.createDecoder(bytes)
    const kind = decoding.readVarUint(dec)
    const raw = decoding.readVarUint(dec)
    if (!Number.isSafeInteger(raw)) throw new LinkError('malformed', 'room reference')
    const ref: RoomRef = { num: Math.floor(raw / 2), senderChose: raw % 2 === 0 }
    let message: LinkMessage
    switch (kind) {
      case MessageKind.Open: {
        if (!ref.senderChose) throw new LinkError('malformed', 'open must name a number of its sender')
        const roomId = decoding.readVarString(dec)
        const token = decoding.readVarString(dec)
        if (roomId.length === 0 || roomId.length > MAX_ROOM_ID || token.length > MAX_TOKEN) {
          throw new LinkError('malformed', 'open: room id or token length')
        }
        message = { kind: 'open', ref, roomId, token }
        break
      }
      case MessageKind.Accept:
        message = { kind: 'accept', ref }
        break
      case MessageKind.Refuse:
        message = { kind: 'refuse', ref, code: decoding.readVarUint(dec), reason: decoding.readVarString(dec) }
        break
      case MessageKind.Close:
        message = { kind: 'close', ref }
        break
      case MessageKind.Y: {
        const frame = bytes.subarray(dec.pos)
        if (frame.length === 0) throw new LinkError('malformed', 'empty y-protocols frame')
        return { kind: 'y', ref, frame }
      }
      default:
        throw new LinkError('malformed', `message kind ${kind}`)
    }
    if (decoding.hasContent(dec)) throw new LinkError('malformed', 'trailing bytes')
    return message
  } catch (error) {
    if (error instanceof LinkError) throw error
    throw new LinkError('malformed', 'truncated message')
  }
}
