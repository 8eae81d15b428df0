/**
 * Presence on the link: the awareness frames a node sends, which lane they ride, and the relay's
 * awareness rule as a hub applies it to what a peer sends.
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import type { Awareness } from 'y-protocols/awareness'
import { decodeAwarenessEntries, encodeAwarenessEntries, filterAwareness, type AwarenessView } from '../relay/awareness-guard.js'
import { DEFAULT_LIMITS } from '../relay/limits.js'
import { MessageType } from '../wire/messages.js'
import { LinkError } from './link-errors.js'
import { Binding, type LinkNodeHooks } from './link-rooms.js'

/** Marks presence the hub's own host set (the phone's): no peer controls it. */
const HOST = Symbol('host')

/**
 * The relay's awareness rule, applied by a hub (`awareness-guard.ts`): a peer may only set or
 * remove the client ids it introduced (or its own device did on another channel), within the
 * relay's per-connection caps on states and bytes. The rest of the update is dropped and reported.
 */
export function guardedAwareness(hooks: LinkNodeHooks, binding: Binding, update: Uint8Array): Uint8Array | undefined {
  const { endpoint } = binding
  const view: AwarenessView<Binding | typeof HOST> = {
    ownerOf: (id) => {
      const source = endpoint.sources.get(id)
      if (source instanceof Binding) return source
      return id === endpoint.awareness.clientID || (source === null && endpoint.awareness.states.has(id)) ? HOST : undefined
    },
    clockOf: (id) => endpoint.awareness.meta.get(id)?.clock,
    statesOf: (peer) => {
      const held = new Map<number, number>()
      for (const [id, source] of endpoint.sources) {
        const state = endpoint.awareness.states.get(id)
        if (source === peer && state !== undefined) held.set(id, JSON.stringify(state).length)
      }
      return held
    },
    sameDevice: (a, b) => a instanceof Binding && b instanceof Binding && sameIdentity(a.peer.identity, b.peer.identity),
  }
  const verdict = filterAwareness(
    decodeAwarenessEntries(update),
    binding,
    view,
    DEFAULT_LIMITS.maxAwarenessStatesPerConnection,
    DEFAULT_LIMITS.maxAwarenessBytesPerConnection,
  )
  if (verdict.foreign > 0 || verdict.over) {
    hooks.error(
      new LinkError('forbidden', verdict.over ? `presence past the ${verdict.over} cap; dropped` : `presence of ${verdict.foreign} client(s) this peer does not own; dropped`),
      endpoint.roomId,
    )
  }
  return verdict.keep.length > 0 ? encodeAwarenessEntries(verdict.keep) : undefined
}

/** True when two peers' identities name the same device of the same account. */
function sameIdentity(a: unknown, b: unknown): boolean {
  const device = (value: unknown): string | undefined =>
    typeof value === 'object' && value !== null && typeof (value as { deviceId?: unknown }).deviceId === 'string'
      ? `${(value as { accountId?: unknown }).accountId}:${(value as { deviceId: string }).deviceId}`
      : undefined
  const da = device(a)
  return da !== undefined && da === device(b)
}

/**
 * Presence frames travel in the priority lane, with room control (OPEN, ACCEPT, REFUSE, CLOSE),
 * so a binding's control messages still precede its presence; sync frames stay in the bulk lane,
 * in order.
 */
export function isPresence(frame: Uint8Array): boolean {
  return frame[0] === MessageType.Awareness || frame[0] === MessageType.QueryAwareness
}

/** An awareness frame carrying the states of `ids`. */
export function awarenessFrame(awareness: Awareness, ids: number[]): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Awareness)
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, ids))
  return encoding.toUint8Array(encoder)
}
