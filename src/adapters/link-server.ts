/**
 * The link hub: the serving end of `contextsync/link`, which plays the relay's role for link
 * peers — the phone serving the glasses over Bluetooth. It holds each room's outer doc and
 * awareness, fans every update and presence change out to the other peers of the room, and admits
 * a room only when the peer's OPEN carries an access token the relay itself would accept: the
 * check is the relay's own `tokenCheck` (chain to the account root, room covered by the device's
 * relay pass, audience, time window, single use), so a device is admitted to exactly the rooms
 * its pass covers, and refused any other with the relay's close code (4401, 4403, 4408, 4409).
 *
 * Like the relay it is blind: it never holds keys and only merges sealed logs. Updates from
 * peers are validated with the relay's parser (`parseClientMessage`) before they touch a room.
 *
 * @module
 */
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { ready } from '../crypto/index.js'
import { RelayRefusal, tokenCheck, type RelayIdentity, type TokenAuthOptions } from '../relay/auth.js'
import { CloseCode } from '../wire/close-codes.js'
import { Emitter } from '../util/emitter.js'
import { realClock, type LinkChannel } from './link-channel.js'
import type { LinkError } from './link-errors.js'
import type { LinkOptions } from './link.js'
import { LinkNode, type AdmitResult, type LinkConnection, type LinkPeer, type RoomEndpoint } from './link-node.js'
import { resolveSessionOptions } from './link-session.js'

/** A room's outer doc and awareness, as the hub serves them. */
export interface LinkHubRoom {
  doc: Y.Doc
  awareness: Awareness
}

/** Options of {@link linkServer}. */
export interface LinkServerOptions extends LinkOptions {
  /**
   * How OPENs are checked: the relay's token check with these options (default `{}`: every token
   * verified, replays refused, the audience not checked — set `audiences` to the name devices
   * use, e.g. `['link']`), or `'none'` for tests, which admits every room.
   */
  auth?: 'none' | TokenAuthOptions
  /**
   * The doc and awareness to serve for an admitted room — the phone passes its own outer docs,
   * so what the glasses write lands in the phone's sealed logs. Default: an in-memory doc per
   * room, kept while the hub lives. Return `undefined` to refuse the room (4403).
   */
  room?: (roomId: string, identity: RelayIdentity | undefined) => LinkHubRoom | undefined | Promise<LinkHubRoom | undefined>
  /** Rooms one connection may bind; more are refused with 4414. Default 64. */
  maxRoomsPerConnection?: number
}

/** Events of a {@link LinkServer}. */
export interface LinkServerEvents {
  /** A room was refused to a peer (`code` is the close code), or a peer sent something refused. */
  error: (event: { error: LinkError; roomId: string | undefined }) => void
  /** A peer was admitted to a room. */
  admitted: (event: { roomId: string; identity: RelayIdentity | undefined }) => void
}

/** A running link hub. */
export interface LinkServer {
  /** Serve a channel that just came up (the hub is always the `'responder'`). */
  accept(channel: LinkChannel): LinkConnection
  /** The doc and awareness the hub serves for a room, once a peer opened it. */
  room(roomId: string): LinkHubRoom | undefined
  /** The live connections. */
  readonly connections: readonly LinkConnection[]
  /** Subscribe to events; returns an unsubscribe function. */
  on<E extends keyof LinkServerEvents>(event: E, listener: LinkServerEvents[E]): () => void
  /** Close every connection and release the rooms it created. */
  close(): void
}

/**
 * Create a link hub.
 *
 * @example
 * ```ts
 * import { linkServer } from 'contextsync/link'
 * const hub = linkServer({ auth: { audiences: ['link'] }, room: (roomId) => phone.outerRoom(roomId) })
 * bluetooth.onCentralConnected((characteristics) => hub.accept(channelOf(characteristics)))
 * ```
 */
export function linkServer(options: LinkServerOptions = {}): LinkServer {
  const sessionOptions = resolveSessionOptions(options, options.clock ?? realClock)
  const events = new Emitter<LinkServerEvents>()
  const maxRooms = options.maxRoomsPerConnection ?? 64
  const check = options.auth === 'none' ? undefined : tokenCheck(options.auth ?? {})
  const created: Awareness[] = []
  const connections: LinkConnection[] = []

  const resolveRoom = async (roomId: string, identity: RelayIdentity | undefined): Promise<LinkHubRoom | undefined> => {
    if (options.room) return options.room(roomId, identity)
    const doc = new Y.Doc()
    const awareness = new Awareness(doc)
    // The hub has no presence of its own; it only forwards its peers'.
    awareness.setLocalState(null)
    created.push(awareness)
    return { doc, awareness }
  }

  const admit = async (peer: LinkPeer, roomId: string, token: string): Promise<AdmitResult> => {
    if ([...peer.theirs.values()].length >= maxRooms) {
      return { refuse: CloseCode.TooManyRooms, reason: 'too many rooms on this connection' }
    }
    let identity: RelayIdentity | undefined
    if (check) {
      await ready()
      try {
        identity = await check(roomId, token === '' ? undefined : token)
      } catch (error) {
        if (error instanceof RelayRefusal) return { refuse: error.closeCode, reason: error.reason }
        throw error
      }
      // One connection is one device: a second device's token on it is someone else's.
      const known = peer.identity as RelayIdentity | undefined
      if (known && (known.accountId !== identity.accountId || known.deviceId !== identity.deviceId)) {
        return { refuse: CloseCode.Forbidden, reason: 'token of another device on this connection' }
      }
      peer.identity = identity
    }
    let endpoint = node.endpoints.get(roomId)
    if (!endpoint) {
      const room = await resolveRoom(roomId, identity)
      if (!room) return { refuse: CloseCode.Forbidden, reason: 'room not served here' }
      // Another OPEN of the same room may have resolved it meanwhile.
      endpoint = node.endpoints.get(roomId) ?? node.endpoint(roomId, room.doc, room.awareness, true)
    }
    events.emit('admitted', { roomId, identity })
    if (identity?.until !== undefined) {
      const now = (options.auth !== 'none' && options.auth?.now) || Date.now
      return { endpoint, endsInMs: identity.until - now() }
    }
    return { endpoint }
  }

  const node: LinkNode = new LinkNode(
    sessionOptions,
    {
      admit,
      tokenFor: () => '',
      changed: () => undefined,
      error: (error, roomId) => events.emit('error', { error, roomId }),
    },
    false,
  )

  return {
    accept(channel) {
      const connection = node.connect(channel, 'responder')
      for (let i = connections.length - 1; i >= 0; i--) if (connections[i]!.closed) connections.splice(i, 1)
      connections.push(connection)
      return connection
    },
    room(roomId) {
      const endpoint: RoomEndpoint | undefined = node.endpoints.get(roomId)
      return endpoint && { doc: endpoint.doc, awareness: endpoint.awareness }
    },
    get connections() {
      return connections.filter((connection) => !connection.closed)
    },
    on(event, listener) {
      return events.on(event, listener)
    },
    close() {
      node.closeAll()
      for (const awareness of created.splice(0)) awareness.destroy()
      events.clear()
    },
  }
}
