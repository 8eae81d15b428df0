/**
 * Sync data in frames a peer will accept.
 *
 * y-protocols answers a sync step 1 with *one* step 2 carrying everything the other side lacks,
 * and y-websocket sends each transaction as *one* update. A device that wrote 100k memories
 * offline, or a relay serving a large room to a new device, would put tens of MiB in one
 * WebSocket message — past the relay's `maxMessageBytes` (close 1009) or a Bluetooth link's
 * reassembly limit — and retrying cannot help: the same state vector yields the same frame.
 *
 * So the data is cut first (`src/crdt/cut-state.ts`: whole envelopes, pieces under a budget) and
 * each piece travels as an ordinary y-websocket sync frame, which any Yjs peer applies as it
 * would the single one. For an answer to a sync step 1 the pieces travel as sync updates and only
 * the last is the sync step 2, so the receiver reports "synced" once everything has arrived
 * (WIRE.md, "Frame sizes").
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { MessageType } from './messages.js'

/**
 * Default budget for one sync frame: 1 MiB. Far under the relay's default `maxMessageBytes`
 * (16 MiB), and small enough that a large first sync arrives, and is applied, in steps.
 */
export const SYNC_FRAME_BYTES = 1024 * 1024

/** Smallest frame budget accepted: below this the per-frame overhead dominates. */
export const MIN_SYNC_FRAME_BYTES = 4 * 1024

/** Bytes a frame spends around its update: message type, sync type, length prefix. */
export const SYNC_FRAME_OVERHEAD = 8

/** Pieces of a cut state, as `src/crdt/cut-state.ts` returns them. */
export interface StatePieces {
  updates: Uint8Array[]
  splittable: boolean[]
}

/** Frames ready to send, and which of them a smaller budget would cut further. */
export interface SyncFrames {
  /** Complete y-websocket frames, in sending order. */
  frames: Uint8Array[]
  /** Per frame: false for a single item or the delete set, which no budget shrinks. */
  splittable: boolean[]
}

/** One y-websocket sync frame: message type, sync message type, the update. */
export function syncFrame(syncType: number, update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Sync)
  encoding.writeVarUint(encoder, syncType)
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** The answer to a sync step 1 from pieces: sync updates, the last one the sync step 2. */
export function syncStep2Frames(pieces: StatePieces): SyncFrames {
  const last = pieces.updates.length - 1
  const frames = pieces.updates.map((update, i) => syncFrame(i === last ? syncProtocol.messageYjsSyncStep2 : syncProtocol.messageYjsUpdate, update))
  return { frames, splittable: pieces.splittable }
}

/** Pieces of one transaction as sync update frames (an empty last piece — no deletions — is left out). */
export function updateFrames(pieces: StatePieces): SyncFrames {
  const kept = pieces.updates.map((update, i) => ({ update, splittable: pieces.splittable[i] === true })).filter(({ update }) => !isEmptyUpdate(update))
  return { frames: kept.map(({ update }) => syncFrame(syncProtocol.messageYjsUpdate, update)), splittable: kept.map((piece) => piece.splittable) }
}

/** A v1 update of no structs and an empty delete set. */
function isEmptyUpdate(update: Uint8Array): boolean {
  return update.length === 2 && update[0] === 0 && update[1] === 0
}
