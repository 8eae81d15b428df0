/**
 * `contextsync/link`: a {@link Transport} over any duplex message channel the host app supplies —
 * a BLE GATT characteristic pair, an L2CAP channel, a `MessagePort`, a WebSocket — carrying
 * y-protocols sync and awareness for several rooms at once (WIRE.md "Link frames").
 *
 * The host owns the radio: it calls {@link LinkTransport.connect} with a channel whenever a
 * connection comes up (to the phone's {@link linkServer}, or to another device in a mesh), and
 * the transport opens every attached room on it. When the channel drops, nothing is lost: writes
 * stay in the outer docs, and on the next channel each room resumes from state vectors — only
 * what the other side lacks crosses the link.
 *
 * Power: with `radioWindowMs` set, updates and presence are held and sent in one burst per
 * window (the updates of a room merged into one), so the radio wakes once per window instead of
 * once per write. Handshakes and sync steps never wait.
 *
 * Status (y-websocket semantics): `'disconnected'` with no live channel (or every peer refused
 * the room), `'connecting'` while an OPEN is unanswered, `'connected'` once answered, `'synced'`
 * once a sync step 2 arrived on every channel the room is bound on — vacuously true when no peer
 * holds the room yet (a mesh) — and it stays `'synced'` while further peers join.
 *
 * @module
 */
import type { Awareness } from 'y-protocols/awareness'
import type * as Y from 'yjs'
import { Emitter } from '../util/emitter.js'
import { realClock, type LinkChannel, type LinkClock } from './link-channel.js'
import { LinkError } from './link-errors.js'
import type { LinkRole } from './link-frames.js'
import { LinkNode, type LinkConnection, type RoomEndpoint } from './link-node.js'
import { AttachmentBase } from './attachment-base.js'
import { resolveSessionOptions, type LinkSessionOptions } from './link-session.js'
import type { SealedLogRoom, Transport, TransportStatus } from './transport.js'

/** Options shared by {@link linkTransport} and `linkServer`. */
export interface LinkOptions {
  /** Hold outgoing updates and presence this long and send them in one burst (ms); 0 = at once. Default 0. */
  radioWindowMs?: number
  /**
   * Send held data at the next connection event the radio attends anyway, when the channel
   * reports those (`LinkChannel.nextRadioEvent`: a BLE peripheral's radio notification), instead
   * of waking the radio at the end of the radio window, which stays the latest moment. Acks and
   * credit grants ride those events too. Costs nothing in latency beyond the wait for that event
   * (at most (1 + peripheral latency) × connection interval). Default false.
   */
  rideRadioEvents?: boolean
  /** Probe a silent peer after this long (ms) and drop the channel after three times it; 0 disables. Default 15 000. */
  keepaliveMs?: number
  /** Re-send an unanswered handshake, or ask a peer that owes credit, after this long (ms). Default 1 000. */
  retryMs?: number
  /** Packets the receiver lets the sender have in flight (1–127). Default 32. */
  window?: number
  /** Largest link message accepted — the bound of the reassembly buffer — in bytes. Default 16 MiB. */
  maxMessageBytes?: number
  /** Timers; a simulator passes a virtual clock (`contextsync/testing`'s `bleLinkSimulator`). */
  clock?: LinkClock
}

/** Options of {@link linkTransport}. */
export interface LinkTransportOptions extends LinkOptions {
  /**
   * The audience tokens name for the hub (`verifyAccessToken`'s audience): what the phone's
   * `linkServer({ audiences })` expects. Default `'link'`.
   */
  audience?: string
  /**
   * A fresh single-use token for a room, called before each OPEN. Default: the room's own
   * `token` (a `ContextSync` device mints them); rooms without one open with no token.
   */
  token?: (roomId: string, request: { audience: string }) => string | Promise<string>
}

/** Events of a {@link LinkTransport}. */
export interface LinkTransportEvents {
  /** Something a peer sent was refused (a bad packet, a refused room); sync carries on. */
  error: (event: { error: LinkError; roomId: string | undefined }) => void
}

/** A link transport: attach rooms, hand it channels. */
export interface LinkTransport extends Transport {
  /** Always `'link'`. */
  readonly kind: 'link'
  /**
   * Start a session on a channel that just came up; every attached room opens on it. `role`
   * decides who wins when both ends open a room at once: a device connecting to a hub is the
   * `'initiator'` (default); in a mesh, one end of each channel passes `'responder'`.
   */
  connect(channel: LinkChannel, options?: { role?: LinkRole }): LinkConnection
  /** The live connections. */
  readonly connections: readonly LinkConnection[]
  /** Subscribe to transport events; returns an unsubscribe function. */
  on<E extends keyof LinkTransportEvents>(event: E, listener: LinkTransportEvents[E]): () => void
  /**
   * Change the radio window (ms, 0 = at once) from the next burst on, on every connection — a
   * device's power profile switching between battery and charging.
   */
  setRadioWindow(ms: number): void
  /** Turn `rideRadioEvents` on or off from the next burst on, on every connection (a power profile). */
  setRideRadioEvents(ride: boolean): void
}

/**
 * Create a link transport.
 *
 * @example
 * ```ts
 * import { linkTransport } from 'contextsync/link'
 * const transport = linkTransport({ radioWindowMs: 2_000 })
 * transport.attach({ roomId, doc, awareness, token })
 * bluetooth.onConnected((characteristics) => transport.connect(channelOf(characteristics)))
 * ```
 */
export function linkTransport(options: LinkTransportOptions = {}): LinkTransport {
  const sessionOptions: LinkSessionOptions = resolveSessionOptions(options, options.clock ?? realClock)
  const audience = options.audience ?? 'link'
  const events = new Emitter<LinkTransportEvents>()
  const attachments = new Map<string, LinkAttachment>()
  const connections: LinkConnection[] = []
  let closed = false

  const node: LinkNode = new LinkNode(
    sessionOptions,
    {
      admit: (_peer, roomId) => {
        const attachment = attachments.get(roomId)
        return attachment ? { endpoint: attachment.endpoint } : { absent: true }
      },
      tokenFor: async (endpoint) => {
        const attachment = attachments.get(endpoint.roomId)
        if (options.token) return options.token(endpoint.roomId, { audience })
        return (await attachment?.room.token?.({ audience })) ?? ''
      },
      changed: (endpoint) => attachments.get(endpoint.roomId)?.refresh(),
      error: (error, roomId) => {
        events.emit('error', { error, roomId })
        if (roomId !== undefined) attachments.get(roomId)?.reportError(error)
      },
    },
    true,
  )

  const statusOf = (endpoint: RoomEndpoint): TransportStatus => {
    if (node.peers.size === 0) return 'disconnected'
    const bindings = node.bindingsOf(endpoint)
    if (bindings.some((binding) => binding.state === 'opening')) return 'connecting'
    const open = bindings.filter((binding) => binding.state === 'open')
    if (open.length === 0 && bindings.length > 0 && bindings.every((binding) => binding.state === 'refused')) return 'disconnected'
    return open.every((binding) => binding.gotStep2) ? 'synced' : 'connected'
  }

  return {
    kind: 'link',
    get connections() {
      return connections.filter((connection) => !connection.closed)
    },
    connect(channel, connectOptions = {}) {
      if (closed) throw new LinkError('invalid-argument', 'the link transport is closed')
      const connection = node.connect(channel, connectOptions.role ?? 'initiator')
      connections.push(connection)
      for (let i = connections.length - 1; i >= 0; i--) if (connections[i]!.closed) connections.splice(i, 1)
      for (const attachment of attachments.values()) attachment.refresh()
      return connection
    },
    attach(room) {
      if (closed) throw new LinkError('invalid-argument', 'the link transport is closed')
      if (attachments.has(room.roomId)) throw new LinkError('invalid-argument', `room ${room.roomId} is already attached`)
      const endpoint = node.endpoint(room.roomId, room.doc, room.awareness, false)
      const attachment = new LinkAttachment(room, endpoint, statusOf, () => {
        attachments.delete(room.roomId)
        node.remove(endpoint)
      })
      attachments.set(room.roomId, attachment)
      node.openEverywhere(endpoint)
      attachment.refresh()
      return attachment
    },
    on(event, listener) {
      return events.on(event, listener)
    },
    setRadioWindow(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new LinkError('invalid-argument', 'the radio window must be a non-negative number of ms')
      sessionOptions.radioWindowMs = ms
    },
    setRideRadioEvents(ride) {
      if (typeof ride !== 'boolean') throw new LinkError('invalid-argument', 'setRideRadioEvents takes a boolean')
      sessionOptions.rideRadioEvents = ride
    },
    close() {
      if (closed) return
      closed = true
      for (const attachment of [...attachments.values()]) attachment.detach()
      node.closeAll()
      events.clear()
    },
  }
}

const RANK: Record<TransportStatus, number> = { disconnected: 0, connecting: 1, connected: 2, synced: 3 }

/** One attached room. */
class LinkAttachment extends AttachmentBase {
  private detached = false

  constructor(
    readonly room: SealedLogRoom,
    readonly endpoint: RoomEndpoint,
    private readonly statusOf: (endpoint: RoomEndpoint) => TransportStatus,
    private readonly onDetach: () => void,
  ) {
    super(room.roomId)
  }

  get doc(): Y.Doc {
    return this.room.doc
  }

  get awareness(): Awareness {
    return this.room.awareness
  }

  detach(): void {
    if (this.detached) return
    this.detached = true
    this.onDetach()
    this.setStatus('disconnected')
    this.clearListeners()
  }

  /** Recompute the status; it only moves forward until the room is disconnected. */
  refresh(): void {
    if (this.detached) return
    const next = this.statusOf(this.endpoint)
    if (next === 'disconnected' || this.status === 'disconnected' || RANK[next] > RANK[this.status]) this.setStatus(next)
  }

  reportError(error: LinkError): void {
    this.emitError(error.reason, error.message)
  }
}
