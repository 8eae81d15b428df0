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
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import type { Awareness } from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as prng from 'lib0/prng'
import { bytesEqual } from '../util/bytes.js'
import { Emitter } from '../util/emitter.js'
import { MinHeap } from '../util/min-heap.js'
import { MessageType } from '../wire/messages.js'
import type {
  SealedLogRoom,
  Transport,
  TransportAttachment,
  TransportAttachmentEvents,
  TransportStatus,
} from './transport.js'

// ————————————————————————————————————————————————————————————————— public types

/** How attachments of a room are wired: through one in-process relay, or directly to each other. */
export type LoopbackLayout = 'hub' | 'mesh'

/**
 * Per-message faults, drawn from the network's seeded PRNG. Probabilities are in `[0, 1]`; delays
 * are whole virtual ticks. Omitted fields are 0, i.e. no faults (delivery is still asynchronous).
 */
export interface LoopbackFaults {
  /** Smallest delivery delay in ticks (also used for connection set-up). */
  minDelay?: number
  /** Largest delivery delay in ticks. */
  maxDelay?: number
  /** Probability that a message ignores per-link FIFO order and may overtake earlier ones. */
  reorder?: number
  /** Probability that a message is delivered twice (the copy at its own random time). */
  duplicate?: number
  /** Probability that a message is lost. Recovered by the next resync (see module docs). */
  drop?: number
}

/** Options of {@link loopbackNetwork}. */
export interface LoopbackOptions {
  /** Seed of the PRNG driving delays, faults and tie-breaking. Default `0x5eed`. */
  seed?: number
  /** Wiring of each room. Default `'hub'`. */
  layout?: LoopbackLayout
  /** Initial faults. Default: none. */
  faults?: LoopbackFaults
}

/** What kind of y-websocket frame a {@link LoopbackMessage} is. */
export type LoopbackMessageType = 'sync-step-1' | 'sync-step-2' | 'sync-update' | 'awareness'

/** One message put on the wire, as seen by the `message` tap. */
export interface LoopbackMessage {
  /** Room the link belongs to (links are per room, so the frame itself carries no room id). */
  roomId: string
  /** Sender: a transport name, or `'hub'` for the in-process relay. */
  from: string
  /** Receiver, named like `from`. */
  to: string
  /** The exact frame bytes. Read-only: the same array is delivered. */
  bytes: Uint8Array
  /** Frame kind, decoded from the first bytes. */
  type: LoopbackMessageType
  /** Virtual tick at which it was sent. */
  at: number
  /** The message was lost by the `drop` fault and will never be delivered. */
  dropped: boolean
  /** A second copy of the message will be delivered. */
  duplicated: boolean
}

/** Counters of a {@link LoopbackNetwork}; a snapshot, not a live view. */
export interface LoopbackStats {
  /** Messages put on the wire (each counted once, even when duplicated or dropped). */
  sent: number
  /** Deliveries, duplicates included. */
  delivered: number
  /** Messages lost by the `drop` fault. */
  dropped: number
  /** Extra copies created by the `duplicate` fault. */
  duplicated: number
  /** Deliveries discarded because their link was cut while they were in flight. */
  lost: number
  /** Sum of the sizes of sent messages. */
  bytesSent: number
  /** Sum of the sizes of delivered messages, duplicates included. */
  bytesDelivered: number
  /** Links re-synced by `heal`, `resync` or `settle` (one per link per round). */
  resyncs: number
  /** Frames the receiving side could not parse. */
  rejected: number
}

/** Events of a {@link LoopbackNetwork}. */
export interface LoopbackNetworkEvents {
  /** Every message sent over the network, including ones the `drop` fault loses. */
  message: (event: LoopbackMessage) => void
  /** A message reached its receiver (once per copy), at virtual tick `at`. */
  delivery: (event: { message: LoopbackMessage; at: number }) => void
}

/** A {@link Transport} on a loopback network. */
export interface LoopbackTransport extends Transport {
  /** Always `'loopback'`. */
  readonly kind: 'loopback'
  /** Name used in the tap and in error messages. */
  readonly name: string
}

/**
 * An in-process network of loopback transports, with a simulator's controls. Create one with
 * {@link loopbackNetwork}.
 */
export interface LoopbackNetwork {
  /** Wiring of each room. */
  readonly layout: LoopbackLayout
  /**
   * The PRNG seed; print it when a randomized test fails so it can be replayed. The same seed and
   * the same sequence of calls give the same deliveries and message counts; byte counts also
   * depend on the docs' client ids (random in Yjs), so fix `doc.clientID` for byte-exact replays.
   */
  readonly seed: number
  /** Current virtual time in ticks. */
  readonly now: number
  /** The faults in effect, with defaults filled in. */
  readonly faults: Readonly<Required<LoopbackFaults>>
  /** A snapshot of the counters. */
  readonly stats: LoopbackStats
  /** A new transport (one per simulated device). */
  transport(options?: { name?: string }): LoopbackTransport
  /**
   * Cut every link that crosses groups; the attachments that lose all their links go
   * `'disconnected'`. Replaces any earlier partition. Transports not named in any group form one
   * extra group together. In the `hub` layout the relay stays with the first group.
   */
  partition(...groups: Transport[][]): void
  /** Undo {@link partition} and {@link disconnect}, reconnect everything, and re-sync open links. */
  heal(): void
  /** Take one transport offline: its links are cut, its docs may keep changing locally. */
  disconnect(transport: Transport): void
  /** Bring a transport taken offline by {@link disconnect} back; it re-syncs on reconnect. */
  reconnect(transport: Transport): void
  /** Replace the faults in effect (omitted fields become 0). */
  setFaults(faults: LoopbackFaults): void
  /** Re-run sync step 1 both ways (and re-send awareness) on every open link now. */
  resync(): void
  /**
   * Resolve once nothing is in flight and every open link has converged: both ends hold the same
   * outer state (state vector and delete set), the same forwarded awareness, and have received a
   * sync step 2. Re-syncs links as often as needed to recover dropped messages; rejects with a
   * {@link LoopbackError} if that takes more than 200 rounds (e.g. `drop: 1`).
   */
  settle(): Promise<void>
  /** Subscribe to network events (the byte tap); returns an unsubscribe function. */
  on<E extends keyof LoopbackNetworkEvents>(event: E, listener: LoopbackNetworkEvents[E]): () => void
  /** The relay's copy of a room's outer doc (`hub` layout), for assertions; else `undefined`. */
  relayDoc(roomId: string): Y.Doc | undefined
  /** Close every transport, drop everything in flight and release the relay's awareness timers. */
  destroy(): void
}

/** Thrown on misuse of the loopback network (bad options, foreign transports, use after close). */
export class LoopbackError extends Error {
  override readonly name = 'LoopbackError'
}

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

// ———————————————————————————————————————————————————————————————— internals

/** The relay is always in the first partition group. */
const HUB_GROUP = 0
/** Transports missing from every partition group share this group. */
const REST_GROUP = -1
const DEFAULT_SEED = 0x5eed
const MAX_SETTLE_ROUNDS = 200
/** Let timers and I/O run every so many deliveries, so a long simulation does not starve them. */
const EVENTS_PER_SLICE = 256

const NO_FAULTS: Required<LoopbackFaults> = { minDelay: 0, maxDelay: 0, reorder: 0, duplicate: 0, drop: 0 }

interface QueueKey {
  at: number
  tie: number
  seq: number
}

interface QueuedEvent extends QueueKey {
  run: () => void
}

function before(a: QueueKey, b: QueueKey): boolean {
  if (a.at !== b.at) return a.at < b.at
  if (a.tie !== b.tie) return a.tie < b.tie
  return a.seq < b.seq
}

/**
 * A bidirectional connection between two endpoints of one room. A new `generation` starts each
 * time it opens or closes, so frames sent on an earlier connection are discarded like a closed
 * socket's buffers.
 */
class Link {
  open = false
  generation = 0
  /** Ends that received a sync step 2 on the current connection. */
  readonly gotStep2 = new Set<Endpoint>()
  /** Last FIFO delivery key per sending end, to keep in-order delivery unless `reorder` hits. */
  readonly lastKey = new Map<Endpoint, QueueKey>()

  constructor(
    readonly a: Endpoint,
    readonly b: Endpoint,
  ) {}

  other(end: Endpoint): Endpoint {
    return end === this.a ? this.b : this.a
  }
}

type AwarenessChanges = { added: number[]; updated: number[]; removed: number[] }

/** One holder of a room's outer doc on the network: a device's attachment, or the relay's copy. */
abstract class Endpoint {
  readonly links = new Set<Link>()
  /** Which link each remote awareness client was learned over (`null`: from elsewhere, ours to announce). */
  readonly sources = new Map<number, Link | null>()
  private readonly offDoc: () => void
  private readonly offAwareness: () => void

  constructor(
    protected readonly net: Network,
    readonly roomId: string,
    readonly doc: Y.Doc,
    readonly awareness: Awareness,
  ) {
    const onUpdate = (update: Uint8Array, origin: unknown): void => net.onDocUpdate(this, update, origin)
    const onAwareness = (changes: AwarenessChanges, origin: unknown): void =>
      net.onAwarenessUpdate(this, changes, origin)
    doc.on('update', onUpdate)
    awareness.on('update', onAwareness)
    this.offDoc = () => doc.off('update', onUpdate)
    this.offAwareness = () => awareness.off('update', onAwareness)
  }

  abstract readonly name: string
  /** Whether this end has finished connecting, so its links may open. */
  abstract readonly joined: boolean

  /** Whether this end should send awareness client `id` over `link`. */
  abstract forwards(link: Link, id: number): boolean
  /** Whether a doc update with `origin` should be sent over `link`. */
  abstract forwardsUpdate(link: Link, origin: unknown): boolean
  /** Report a frame this end could not accept. */
  abstract reject(code: string, message: string): void

  /** Every awareness client this end would announce over `link`, including removed ones. */
  forwardedClients(link: Link): number[] {
    return [...this.awareness.meta.keys()].filter((id) => this.forwards(link, id))
  }

  stopListening(): void {
    this.offDoc()
    this.offAwareness()
  }
}

/** The relay's copy of a room (`hub` layout); like a y-websocket server it forwards everything. */
class HubRoom extends Endpoint {
  readonly name = 'hub'
  readonly joined = true

  constructor(net: Network, roomId: string) {
    const doc = new Y.Doc()
    const awareness = new awarenessProtocol.Awareness(doc)
    // A relay has no presence of its own.
    awareness.setLocalState(null)
    // The in-process relay outlives the devices that used it: its awareness timer (y-protocols
    // keeps it in `_checkInterval`) must not keep a script alive once they are closed.
    ;(awareness as unknown as { _checkInterval?: { unref?: () => void } })._checkInterval?.unref?.()
    super(net, roomId, doc, awareness)
  }

  forwards(link: Link, id: number): boolean {
    const source = this.sources.get(id)
    return id !== this.awareness.clientID && source !== undefined && source !== link
  }

  forwardsUpdate(link: Link, origin: unknown): boolean {
    return origin !== link
  }

  reject(): void {
    this.net.countRejected()
  }

  destroy(): void {
    this.stopListening()
    this.doc.destroy()
  }
}

/** A device's attachment of one room. */
class Attachment extends Endpoint implements TransportAttachment {
  /** The first status event is deferred so that listeners added right after `attach` see it. */
  started = false
  joined = false
  detached = false
  /** Bumped to cancel a scheduled join. */
  joinToken = 0
  joinScheduled = false
  private current: TransportStatus = 'connecting'
  private readonly events = new Emitter<TransportAttachmentEvents>()
  private readonly offDestroy: () => void

  constructor(
    net: Network,
    readonly transport: TransportImpl,
    room: SealedLogRoom,
  ) {
    super(net, room.roomId, room.doc, room.awareness)
    // Presence already held at attach time came from elsewhere (this device, another transport):
    // ours to announce. States learned over loopback links are removed when those links close.
    for (const id of room.awareness.states.keys()) if (id !== room.awareness.clientID) this.sources.set(id, null)
    // A destroyed doc cannot sync any more; detach rather than leave a dangling link.
    const onDestroy = (): void => this.detach()
    room.doc.on('destroy', onDestroy)
    this.offDestroy = () => room.doc.off('destroy', onDestroy)
  }

  get name(): string {
    return this.transport.name
  }

  get status(): TransportStatus {
    return this.current
  }

  on<E extends keyof TransportAttachmentEvents>(event: E, listener: TransportAttachmentEvents[E]): () => void {
    return this.events.on(event, listener)
  }

  detach(): void {
    if (this.detached) return
    this.net.detach(this)
    this.offDestroy()
    this.events.clear()
  }

  setStatus(status: TransportStatus): void {
    if (status === this.current) return
    this.current = status
    this.events.emit('status', { status, roomId: this.roomId })
  }

  announceConnecting(): void {
    this.events.emit('status', { status: 'connecting', roomId: this.roomId })
  }

  // Only presence this device owns (its own, or learned from another transport) travels from here.
  // States learned over a loopback link, or met only as a removal, are their sender's to announce:
  // re-announcing a stale clock would let one peer "remove" a client that another still sees.
  forwards(_link: Link, id: number): boolean {
    return id === this.awareness.clientID || this.sources.get(id) === null
  }

  forwardsUpdate(_link: Link, origin: unknown): boolean {
    return !(origin instanceof Link)
  }

  reject(code: string, message: string): void {
    this.net.countRejected()
    this.events.emit('error', { code, message, roomId: this.roomId })
  }
}

class TransportImpl implements LoopbackTransport {
  readonly kind = 'loopback'
  readonly attachments = new Map<string, Attachment>()
  closed = false

  constructor(
    private readonly net: Network,
    readonly name: string,
  ) {}

  attach(room: SealedLogRoom): TransportAttachment {
    if (this.closed) throw new LoopbackError(`transport ${this.name} is closed`)
    if (this.attachments.has(room.roomId)) {
      throw new LoopbackError(`transport ${this.name} already has room ${room.roomId} attached`)
    }
    if (room.awareness.doc !== room.doc) throw new LoopbackError('awareness belongs to another doc')
    const attachment = this.net.attach(this, room)
    this.attachments.set(room.roomId, attachment)
    return attachment
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    for (const attachment of [...this.attachments.values()]) attachment.detach()
  }
}

class Network implements LoopbackNetwork {
  readonly layout: LoopbackLayout
  readonly seed: number
  private readonly random: prng.PRNG
  private currentFaults: Required<LoopbackFaults>
  private readonly counters: LoopbackStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    lost: 0,
    bytesSent: 0,
    bytesDelivered: 0,
    resyncs: 0,
    rejected: 0,
  }
  private readonly tap = new Emitter<LoopbackNetworkEvents>()
  /** Events ordered by (virtual time, PRNG tie, sequence). */
  private readonly queue = new MinHeap<QueuedEvent>(before)
  private clock = 0
  private seq = 0
  private pumping = false
  private idleWaiters: Array<() => void> = []
  private transportCount = 0
  private readonly transports = new Set<TransportImpl>()
  /** Attachments per room id. */
  private readonly rooms = new Map<string, Set<Attachment>>()
  private readonly hubs = new Map<string, HubRoom>()
  private readonly links = new Set<Link>()
  private readonly offline = new Set<TransportImpl>()
  /** Partition group per transport; `undefined` when the network is whole. */
  private groups: Map<TransportImpl, number> | undefined
  private refreshing = false
  private refreshAgain = false
  private destroyed = false

  constructor(options: LoopbackOptions) {
    this.seed = options.seed ?? DEFAULT_SEED
    if (!Number.isInteger(this.seed)) throw new LoopbackError(`seed must be an integer, got ${this.seed}`)
    this.layout = options.layout ?? 'hub'
    if (this.layout !== 'hub' && this.layout !== 'mesh') throw new LoopbackError(`unknown layout ${String(this.layout)}`)
    this.random = prng.create(this.seed)
    this.currentFaults = normalizeFaults(options.faults ?? {})
  }

  get now(): number {
    return this.clock
  }

  get faults(): Readonly<Required<LoopbackFaults>> {
    return { ...this.currentFaults }
  }

  get stats(): LoopbackStats {
    return { ...this.counters }
  }

  // ——— public controls

  transport(options: { name?: string } = {}): LoopbackTransport {
    if (this.destroyed) throw new LoopbackError('the loopback network was destroyed')
    const transport = new TransportImpl(this, options.name ?? `loopback-${++this.transportCount}`)
    this.transports.add(transport)
    return transport
  }

  partition(...groups: Transport[][]): void {
    const assigned = new Map<TransportImpl, number>()
    groups.forEach((group, index) => {
      for (const transport of group) {
        const own = this.own(transport)
        if (assigned.has(own)) throw new LoopbackError(`transport ${own.name} is in two partition groups`)
        assigned.set(own, index)
      }
    })
    this.groups = assigned
    this.refresh()
  }

  heal(): void {
    this.groups = undefined
    this.offline.clear()
    this.refresh()
    this.resync()
  }

  disconnect(transport: Transport): void {
    this.offline.add(this.own(transport))
    this.refresh()
  }

  reconnect(transport: Transport): void {
    this.offline.delete(this.own(transport))
    this.refresh()
  }

  setFaults(faults: LoopbackFaults): void {
    this.currentFaults = normalizeFaults(faults)
  }

  resync(): void {
    for (const link of this.links) if (link.open) this.resyncLink(link)
  }

  async settle(): Promise<void> {
    let rounds = 0
    for (;;) {
      await this.whenIdle()
      // An attach or a listener may have queued more work while we waited.
      if (this.pumping || this.queue.size > 0 || this.hasUnstarted()) {
        await Promise.resolve()
        continue
      }
      const stale = [...this.links].filter((link) => link.open && divergence(link) !== undefined)
      if (stale.length === 0) return
      if (++rounds > MAX_SETTLE_ROUNDS) {
        const reasons = stale.map((link) => `${link.a.name}↔${link.b.name} in ${link.a.roomId}: ${divergence(link)}`)
        throw new LoopbackError(
          `settle: still diverging after ${MAX_SETTLE_ROUNDS} resync rounds (seed ${this.seed}): ${reasons.join('; ')}`,
        )
      }
      for (const link of stale) this.resyncLink(link)
    }
  }

  on<E extends keyof LoopbackNetworkEvents>(event: E, listener: LoopbackNetworkEvents[E]): () => void {
    return this.tap.on(event, listener)
  }

  relayDoc(roomId: string): Y.Doc | undefined {
    return this.hubs.get(roomId)?.doc
  }

  destroy(): void {
    this.destroyed = true
    for (const transport of this.transports) transport.close()
    for (const hub of this.hubs.values()) hub.destroy()
    this.hubs.clear()
    this.queue.clear()
    this.tap.clear()
  }

  // ——— attach / detach (called by transports and attachments)

  attach(transport: TransportImpl, room: SealedLogRoom): Attachment {
    const attachment = new Attachment(this, transport, room)
    const peers = this.roomSet(room.roomId)
    if (this.layout === 'hub') {
      this.addLink(attachment, this.hub(room.roomId))
    } else {
      for (const peer of peers) this.addLink(peer, attachment)
    }
    peers.add(attachment)
    // Listeners are added after attach() returns; start (and announce 'connecting') after that.
    queueMicrotask(() => {
      if (attachment.detached) return
      attachment.started = true
      attachment.announceConnecting()
      this.refresh()
    })
    return attachment
  }

  detach(attachment: Attachment): void {
    attachment.detached = true
    attachment.joined = false
    attachment.joinToken++
    for (const link of [...attachment.links]) {
      if (link.open) this.closeLink(link)
      this.removeLink(link)
    }
    attachment.stopListening()
    this.rooms.get(attachment.roomId)?.delete(attachment)
    attachment.transport.attachments.delete(attachment.roomId)
    attachment.setStatus('disconnected')
    this.refresh()
  }

  countRejected(): void {
    this.counters.rejected++
  }

  // ——— topology

  private own(transport: Transport): TransportImpl {
    if (transport instanceof TransportImpl && this.transports.has(transport)) return transport
    throw new LoopbackError(`transport ${transport.kind} does not belong to this loopback network`)
  }

  private roomSet(roomId: string): Set<Attachment> {
    let set = this.rooms.get(roomId)
    if (!set) this.rooms.set(roomId, (set = new Set()))
    return set
  }

  private hub(roomId: string): HubRoom {
    let hub = this.hubs.get(roomId)
    if (!hub) this.hubs.set(roomId, (hub = new HubRoom(this, roomId)))
    return hub
  }

  private addLink(a: Endpoint, b: Endpoint): void {
    const link = new Link(a, b)
    a.links.add(link)
    b.links.add(link)
    this.links.add(link)
  }

  private removeLink(link: Link): void {
    link.a.links.delete(link)
    link.b.links.delete(link)
    this.links.delete(link)
  }

  private group(transport: TransportImpl): number {
    return this.groups ? (this.groups.get(transport) ?? REST_GROUP) : HUB_GROUP
  }

  private online(end: Endpoint): boolean {
    return !(end instanceof Attachment) || !this.offline.has(end.transport)
  }

  private groupOf(end: Endpoint): number {
    return end instanceof Attachment ? this.group(end.transport) : HUB_GROUP
  }

  /** Whether the network lets the two ends of `link` talk (partitions, offline devices). */
  private reachableLink(link: Link): boolean {
    return this.online(link.a) && this.online(link.b) && this.groupOf(link.a) === this.groupOf(link.b)
  }

  /** Whether an attachment can reach anyone: its relay, or one of its peers (or it has none yet). */
  private reachable(attachment: Attachment): boolean {
    if (!this.online(attachment)) return false
    if (attachment.links.size === 0) return this.layout === 'mesh'
    for (const link of attachment.links) if (this.reachableLink(link)) return true
    return false
  }

  private *attachments(): Iterable<Attachment> {
    for (const set of this.rooms.values()) yield* set
  }

  private hasUnstarted(): boolean {
    for (const attachment of this.attachments()) if (!attachment.started) return true
    return false
  }

  /**
   * Bring links and statuses in line with the current partition / offline state. Called after
   * every topology change; idempotent. Status listeners may change the topology again (detach in
   * a listener, say): such nested calls are folded into another pass instead of interleaving.
   */
  private refresh(): void {
    if (this.refreshing) {
      this.refreshAgain = true
      return
    }
    this.refreshing = true
    try {
      do {
        this.refreshAgain = false
        this.refreshOnce()
      } while (this.refreshAgain)
    } finally {
      this.refreshing = false
    }
  }

  private refreshOnce(): void {
    const attachments = [...this.attachments()]
    for (const attachment of attachments) {
      if (this.reachable(attachment)) continue
      attachment.joined = false
      attachment.joinScheduled = false
      attachment.joinToken++
    }
    const opened: Link[] = []
    for (const link of this.links) {
      const shouldOpen = this.reachableLink(link) && link.a.joined && link.b.joined
      if (shouldOpen && !link.open) {
        this.openLink(link)
        opened.push(link)
      } else if (!shouldOpen && link.open) {
        this.closeLink(link)
      }
    }
    for (const attachment of attachments) if (attachment.started) this.updateStatus(attachment)
    for (const link of opened) this.handshake(link)
    for (const attachment of attachments) this.checkSynced(attachment)
  }

  private updateStatus(attachment: Attachment): void {
    if (!this.reachable(attachment)) {
      attachment.setStatus('disconnected')
      return
    }
    if (attachment.status === 'disconnected') attachment.setStatus('connecting')
    if (!attachment.joined && !attachment.joinScheduled) this.scheduleJoin(attachment)
  }

  /** Connection set-up takes a (faulty) network delay too, like a WebSocket handshake. */
  private scheduleJoin(attachment: Attachment): void {
    const token = ++attachment.joinToken
    attachment.joinScheduled = true
    this.schedule(this.delay(), () => {
      if (attachment.joinToken !== token || attachment.detached) return
      attachment.joinScheduled = false
      attachment.joined = true
      attachment.setStatus('connected')
      this.refresh()
    })
  }

  /** y-websocket semantics: 'synced' once a sync step 2 arrived on every open link; sticky. */
  private checkSynced(end: Endpoint): void {
    if (!(end instanceof Attachment) || !end.joined || end.status !== 'connected') return
    for (const link of end.links) if (link.open && !link.gotStep2.has(end)) return
    end.setStatus('synced')
  }

  private openLink(link: Link): void {
    link.open = true
    link.generation++
    link.gotStep2.clear()
    link.lastKey.clear()
  }

  /** Like a closed socket: in-flight frames are discarded, each side forgets the other's presence. */
  private closeLink(link: Link): void {
    link.open = false
    link.generation++
    link.gotStep2.clear()
    for (const end of [link.a, link.b]) {
      const learned = [...end.sources].filter(([, source]) => source === link).map(([id]) => id)
      const present = learned.filter((id) => end.awareness.states.has(id))
      if (present.length > 0) awarenessProtocol.removeAwarenessStates(end.awareness, present, link)
      if (end instanceof HubRoom) continue
      // A device also forgets the clocks, or it would ignore the same states re-sent on reconnect
      // (the stock y-websocket client waits for the 15 s renewal instead). The relay keeps them:
      // it must be able to re-send these removals to peers that missed them.
      for (const id of learned) {
        end.awareness.meta.delete(id)
        end.sources.delete(id)
      }
    }
  }

  /** Both ends send sync step 1 and their presence, as a y-websocket client and server do on open. */
  private handshake(link: Link): void {
    for (const end of [link.a, link.b]) {
      if (!link.open) return
      // Re-announce our own presence with a fresh clock: the other side may have removed it when
      // the link dropped, and it ignores a state whose clock it has already seen (a new Awareness
      // even starts at clock 0, which every receiver ignores).
      const local = end instanceof Attachment ? end.awareness.getLocalState() : null
      if (local !== null) end.awareness.setLocalState(local)
      this.sendSyncStep1(link, end)
      const others = end.forwardedClients(link).filter((id) => local === null || id !== end.awareness.clientID)
      this.sendAwareness(link, end, others)
    }
  }

  private resyncLink(link: Link): void {
    this.counters.resyncs++
    for (const end of [link.a, link.b]) {
      this.sendSyncStep1(link, end)
      this.sendAwareness(link, end, end.forwardedClients(link))
    }
  }

  // ——— traffic

  onDocUpdate(end: Endpoint, update: Uint8Array, origin: unknown): void {
    let frame: Uint8Array | undefined
    for (const link of end.links) {
      if (!link.open || !end.forwardsUpdate(link, origin)) continue
      frame ??= syncFrame((encoder) => syncProtocol.writeUpdate(encoder, update))
      this.send(link, end, frame, 'sync-update')
    }
  }

  onAwarenessUpdate(end: Endpoint, changes: AwarenessChanges, origin: unknown): void {
    const changed = [...changes.added, ...changes.updated, ...changes.removed]
    for (const id of changed) {
      if (id === end.awareness.clientID) continue
      // A local removal (e.g. the 30 s timeout) keeps the source: announcing it would make peers
      // drop a client they may still see.
      if (origin instanceof Link) end.sources.set(id, origin)
      else if (!changes.removed.includes(id) || !end.sources.has(id)) end.sources.set(id, null)
    }
    for (const link of end.links) {
      if (!link.open) continue
      this.sendAwareness(
        link,
        end,
        changed.filter((id) => end.forwards(link, id)),
      )
    }
  }

  private sendSyncStep1(link: Link, from: Endpoint): void {
    this.send(
      link,
      from,
      syncFrame((encoder) => syncProtocol.writeSyncStep1(encoder, from.doc)),
      'sync-step-1',
    )
  }

  private sendAwareness(link: Link, from: Endpoint, clients: number[]): void {
    if (clients.length === 0) return
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Awareness)
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(from.awareness, clients))
    this.send(link, from, encoding.toUint8Array(encoder), 'awareness')
  }

  private send(link: Link, from: Endpoint, bytes: Uint8Array, type: LoopbackMessageType): void {
    if (!link.open) return
    const faults = this.currentFaults
    const dropped = this.chance(faults.drop)
    const duplicated = !dropped && this.chance(faults.duplicate)
    this.counters.sent++
    this.counters.bytesSent += bytes.length
    const message: LoopbackMessage = {
      roomId: from.roomId,
      from: from.name,
      to: link.other(from).name,
      bytes,
      type,
      at: this.clock,
      dropped,
      duplicated,
    }
    this.tap.emit('message', message)
    if (dropped) {
      this.counters.dropped++
      return
    }
    this.enqueueDelivery(link, from, message, this.chance(faults.reorder))
    if (duplicated) {
      this.counters.duplicated++
      this.enqueueDelivery(link, from, message, true)
    }
  }

  /** FIFO per link direction (like TCP) unless `unordered`, in which case it may overtake. */
  private enqueueDelivery(link: Link, from: Endpoint, message: LoopbackMessage, unordered: boolean): void {
    const generation = link.generation
    let key: QueueKey = { at: this.clock + this.delay(), tie: prng.real53(this.random), seq: ++this.seq }
    if (!unordered) {
      const last = link.lastKey.get(from)
      // Sharing the predecessor's time and tie, with a larger seq, sorts right after it.
      if (last && before(key, last)) key = { at: last.at, tie: last.tie, seq: key.seq }
      link.lastKey.set(from, key)
    }
    this.queue.push({ ...key, run: () => this.deliver(link, from, message, generation) })
    this.startPump()
  }

  private deliver(link: Link, from: Endpoint, message: LoopbackMessage, generation: number): void {
    if (!link.open || link.generation !== generation) {
      this.counters.lost++
      return
    }
    this.counters.delivered++
    this.counters.bytesDelivered += message.bytes.length
    this.tap.emit('delivery', { message, at: this.clock })
    this.receive(link, link.other(from), message.bytes)
  }

  /** Untrusted input: a bad frame is reported on the receiving end and never stops the network. */
  private receive(link: Link, end: Endpoint, bytes: Uint8Array): void {
    try {
      const decoder = decoding.createDecoder(bytes)
      const messageType = decoding.readVarUint(decoder)
      if (messageType === MessageType.Sync) this.receiveSync(link, end, decoder)
      else if (messageType === MessageType.Awareness) {
        awarenessProtocol.applyAwarenessUpdate(end.awareness, decoding.readVarUint8Array(decoder), link)
      } else end.reject('unknown-message', `unknown message type ${messageType}`)
    } catch (error) {
      end.reject('malformed-frame', error instanceof Error ? error.message : String(error))
    }
  }

  private receiveSync(link: Link, end: Endpoint, decoder: decoding.Decoder): void {
    const reply = encoding.createEncoder()
    encoding.writeVarUint(reply, MessageType.Sync)
    const syncType = syncProtocol.readSyncMessage(decoder, reply, end.doc, link, (error) =>
      end.reject('bad-update', error.message),
    )
    if (encoding.length(reply) > 1) this.send(link, end, encoding.toUint8Array(reply), 'sync-step-2')
    if (syncType === syncProtocol.messageYjsSyncStep2 && link.open) {
      link.gotStep2.add(end)
      this.checkSynced(end)
    }
  }

  // ——— pump

  private schedule(delay: number, run: () => void): void {
    this.queue.push({ at: this.clock + delay, tie: prng.real53(this.random), seq: ++this.seq, run })
    this.startPump()
  }

  private startPump(): void {
    if (this.pumping) return
    this.pumping = true
    // Never deliver inside the sender's call stack (it may be inside a Y transaction).
    setTimeout(() => void this.pump(), 0)
  }

  private async pump(): Promise<void> {
    let ran = 0
    for (let event = this.queue.pop(); event; event = this.queue.pop()) {
      this.clock = Math.max(this.clock, event.at)
      try {
        event.run()
      } catch (error) {
        console.error('contextsync: loopback delivery failed', error)
      }
      // A microtask between deliveries lets promise-based consumers react in between.
      await (++ran % EVENTS_PER_SLICE === 0 ? macrotask() : undefined)
    }
    this.pumping = false
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }

  private whenIdle(): Promise<void> {
    if (!this.pumping && this.queue.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  // ——— randomness

  private chance(probability: number): boolean {
    return probability > 0 && prng.real53(this.random) < probability
  }

  private delay(): number {
    const { minDelay, maxDelay } = this.currentFaults
    return minDelay === maxDelay ? minDelay : prng.uint53(this.random, minDelay, maxDelay)
  }
}

function normalizeFaults(faults: LoopbackFaults): Required<LoopbackFaults> {
  const result = { ...NO_FAULTS, ...faults }
  for (const name of ['reorder', 'duplicate', 'drop'] as const) {
    const p = result[name]
    if (!(p >= 0 && p <= 1)) throw new LoopbackError(`faults.${name} must be a probability in [0, 1], got ${p}`)
  }
  const { minDelay, maxDelay } = result
  if (!Number.isInteger(minDelay) || !Number.isInteger(maxDelay) || minDelay < 0 || maxDelay < minDelay) {
    throw new LoopbackError(`faults need integer delays 0 <= minDelay <= maxDelay, got ${minDelay}..${maxDelay}`)
  }
  return result
}

function syncFrame(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Sync)
  write(encoder)
  return encoding.toUint8Array(encoder)
}

/**
 * Why a link has not converged, or `undefined` when it has: both ends must hold the same outer
 * state and the same forwarded presence, and each device end must have received a sync step 2.
 */
function divergence(link: Link): string | undefined {
  const { a, b } = link
  if (!bytesEqual(outerState(a.doc), outerState(b.doc))) return 'outer state differs'
  if (!awarenessMatches(a, b, link)) return `${b.name} lacks presence from ${a.name}`
  if (!awarenessMatches(b, a, link)) return `${a.name} lacks presence from ${b.name}`
  for (const end of [a, b]) if (end instanceof Attachment && !link.gotStep2.has(end)) return `${end.name} awaits sync step 2`
  return undefined
}

/** Canonical bytes of a doc's state vector and delete set: equal iff both hold the same structs. */
function outerState(doc: Y.Doc): Uint8Array {
  return Y.encodeSnapshot(Y.snapshot(doc))
}

/** Whether `to` holds exactly the presence `from` announces over `link` (same clocks). */
function awarenessMatches(from: Endpoint, to: Endpoint, link: Link): boolean {
  for (const id of from.forwardedClients(link)) {
    const has = from.awareness.states.has(id)
    if (has !== to.awareness.states.has(id)) return false
    if (has && from.awareness.meta.get(id)?.clock !== to.awareness.meta.get(id)?.clock) return false
  }
  return true
}

function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0))
}
