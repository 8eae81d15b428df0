/**
 * Fan-out between relay nodes (ARCHITECTURE.md, relay storage; README "Running several relay
 * nodes"): how a node tells the others that a room's store grew, and passes awareness on.
 *
 * Notifications only *notify*. The store is the source of truth: a node applies an announced
 * update only when it is the room's next seq, fetches from the store when one is missing, and
 * catches up every open room when its fan-out reconnects and on a slow timer — so a lost,
 * duplicated or reordered notification costs latency, never data. Only committed updates are
 * announced (never a sync step 2 computed for one peer). Awareness travels only here and is
 * never stored; each node times out stale states itself.
 *
 * Message format (one per pub/sub message, lib0 encoding, version byte first):
 * `varuint 1 · varuint kind · varstring node · varuint sentAt (ms)` then, for kind 0 (update)
 * `varuint seq · varuint8array update`, kind 1 (seq only, for updates above the inline size)
 * `varuint seq`, kind 2 (awareness) `varstring accountId · varstring deviceId · varuint8array update`,
 * kind 3 (revocation, on the control channel) `varstring accountId · varstring deviceId ·
 * varuint8array rootPublicKey · varuint8array statement`, kind 4 (relay pass, control channel)
 * `varstring accountId · varuint8array rootPublicKey · varuint8array statement`.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import type { StoredRevocation } from './store.js'

/** Who controls the awareness states of a notification (the device of the connection that set them). */
export interface AwarenessOwner {
  readonly accountId: string
  readonly deviceId: string
}

/** A decoded fan-out message. */
export type FanoutMessage =
  | { kind: 'update'; node: string; sentAt: number; seq: number; update: Uint8Array | undefined }
  | { kind: 'awareness'; node: string; sentAt: number; owner: AwarenessOwner | undefined; update: Uint8Array }
  | { kind: 'revocation'; node: string; sentAt: number; revocation: StoredRevocation }
  | { kind: 'pass'; node: string; sentAt: number; pass: RelayPassNotice }

/** A relay pass one node read from a registry room: newer passes supersede older ones on every node. */
export interface RelayPassNotice {
  accountId: string
  rootPublicKey: Uint8Array
  /** The root-signed relay pass (WIRE.md "Relay pass"). */
  statement: Uint8Array
}

/** What a node does with what arrives. */
export interface FanoutHandlers {
  /** A message for `roomId` from another node. */
  message(roomId: string, message: FanoutMessage): void
  /** The fan-out reconnected: notifications may have been lost meanwhile; catch up every room. */
  reconnected(): void
  /**
   * Another node verified a revocation (it arrives unverified here: check it before acting on it).
   * Every node must cut the device off, not only those with its account's registry room open.
   */
  revocation(revocation: StoredRevocation): void
  /** Another node read a newer relay pass (unverified here, like a revocation). */
  pass(pass: RelayPassNotice): void
}

/** Fan-out between relay nodes (Redis pub/sub: `redis-fanout.ts`). */
export interface RelayFanout {
  /** This node's id; messages it published come back to it and are ignored by it. */
  readonly node: string
  /** Connect and start delivering to `handlers`. */
  start(handlers: FanoutHandlers): Promise<void>
  /** Start receiving a room's messages (its first connection on this node). */
  join(roomId: string): void
  /** Stop receiving a room's messages (it unloaded). */
  leave(roomId: string): void
  /** Announce a committed update (or only its seq when it is large). Never throws. */
  publishUpdate(roomId: string, seq: number, update: Uint8Array): void
  /** Tell every node about a revocation this node verified. Never throws. */
  publishRevocation(revocation: StoredRevocation): void
  /** Tell every node about a newer relay pass this node verified. Never throws. */
  publishPass(pass: RelayPassNotice): void
  /** Pass awareness entries set by a connection of this node on. Never throws. */
  publishAwareness(roomId: string, update: Uint8Array, owner: AwarenessOwner | undefined): void
  /** Resolves when the fan-out answers (health); rejects otherwise. */
  ping(): Promise<void>
  /** Disconnect. Idempotent. */
  close(): Promise<void>
}

const VERSION = 1
const KIND_UPDATE = 0
const KIND_SEQ = 1
const KIND_AWARENESS = 2
const KIND_REVOCATION = 3
const KIND_PASS = 4

/** A notice's encoder with its header written: format version, kind, sending node, send time. */
function noticeHeader(kind: number, node: string, sentAt: number): encoding.Encoder {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, VERSION)
  encoding.writeVarUint(encoder, kind)
  encoding.writeVarString(encoder, node)
  encoding.writeVarUint(encoder, sentAt)
  return encoder
}

/** Encode a relay pass notice (control channel). */
export function encodePassNotice(node: string, pass: RelayPassNotice, sentAt = Date.now()): Uint8Array {
  const encoder = noticeHeader(KIND_PASS, node, sentAt)
  encoding.writeVarString(encoder, pass.accountId)
  encoding.writeVarUint8Array(encoder, pass.rootPublicKey)
  encoding.writeVarUint8Array(encoder, pass.statement)
  return encoding.toUint8Array(encoder)
}

/** Encode a revocation notice (sent on the control channel every node listens to). */
export function encodeRevocationNotice(node: string, revocation: StoredRevocation, sentAt = Date.now()): Uint8Array {
  const encoder = noticeHeader(KIND_REVOCATION, node, sentAt)
  encoding.writeVarString(encoder, revocation.accountId)
  encoding.writeVarString(encoder, revocation.deviceId)
  encoding.writeVarUint8Array(encoder, revocation.rootPublicKey)
  encoding.writeVarUint8Array(encoder, revocation.statement)
  return encoding.toUint8Array(encoder)
}

/** Encode an update notification; `inline` false sends the seq alone. */
export function encodeUpdateNotice(node: string, seq: number, update: Uint8Array, inline: boolean, sentAt = Date.now()): Uint8Array {
  const encoder = noticeHeader(inline ? KIND_UPDATE : KIND_SEQ, node, sentAt)
  encoding.writeVarUint(encoder, seq)
  if (inline) encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** Encode an awareness notification. */
export function encodeAwarenessNotice(node: string, update: Uint8Array, owner: AwarenessOwner | undefined, sentAt = Date.now()): Uint8Array {
  const encoder = noticeHeader(KIND_AWARENESS, node, sentAt)
  encoding.writeVarString(encoder, owner?.accountId ?? '')
  encoding.writeVarString(encoder, owner?.deviceId ?? '')
  encoding.writeVarUint8Array(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** Decode a fan-out message; undefined for anything malformed or of another version. */
export function decodeFanoutMessage(bytes: Uint8Array): FanoutMessage | undefined {
  try {
    const decoder = decoding.createDecoder(bytes)
    if (decoding.readVarUint(decoder) !== VERSION) return undefined
    const kind = decoding.readVarUint(decoder)
    const node = decoding.readVarString(decoder)
    const sentAt = decoding.readVarUint(decoder)
    let message: FanoutMessage
    if (kind === KIND_UPDATE || kind === KIND_SEQ) {
      const seq = decoding.readVarUint(decoder)
      const update = kind === KIND_UPDATE ? decoding.readVarUint8Array(decoder) : undefined
      message = { kind: 'update', node, sentAt, seq, update }
    } else if (kind === KIND_AWARENESS) {
      const accountId = decoding.readVarString(decoder)
      const deviceId = decoding.readVarString(decoder)
      const update = decoding.readVarUint8Array(decoder)
      message = { kind: 'awareness', node, sentAt, owner: accountId && deviceId ? { accountId, deviceId } : undefined, update }
    } else if (kind === KIND_REVOCATION) {
      const accountId = decoding.readVarString(decoder)
      const deviceId = decoding.readVarString(decoder)
      const rootPublicKey = decoding.readVarUint8Array(decoder).slice()
      const statement = decoding.readVarUint8Array(decoder).slice()
      message = { kind: 'revocation', node, sentAt, revocation: { accountId, deviceId, rootPublicKey, statement } }
    } else if (kind === KIND_PASS) {
      const accountId = decoding.readVarString(decoder)
      const rootPublicKey = decoding.readVarUint8Array(decoder).slice()
      const statement = decoding.readVarUint8Array(decoder).slice()
      message = { kind: 'pass', node, sentAt, pass: { accountId, rootPublicKey, statement } }
    } else return undefined
    return decoding.hasContent(decoder) ? undefined : message
  } catch {
    return undefined
  }
}
