/**
 * The room layer of the link, shared by both ends: the link transport on a device and the link
 * hub on the phone are each a *node* holding rooms (an outer doc and its awareness) and sessions
 * (one per channel), and speak the same messages (`link-messages.ts`) — OPEN/ACCEPT/REFUSE/CLOSE
 * to bind a room on a session, then y-protocols sync and awareness frames exactly as a
 * y-websocket client and the relay exchange them, validated with the relay's own parser.
 *
 * Each room bound on a session is a *binding*. On binding, both ends send sync step 1 (their state
 * vector) and answer the other's with sync step 2 — only the structs the other lacks — so
 * resuming after a dropped channel costs the difference, never the whole document. Every change
 * to a room's doc or awareness is forwarded to all its other bindings (a hub fans out; a device
 * in a mesh floods, which Yjs and awareness clocks make idempotent). Updates and awareness are
 * held per binding until the session's radio window flushes, and the updates held for one room
 * are merged into a single Yjs update then (`Y.mergeUpdates`), so a burst of writes costs one
 * message.
 *
 * When both ends open the same room at once, the initiator's OPEN wins: the responder withdraws
 * its own. A device asked to open a room it does not hold answers `ABSENT` and remembers the
 * offer, accepting it if it attaches the room later.
 *
 * The objects the node works on (endpoints, bindings, peers, connections) are `link-rooms.ts`;
 * presence frames and the hub's awareness rule are `link-presence.ts`.
 *
 * @module
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import type { Awareness } from 'y-protocols/awareness'
import { CloseCode } from '../wire/close-codes.js'
import { parseClientMessage } from '../relay/protocol.js'
import { MessageType } from '../wire/messages.js'
import { SYNC_FRAME_BYTES, SYNC_FRAME_OVERHEAD, syncStep2Frames, updateFrames } from '../wire/sync-frames.js'
import { cutState, cutTransaction } from '../crdt/cut-state.js'
import type { LinkChannel } from './link-channel.js'
import { LinkError } from './link-errors.js'
import type { LinkRole } from './link-frames.js'
import { encodeMessage, parseMessage, type LinkMessage, type RoomRef } from './link-messages.js'
import { LinkSession, type LinkSessionOptions } from './link-session.js'
import { awarenessFrame, guardedAwareness, isPresence } from './link-presence.js'
import {
  Binding,
  connectionOf,
  LinkPeer,
  RoomEndpoint,
  type AdmitResult,
  type AwarenessChanges,
  type LinkConnection,
  type LinkNodeHooks,
} from './link-rooms.js'

export {
  Binding,
  LinkPeer,
  RoomEndpoint,
  type AdmitResult,
  type BindingState,
  type LinkConnection,
  type LinkConnectionStats,
  type LinkNodeHooks,
} from './link-rooms.js'

/**
 * Link-only refusal code: "I do not hold this room (yet)". Not an error: the peer keeps the offer
 * and accepts it if it attaches the room later. Outside the relay's close-code range on purpose.
 */
export const ABSENT_CODE = 4904

/** Refusals after which a fresh token may help: the opener retries after a backoff. */
const RETRY_CODES: ReadonlySet<number> = new Set([CloseCode.TokenExpired, CloseCode.TokenReplayed, CloseCode.RateLimited])
/** Longest wait before re-opening a refused room with a fresh token. */
const MAX_REOPEN_BACKOFF_MS = 30_000

/** The shared engine of a device node or a hub node. */
export class LinkNode {
  readonly peers = new Set<LinkPeer>()
  readonly endpoints = new Map<string, RoomEndpoint>()

  constructor(
    private readonly sessionOptions: LinkSessionOptions,
    private readonly hooks: LinkNodeHooks,
    /** Devices open their rooms on every session; a hub only answers. */
    private readonly opensRooms: boolean,
  ) {}

  // ——— sessions

  /** Start a session on `channel`. */
  connect(channel: LinkChannel, role: LinkRole): LinkConnection {
    const peer = new LinkPeer()
    peer.session = new LinkSession(channel, role, this.sessionOptions, {
      ready: () => undefined,
      message: (bytes) => this.onMessage(peer, bytes),
      collect: () => this.collect(peer),
      resync: () => this.resync(peer),
      error: (error) => this.hooks.error(error, undefined),
      closed: () => this.onSessionClosed(peer),
    })
    if (peer.session.closed) return connectionOf(peer)
    this.peers.add(peer)
    if (this.opensRooms) for (const endpoint of this.endpoints.values()) this.open(peer, endpoint)
    return connectionOf(peer)
  }

  private onSessionClosed(peer: LinkPeer): void {
    if (!this.peers.delete(peer)) return
    const touched = new Set<RoomEndpoint>()
    for (const binding of [...peer.bindings()]) {
      touched.add(binding.endpoint)
      this.unbind(binding)
    }
    for (const endpoint of touched) this.hooks.changed(endpoint)
  }

  // ——— rooms

  /** Create an endpoint for a room; the caller decides when to open it. */
  endpoint(roomId: string, doc: Y.Doc, awareness: Awareness, hub: boolean): RoomEndpoint {
    const endpoint = new RoomEndpoint(
      roomId,
      doc,
      awareness,
      hub,
      (room, update, origin) => this.onDocUpdate(room, update, origin),
      (room, changes, origin) => this.onAwarenessUpdate(room, changes, origin),
    )
    this.endpoints.set(roomId, endpoint)
    return endpoint
  }

  /** Open an attached room on every live session. */
  openEverywhere(endpoint: RoomEndpoint): void {
    for (const peer of this.peers) this.open(peer, endpoint)
  }

  /** Unbind a room from every session (CLOSE to each peer) and forget it. */
  remove(endpoint: RoomEndpoint): void {
    for (const binding of [...endpoint.bindings]) {
      if (binding.state === 'open' || binding.state === 'opening') binding.peer.session.send(encodeMessage({ kind: 'close', ref: binding.ref }), true, true)
      this.unbind(binding)
    }
    for (const peer of this.peers) {
      for (const [roomId] of peer.offers) if (roomId === endpoint.roomId) peer.offers.delete(roomId)
    }
    endpoint.release()
    this.endpoints.delete(endpoint.roomId)
  }

  /** Close every session and forget every room. */
  closeAll(): void {
    for (const peer of [...this.peers]) peer.session.close()
    for (const endpoint of [...this.endpoints.values()]) {
      endpoint.release()
      this.endpoints.delete(endpoint.roomId)
    }
  }

  /** Bindings of `endpoint` on live sessions. */
  bindingsOf(endpoint: RoomEndpoint): Binding[] {
    return [...endpoint.bindings].filter((binding) => this.peers.has(binding.peer))
  }

  private open(peer: LinkPeer, endpoint: RoomEndpoint): void {
    if (peer.bindingOf(endpoint)) return
    const offered = peer.offers.get(endpoint.roomId)
    if (offered !== undefined) {
      // The peer asked for this room before we held it: accept its offer rather than open anew.
      peer.offers.delete(endpoint.roomId)
      const binding = this.bind(peer, endpoint, offered, false)
      peer.session.send(encodeMessage({ kind: 'accept', ref: binding.ref }), true, true)
      this.startSync(binding)
      return
    }
    const binding = this.bind(peer, endpoint, peer.nextNum++, true)
    this.hooks.changed(endpoint)
    void this.sendOpen(binding)
  }

  private async sendOpen(binding: Binding): Promise<void> {
    let token: string
    try {
      token = await this.hooks.tokenFor(binding.endpoint)
    } catch (error) {
      if (!this.isLive(binding)) return
      binding.state = 'refused'
      this.hooks.error(
        new LinkError('refused', `could not get a token for the room: ${error instanceof Error ? error.message : 'unknown error'}`),
        binding.endpoint.roomId,
      )
      this.hooks.changed(binding.endpoint)
      return
    }
    if (!this.isLive(binding) || binding.state === 'open') return
    binding.peer.session.send(
      encodeMessage({ kind: 'open', ref: binding.ref, roomId: binding.endpoint.roomId, token }),
      true,
      true,
    )
  }

  private isLive(binding: Binding): boolean {
    return this.peers.has(binding.peer) && binding.endpoint.bindings.has(binding)
  }

  private bind(peer: LinkPeer, endpoint: RoomEndpoint, num: number, mine: boolean): Binding {
    const binding = new Binding(peer, endpoint, num, mine)
    if (!mine) binding.state = 'open'
    ;(mine ? peer.mine : peer.theirs).set(num, binding)
    endpoint.bindings.add(binding)
    return binding
  }

  /** Forget a binding: its held data, and the presence learned over it (as a relay does on close). */
  private unbind(binding: Binding): void {
    const { peer, endpoint } = binding
    if (binding.reopenTimer !== undefined) this.sessionOptions.clock.clearTimer(binding.reopenTimer)
    if (binding.endTimer !== undefined) this.sessionOptions.clock.clearTimer(binding.endTimer)
    ;(binding.mine ? peer.mine : peer.theirs).delete(binding.num)
    if (!endpoint.bindings.delete(binding)) return
    binding.updates = []
    binding.awarenessIds.clear()
    const learned = [...endpoint.sources].filter(([, source]) => source === binding).map(([id]) => id)
    const present = learned.filter((id) => endpoint.awareness.states.has(id))
    if (present.length > 0) awarenessProtocol.removeAwarenessStates(endpoint.awareness, present, binding)
    for (const id of learned) {
      // Nobody controls these client ids any more (the device may come back on another channel).
      endpoint.sources.delete(id)
      // A device forgets the clocks too, or it would ignore the same states re-sent on reconnect;
      // a hub keeps them, to re-send the removals to peers that missed them.
      if (!endpoint.hub) endpoint.awareness.meta.delete(id)
    }
  }

  /** Both ends send their state vector and presence, as a y-websocket client and server do on open. */
  private startSync(binding: Binding): void {
    binding.state = 'open'
    binding.gotStep2 = false
    const { endpoint } = binding
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeSyncStep1(encoder, endpoint.doc)
    this.sendY(binding, encoding.toUint8Array(encoder), true)
    const awareness = endpoint.awareness
    const local = endpoint.hub ? null : awareness.getLocalState()
    // Re-announce our own presence with a fresh clock: the peer may have removed it when an
    // earlier channel dropped, and it ignores a state whose clock it has already seen.
    if (local !== null) awareness.setLocalState(local)
    if (endpoint.hub) {
      for (const id of awareness.states.keys()) if (endpoint.sources.get(id) !== binding) binding.awarenessIds.add(id)
    }
    if (binding.awarenessIds.size > 0) binding.peer.session.schedule()
    this.hooks.changed(endpoint)
  }

  private sendY(binding: Binding, frame: Uint8Array, urgent: boolean): void {
    binding.peer.session.send(encodeMessage({ kind: 'y', ref: binding.ref, frame }), urgent, isPresence(frame))
  }

  // ——— outgoing changes

  private onDocUpdate(endpoint: RoomEndpoint, update: Uint8Array, origin: unknown): void {
    for (const binding of endpoint.bindings) {
      if (binding === origin || binding.state !== 'open') continue
      binding.updates.push(update)
      binding.peer.session.schedule()
    }
  }

  private onAwarenessUpdate(endpoint: RoomEndpoint, changes: AwarenessChanges, origin: unknown): void {
    const own = endpoint.awareness.clientID
    const fromPeer = origin instanceof Binding ? origin : undefined
    const changed = [...changes.added, ...changes.updated, ...changes.removed]
    for (const id of changed) {
      if (id === own) continue
      if (fromPeer) endpoint.sources.set(id, fromPeer)
      else if (!changes.removed.includes(id) || !endpoint.sources.has(id)) endpoint.sources.set(id, null)
    }
    // A device announces only its own presence: flooding others' would make a peer attribute them
    // to the wrong channel and drop them when that channel closes. A hub forwards everyone's,
    // except a local removal of someone else's state (the 30 s timeout): peers may still see that
    // client. Removals a hub learned from a peer are encoded now, as they happen.
    if (!endpoint.hub && !changed.includes(own)) return
    const forwarded = endpoint.hub
      ? changed.filter((id) => id === own || fromPeer !== undefined || !changes.removed.includes(id))
      : [own]
    const removedByPeer = endpoint.hub && fromPeer ? changes.removed : []
    for (const binding of endpoint.bindings) {
      if (binding === origin || binding.state !== 'open') continue
      const eager = removedByPeer.filter((id) => endpoint.awareness.meta.has(id))
      if (eager.length > 0) this.sendY(binding, awarenessFrame(endpoint.awareness, eager), false)
      for (const id of forwarded) if (!removedByPeer.includes(id)) binding.awarenessIds.add(id)
      if (binding.awarenessIds.size > 0) binding.peer.session.schedule()
    }
  }

  /** At a flush: one merged update per room (bulk lane), and the awareness clients that changed (priority lane). */
  private collect(peer: LinkPeer): { bulk: Uint8Array[]; priority: Uint8Array[] } {
    const out: Uint8Array[] = []
    const priority: Uint8Array[] = []
    for (const binding of peer.bindings()) {
      if (binding.state !== 'open') continue
      if (binding.updates.length > 0) {
        const updates = binding.updates
        binding.updates = []
        const update = updates.length === 1 ? updates[0]! : Y.mergeUpdates(updates)
        // A large flush (an import, a compaction) goes in frames under the budget, so no message
        // passes the peer's reassembly limit (WIRE.md, "Frame sizes").
        const budget = SYNC_FRAME_BYTES - SYNC_FRAME_OVERHEAD
        const pieces = update.length <= budget ? { updates: [update], splittable: [true] } : cutTransaction(binding.endpoint.doc, update, budget)
        for (const frame of updateFrames(pieces).frames) out.push(encodeMessage({ kind: 'y', ref: binding.ref, frame }))
      }
      if (binding.awarenessIds.size > 0) {
        const awareness = binding.endpoint.awareness
        const ids = [...binding.awarenessIds].filter((id) => awareness.meta.has(id))
        binding.awarenessIds.clear()
        if (ids.length > 0) priority.push(encodeMessage({ kind: 'y', ref: binding.ref, frame: awarenessFrame(awareness, ids) }))
      }
    }
    return { bulk: out, priority }
  }

  /** After a gap: re-send what the peer may have missed and ask for what we may have missed. */
  private resync(peer: LinkPeer): void {
    for (const binding of [...peer.bindings()]) {
      if (binding.mine && binding.state === 'opening') void this.sendOpen(binding)
      else if (binding.state === 'open') {
        if (!binding.mine) peer.session.send(encodeMessage({ kind: 'accept', ref: binding.ref }), true, true)
        this.startSync(binding)
      }
    }
  }

  // ——— incoming messages

  private onMessage(peer: LinkPeer, bytes: Uint8Array): void {
    let message: LinkMessage
    try {
      message = parseMessage(bytes)
    } catch (error) {
      this.hooks.error(error instanceof LinkError ? error : new LinkError('malformed', 'unreadable message'), undefined)
      return
    }
    if (message.kind === 'open') {
      void this.onOpen(peer, message.ref.num, message.roomId, message.token)
      return
    }
    // A reference the sender chose is in the peer's number space; otherwise in ours.
    const binding = (message.ref.senderChose ? peer.theirs : peer.mine).get(message.ref.num)
    switch (message.kind) {
      case 'accept':
        if (binding && binding.state !== 'open') this.startSync(binding)
        else if (!binding) this.unknown(peer, message.ref)
        return
      case 'refuse':
        if (binding) this.onRefuse(binding, message.code, message.reason)
        return
      case 'close':
        if (message.ref.senderChose) {
          for (const [roomId, num] of peer.offers) if (num === message.ref.num) peer.offers.delete(roomId)
          peer.admitting.delete(message.ref.num)
        }
        if (!binding) return
        if (binding.mine && this.opensRooms) {
          // The peer let go of a room we still hold: keep the number, wait for it to come back.
          const endpoint = binding.endpoint
          this.unbind(binding)
          const absent = this.bind(peer, endpoint, binding.num, true)
          absent.state = 'absent'
          this.hooks.changed(endpoint)
        } else {
          const endpoint = binding.endpoint
          this.unbind(binding)
          this.hooks.changed(endpoint)
        }
        return
      case 'y':
        if (!binding || binding.state !== 'open') {
          if (!binding && !(message.ref.senderChose && peer.admitting.has(message.ref.num))) this.unknown(peer, message.ref)
          return
        }
        this.onY(binding, message.frame)
        return
    }
  }

  /** A message for a room we do not know here: tell the peer, so it drops its side. */
  private unknown(peer: LinkPeer, ref: RoomRef): void {
    this.hooks.error(new LinkError('unknown-room', `message for room reference ${ref.num} that is not open here`), undefined)
    peer.session.send(encodeMessage({ kind: 'close', ref: { num: ref.num, senderChose: !ref.senderChose } }), false, true)
  }

  private async onOpen(peer: LinkPeer, num: number, roomId: string, token: string): Promise<void> {
    const existing = peer.theirs.get(num)
    if (existing) {
      // A repeated OPEN (after a resync): answer again, the token is not checked twice.
      if (existing.endpoint.roomId === roomId) peer.session.send(encodeMessage({ kind: 'accept', ref: existing.ref }), true, true)
      return
    }
    if (peer.admitting.has(num)) return
    const endpoint = this.endpoints.get(roomId)
    const own = endpoint ? peer.bindingOf(endpoint) : undefined
    if (own) {
      // Both ends opened the same room: the initiator's OPEN wins.
      if (peer.session.role === 'initiator' && own.state === 'opening') return
      this.unbind(own)
    }
    peer.admitting.add(num)
    let result: AdmitResult
    try {
      result = await this.hooks.admit(peer, roomId, token)
    } catch {
      result = { refuse: CloseCode.InternalError, reason: 'could not admit the room' }
    }
    if (!peer.admitting.delete(num) || !this.peers.has(peer)) return
    const ref: RoomRef = { num, senderChose: false }
    if ('refuse' in result) {
      peer.session.send(encodeMessage({ kind: 'refuse', ref, code: result.refuse, reason: result.reason }), true, true)
      return
    }
    if ('absent' in result) {
      peer.offers.set(roomId, num)
      peer.session.send(encodeMessage({ kind: 'refuse', ref, code: ABSENT_CODE, reason: 'room not held here' }), true, true)
      return
    }
    const again = peer.bindingOf(result.endpoint)
    if (again) this.unbind(again)
    const binding = this.bind(peer, result.endpoint, num, false)
    peer.session.send(encodeMessage({ kind: 'accept', ref: binding.ref }), true, true)
    this.startSync(binding)
    if (result.endsInMs !== undefined) {
      binding.endTimer = this.sessionOptions.clock.setTimer(() => {
        binding.endTimer = undefined
        if (!this.isLive(binding)) return
        // As the relay closes a connection whose temporary access ended: nothing more either way.
        peer.session.send(encodeMessage({ kind: 'refuse', ref: binding.ref, code: CloseCode.Forbidden, reason: 'temporary access ended' }), true, true)
        const endpoint = binding.endpoint
        this.unbind(binding)
        this.hooks.changed(endpoint)
      }, Math.max(0, result.endsInMs))
    }
  }

  private onRefuse(binding: Binding, code: number, reason: string): void {
    if (!binding.mine) return
    if (binding.state === 'open') {
      // The peer ended an open room (temporary access ended): drop what was learned over it.
      if (code === ABSENT_CODE) return
      const { peer, endpoint, num } = binding
      this.unbind(binding)
      binding = this.bind(peer, endpoint, num, true)
    }
    const { endpoint } = binding
    if (code === ABSENT_CODE) {
      binding.state = 'absent'
      this.hooks.changed(endpoint)
      return
    }
    binding.state = 'refused'
    this.hooks.error(new LinkError('refused', `the peer refused the room: ${code} ${reason}`, code), endpoint.roomId)
    this.hooks.changed(endpoint)
    if (RETRY_CODES.has(code) && binding.reopenTimer === undefined) {
      const delay = Math.min(this.sessionOptions.retryMs * 2 ** binding.reopenAttempts++, MAX_REOPEN_BACKOFF_MS)
      binding.reopenTimer = this.sessionOptions.clock.setTimer(() => {
        binding.reopenTimer = undefined
        if (!this.isLive(binding) || binding.state !== 'refused') return
        binding.state = 'opening'
        this.hooks.changed(endpoint)
        void this.sendOpen(binding)
      }, delay)
    }
  }

  private guardAwareness(binding: Binding, update: Uint8Array): Uint8Array | undefined {
    try {
      return guardedAwareness(this.hooks, binding, update)
    } catch {
      this.hooks.error(new LinkError('malformed-update', 'an awareness update that does not decode; dropped'), binding.endpoint.roomId)
      return undefined
    }
  }

  private onY(binding: Binding, frame: Uint8Array): void {
    const { endpoint } = binding
    const parsed = parseClientMessage(frame)
    if (!parsed) {
      this.hooks.error(new LinkError('malformed-update', 'a y-protocols frame that does not decode; dropped'), endpoint.roomId)
      return
    }
    try {
      switch (parsed.type) {
        case 'sync-step1': {
          const pieces = cutState(endpoint.doc, SYNC_FRAME_BYTES - SYNC_FRAME_OVERHEAD, parsed.stateVector)
          for (const frame of syncStep2Frames(pieces).frames) this.sendY(binding, frame, true)
          return
        }
        case 'sync-step2':
          Y.applyUpdate(endpoint.doc, parsed.update, binding)
          binding.gotStep2 = true
          this.hooks.changed(endpoint)
          return
        case 'sync-update':
          Y.applyUpdate(endpoint.doc, parsed.update, binding)
          return
        case 'awareness': {
          const update = endpoint.hub ? this.guardAwareness(binding, parsed.update) : parsed.update
          if (update) awarenessProtocol.applyAwarenessUpdate(endpoint.awareness, update, binding)
          return
        }
        case 'query-awareness': {
          const ids = [...endpoint.awareness.states.keys()].filter(
            (id) => (endpoint.hub || id === endpoint.awareness.clientID) && endpoint.sources.get(id) !== binding,
          )
          if (ids.length > 0) this.sendY(binding, awarenessFrame(endpoint.awareness, ids), false)
          return
        }
      }
    } catch {
      this.hooks.error(new LinkError('malformed-update', 'an update the room could not apply; dropped'), endpoint.roomId)
    }
  }
}

