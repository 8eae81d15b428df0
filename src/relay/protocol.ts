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
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'

/** y-websocket message types (first varuint of a frame). */
export const MessageType = { Sync: 0, Awareness: 1, Auth: 2, QueryAwareness: 3 } as const

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
          Y.decodeUpdate(payload)
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
