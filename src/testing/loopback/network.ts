/**
 * The loopback network itself: topology (rooms, links, partitions, offline devices), the traffic
 * it carries as y-websocket frames, and the pump that delivers them in virtual time. The module
 * `index.ts` documents the behaviour; the ends it connects are in `endpoints.ts`.
 *
 * @module
 */
import type * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as prng from 'lib0/prng'
import { Emitter } from '../../util/emitter.js'
import { MessageType } from '../../wire/messages.js'
import type { SealedLogRoom, Transport } from '../../adapters/transport.js'
import {
  LoopbackError,
  type LoopbackFaults,
  type LoopbackLayout,
  type LoopbackMessage,
  type LoopbackMessageType,
  type LoopbackNetwork,
  type LoopbackNetworkEvents,
  type LoopbackOptions,
  type LoopbackStats,
  type LoopbackTransport,
} from './types.js'
import { Attachment, HubRoom, Link, TransportImpl, type AwarenessChanges, type Endpoint, type LoopbackHost } from './endpoints.js'
import { EventPump, before, type QueueKey } from './queue.js'
import { normalizeFaults } from './faults.js'
import { divergence } from './convergence.js'

/** The relay is always in the first partition group. */
const HUB_GROUP = 0
/** Transports missing from every partition group share this group. */
const REST_GROUP = -1
const DEFAULT_SEED = 0x5eed
const MAX_SETTLE_ROUNDS = 200


export class Network implements LoopbackHost, LoopbackNetwork {
  readonly layout: LoopbackLayout
  readonly seed: number
  private readonly random: prng.PRNG
  /** Events ordered by (virtual time, PRNG tie, sequence). */
  private readonly pump: EventPump
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
    if (!Number.isInteger(this.seed)) throw new LoopbackError(`seed must be an integer, got ${this.seed}`, 'config')
    this.layout = options.layout ?? 'hub'
    if (this.layout !== 'hub' && this.layout !== 'mesh') throw new LoopbackError(`unknown layout ${String(this.layout)}`, 'config')
    this.random = prng.create(this.seed)
    this.pump = new EventPump(this.random)
    this.currentFaults = normalizeFaults(options.faults ?? {})
  }

  get now(): number {
    return this.pump.now
  }

  get faults(): Readonly<Required<LoopbackFaults>> {
    return { ...this.currentFaults }
  }

  get stats(): LoopbackStats {
    return { ...this.counters }
  }

  // ——— public controls

  transport(options: { name?: string } = {}): LoopbackTransport {
    if (this.destroyed) throw new LoopbackError('the loopback network was destroyed', 'closed')
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
      await this.pump.whenIdle()
      // An attach or a listener may have queued more work while we waited.
      if (this.pump.busy || this.hasUnstarted()) {
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
    this.pump.clear()
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
    this.pump.schedule(this.delay(), () => {
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
      at: this.pump.now,
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
    // Draw order (delay, then tie) is part of what a seed reproduces.
    const at = this.pump.now + this.delay()
    let key: QueueKey = { at, tie: prng.real53(this.random), seq: this.pump.nextSeq() }
    if (!unordered) {
      const last = link.lastKey.get(from)
      // Sharing the predecessor's time and tie, with a larger seq, sorts right after it.
      if (last && before(key, last)) key = { at: last.at, tie: last.tie, seq: key.seq }
      link.lastKey.set(from, key)
    }
    this.pump.push({ ...key, run: () => this.deliver(link, from, message, generation) })
  }

  private deliver(link: Link, from: Endpoint, message: LoopbackMessage, generation: number): void {
    if (!link.open || link.generation !== generation) {
      this.counters.lost++
      return
    }
    this.counters.delivered++
    this.counters.bytesDelivered += message.bytes.length
    this.tap.emit('delivery', { message, at: this.pump.now })
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

  // ——— randomness

  private chance(probability: number): boolean {
    return probability > 0 && prng.real53(this.random) < probability
  }

  private delay(): number {
    const { minDelay, maxDelay } = this.currentFaults
    return minDelay === maxDelay ? minDelay : prng.uint53(this.random, minDelay, maxDelay)
  }
}

function syncFrame(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Sync)
  write(encoder)
  return encoding.toUint8Array(encoder)
}

