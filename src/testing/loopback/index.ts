/**
 * The loopback transport: an in-process network that carries sealed logs between replicas in the
 * same JavaScript realm, doubling as a deterministic network simulator for tests.
 *
 * Every byte it moves is a real y-websocket frame — `varuint messageType` (0 = sync, 1 = awareness)
 * followed by a standard y-protocols sync or awareness message — so what passes here would pass a
 * relay or a link unchanged. Nothing on this network ever sees plaintext: it only holds outer docs.
 *
 * Two layouts:
 * - `hub`: an in-process "relay" holds its own copy of each room's outer doc and awareness; every
 *   attachment syncs with it only, exactly like y-websocket clients with a y-websocket server.
 * - `mesh`: every attachment of a room syncs directly with every other attachment of that room.
 *
 * Messages are always delivered asynchronously by a pump ordered by *virtual* delivery time
 * (ticks), ties broken by a seeded PRNG (`lib0/prng`), so one seed always yields one fault pattern.
 * Faults (delay, reorder, duplicate, drop) are drawn per message; partitions and offline devices
 * cut links, which discards what was in flight on them.
 *
 * Status (y-websocket semantics): `'connecting'` on attach (and when a cut link comes back),
 * `'connected'` once the simulated connection is up, `'synced'` once a sync step 2 arrived on every
 * link open at that moment — in `mesh` that is vacuously true for a room's first attachment — and
 * it stays `'synced'` while further peers join. `'disconnected'` when the device is offline or cut
 * off from its relay (`hub`) or from every peer it has (`mesh`).
 *
 * Presence: each end sends the awareness states it owns (the relay forwards everyone's); when a
 * link closes each side removes the states it learned over it, as a relay does on close, and on
 * reconnect a device re-announces its own state with a fresh clock (an extra awareness `update`
 * event with an unchanged state) so that peers holding its old clock accept it again.
 *
 * Drop recovery is **on demand**, not periodic: {@link LoopbackNetwork.heal},
 * {@link LoopbackNetwork.resync} and {@link LoopbackNetwork.settle} re-run sync step 1 both ways
 * (and re-send awareness) on open links, and `settle()` repeats that until every open link has
 * converged. A periodic timer would keep the virtual clock running forever and make "no message in
 * flight" meaningless, so there is none.
 *
 * @example
 * ```ts
 * const net = loopbackNetwork({ seed: 7, layout: 'hub', faults: { maxDelay: 5, drop: 0.1 } })
 * const phone = net.transport({ name: 'phone' })
 * const glasses = net.transport({ name: 'glasses' })
 * phone.attach({ roomId, doc: phoneDoc, awareness: phoneAwareness })
 * glasses.attach({ roomId, doc: glassesDoc, awareness: glassesAwareness })
 * phoneDoc.getArray<Uint8Array>('log').push([envelope])
 * await net.settle() // both outer docs are now identical
 * ```
 *
 * @module
 */
import { Network } from './network.js'
import type { LoopbackNetwork, LoopbackOptions } from './types.js'

export type {
  LoopbackLayout,
  LoopbackFaults,
  LoopbackOptions,
  LoopbackMessageType,
  LoopbackMessage,
  LoopbackStats,
  LoopbackNetworkEvents,
  LoopbackTransport,
  LoopbackNetwork,
} from './types.js'
export { LoopbackError } from './types.js'

/**
 * Create an in-process network of loopback transports.
 *
 * @example
 * ```ts
 * const net = loopbackNetwork({ seed: 42, layout: 'mesh', faults: { maxDelay: 10, reorder: 0.2 } })
 * const [a, b] = [net.transport({ name: 'a' }), net.transport({ name: 'b' })]
 * a.attach(roomA)
 * b.attach(roomB) // same roomId as roomA, another doc
 * net.partition([a], [b]) // both go 'disconnected'
 * net.heal()
 * await net.settle()
 * ```
 */
export function loopbackNetwork(options: LoopbackOptions = {}): LoopbackNetwork {
  return new Network(options)
}
