/**
 * Validation of inbound y-websocket frames, before anything touches a room.
 *
 * The relay speaks the y-websocket protocol through `y-protocols` (sync + awareness). What this
 * module adds is strictness: a frame is parsed completely — including decoding the Yjs update or
 * awareness update it carries — before the relay applies it, so a truncated or random frame is
 * refused whole (close 4400) instead of half-applied. Yjs's own `applyUpdate` reads the delete
 * set only after integrating structs, so applying an unchecked update can leave part of it in the
 * room; `Y.decodeUpdate` reads all of it first and throws on garbage.
 *
 * Decoding is not enough: Yjs trusts its peers, and some updates that decode still corrupt the
 * doc they are applied to (found by `test/relay/fuzz.test.ts`): a zero-length struct breaks the
 * struct store's binary search so the room can never be encoded again, and an item without any
 * position (no origin, right origin or parent) or one referring to a later clock of its own
 * client throws halfway through integration. Honest Yjs never produces these, so
 * {@link isPlausibleUpdate} refuses them up front. Yjs is still not Byzantine-tolerant — a device
 * of the account can craft updates that make *its own account's* room inconsistent — which is why
 * every later use of a room's doc is guarded too (see `room.ts`).
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType } from '../wire/messages.js'

/** A validated client frame. */
export type ClientMessage =
  | { type: 'sync-step1'; stateVector: Uint8Array }
  | { type: 'sync-step2'; update: Uint8Array }
  | { type: 'sync-update'; update: Uint8Array }
  | { type: 'awareness'; update: Uint8Array }
  | { type: 'query-awareness' }

/**
 * Parse and validate one frame. Returns `undefined` for anything malformed: unknown message type,
 * truncated varints, trailing bytes, an undecodable state vector, Yjs update or awareness update.
 * Never throws.
 */
export function parseClientMessage(frame: Uint8Array): ClientMessage | undefined {
  try {
    const decoder = decoding.createDecoder(frame)
    const messageType = decoding.readVarUint(decoder)
    let message: ClientMessage
    switch (messageType) {
      case MessageType.Sync: {
        const syncType = decoding.readVarUint(decoder)
        const payload = decoding.readVarUint8Array(decoder)
        if (syncType === syncProtocol.messageYjsSyncStep1) {
          Y.decodeStateVector(payload)
          message = { type: 'sync-step1', stateVector: payload }
        } else if (syncType === syncProtocol.messageYjsSyncStep2 || syncType === syncProtocol.messageYjsUpdate) {
          if (!isPlausibleUpdate(Y.decodeUpdate(payload))) return undefined
          message = { type: syncType === syncProtocol.messageYjsSyncStep2 ? 'sync-step2' : 'sync-update', update: payload }
        } else {
          return undefined
        }
        break
      }
      case MessageType.Awareness: {
        const update = decoding.readVarUint8Array(decoder)
        // Decodes every entry (client id, clock, JSON state) and throws on garbage.
        awarenessProtocol.modifyAwarenessUpdate(update, (state: unknown) => state)
        message = { type: 'awareness', update }
        break
      }
      case MessageType.QueryAwareness:
        message = { type: 'query-awareness' }
        break
      default:
        return undefined
    }
    if (decoding.hasContent(decoder)) return undefined
    return message
  } catch {
    return undefined
  }
}

/** A reference to another struct: `{ client, clock }`. */
interface StructRef {
  client: number
  clock: number
}

function isRef(value: unknown): value is StructRef {
  return typeof value === 'object' && value !== null && typeof (value as StructRef).clock === 'number'
}

/**
 * Structural checks on a decoded update that honest Yjs always satisfies: every struct and delete
 * range is non-empty with safe-integer ids, every item has a position, and no item refers to a
 * clock of its own client that is not older than itself.
 */
export function isPlausibleUpdate(decoded: ReturnType<typeof Y.decodeUpdate>): boolean {
  for (const struct of decoded.structs) {
    const { client, clock } = struct.id
    if (!(struct.length >= 1) || !Number.isSafeInteger(client) || !Number.isSafeInteger(clock)) return false
    if (struct instanceof Y.Item) {
      const parent: unknown = struct.parent
      if (struct.origin === null && struct.rightOrigin === null && (parent === null || parent === undefined)) return false
      for (const ref of [struct.origin, struct.rightOrigin, parent]) {
        if (isRef(ref) && ref.client === client && ref.clock >= clock) return false
      }
    }
  }
  for (const ranges of decoded.ds.clients.values()) {
    for (const range of ranges) if (!(range.len >= 1) || !Number.isSafeInteger(range.clock)) return false
  }
  return true
}
