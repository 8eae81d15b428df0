/**
 * Who may touch which awareness state (README.md "The relay"; THREAT_MODEL.md, anyone who can
 * reach the relay).
 *
 * y-protocols' awareness lets any peer set or remove any client id's state, and the relay used to
 * forward whatever it was sent: one connection could overwrite or remove every other device's
 * presence, or flood a room with states. Here a connection may only set or remove the client ids
 * it introduced (or that another connection of the same device introduced — a device reconnecting
 * before its old socket timed out); the number of states it holds and their JSON size are capped.
 *
 * The wire format is y-protocols' `encodeAwarenessUpdate`: a varuint count, then per entry a
 * varuint client id, a varuint clock and the state as a JSON string (`"null"` removes it).
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

/** One entry of an awareness update. */
export interface AwarenessEntry {
  clientId: number
  clock: number
  /** The state as sent: JSON text, `"null"` for a removal. */
  json: string
}

/** Decode an awareness update (already validated by `protocol.ts`). Throws on garbage. */
export function decodeAwarenessEntries(update: Uint8Array): AwarenessEntry[] {
  const decoder = decoding.createDecoder(update)
  const count = decoding.readVarUint(decoder)
  const entries: AwarenessEntry[] = []
  for (let i = 0; i < count; i++) {
    const clientId = decoding.readVarUint(decoder)
    const clock = decoding.readVarUint(decoder)
    entries.push({ clientId, clock, json: decoding.readVarString(decoder) })
  }
  return entries
}

/** Encode entries back into an awareness update. */
export function encodeAwarenessEntries(entries: readonly AwarenessEntry[]): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, entries.length)
  for (const { clientId, clock, json } of entries) {
    encoding.writeVarUint(encoder, clientId)
    encoding.writeVarUint(encoder, clock)
    encoding.writeVarString(encoder, json)
  }
  return encoding.toUint8Array(encoder)
}

/** Why (part of) an awareness update was dropped; the `/metrics` label. */
export type AwarenessDrop = 'awarenessForeign' | 'awarenessStates' | 'awarenessBytes'

/** The outcome of {@link filterAwareness}. */
export interface AwarenessVerdict {
  /** Entries to apply (empty: nothing to apply). */
  keep: AwarenessEntry[]
  /**
   * Entries dropped because another device's connection controls their client id and they would
   * have changed its state (newer clock). Stale copies are dropped without counting: y-websocket
   * clients echo every state they receive, and y-protocols would ignore them anyway.
   */
  foreign: number
  /** Set when the whole update was dropped for taking the connection past a cap. */
  over?: 'awarenessStates' | 'awarenessBytes'
}

/** What {@link filterAwareness} needs to know about the room. */
export interface AwarenessView<Peer> {
  /** The connection controlling a client id, if any. */
  ownerOf(clientId: number): Peer | undefined
  /** The clock of the room's current state (or removal) for a client id, if it has one. */
  clockOf(clientId: number): number | undefined
  /** Client ids `peer` controls and the JSON bytes of each one's state. */
  statesOf(peer: Peer): ReadonlyMap<number, number>
  /** True when two connections belong to the same (identified) device. */
  sameDevice(a: Peer, b: Peer): boolean
}

/**
 * Keep the entries `peer` may apply: client ids it controls, nobody controls, or its own device
 * controls through another connection. Drops the whole update when applying the kept entries would
 * leave `peer` with more than `maxStates` states or `maxBytes` of state JSON.
 */
export function filterAwareness<Peer>(
  entries: readonly AwarenessEntry[],
  peer: Peer,
  view: AwarenessView<Peer>,
  maxStates: number,
  maxBytes: number,
): AwarenessVerdict {
  const held = new Map(view.statesOf(peer))
  const keep: AwarenessEntry[] = []
  let foreign = 0
  for (const entry of entries) {
    const owner = view.ownerOf(entry.clientId)
    if (owner !== undefined && owner !== peer && !view.sameDevice(owner, peer)) {
      const known = view.clockOf(entry.clientId)
      const stale = known !== undefined && (entry.clock < known || (entry.clock === known && entry.json !== 'null'))
      if (!stale) foreign += 1
      continue
    }
    keep.push(entry)
    if (entry.json === 'null') held.delete(entry.clientId)
    else held.set(entry.clientId, entry.json.length)
  }
  if (held.size > maxStates) return { keep: [], foreign, over: 'awarenessStates' }
  let bytes = 0
  for (const size of held.values()) bytes += size
  if (bytes > maxBytes) return { keep: [], foreign, over: 'awarenessBytes' }
  return { keep, foreign }
}
