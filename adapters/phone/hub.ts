/**
 * The phone's link hub (ARCHITECTURE.md "adapters/phone"): a {@link Transport} the phone's own
 * device attaches its rooms to — so the hub serves the very outer docs the relay transport
 * syncs — and a `linkServer` that serves those docs to link peers (the glasses). A link peer is
 * admitted to a room only with a token the relay itself would accept (the relay's `tokenCheck`,
 * shared code: chain to the account root, the room covered by the peer's relay pass, audience,
 * time window, single use) and only for rooms of this phone's account that the phone holds; any
 * other room is refused with 4403. What a peer writes lands in the phone's sealed log and goes
 * on to the relay with the phone's next sync; the hub never holds keys of its own for it.
 *
 * @module
 */
import type { RelayIdentity } from '../../src/relay/auth.js'
import type { SealedLogRoom, Transport, TransportAttachment, TransportAttachmentEvents, TransportStatus } from '../../src/adapters/transport.js'
import { linkServer, type LinkServer, type LinkServerOptions } from '../../src/adapters/link-server.js'
import type { LinkChannel } from '../../src/adapters/link-channel.js'
import type { LinkConnection } from '../../src/adapters/link-node.js'
import { Emitter } from '../../src/util/emitter.js'
import { ValidationError } from '../../src/errors.js'

/** The audience link tokens name by default (`linkTransport`'s default). */
export const PHONE_LINK_AUDIENCE = 'link'

/** Options of {@link phoneHub}. */
export interface PhoneHubOptions extends Omit<LinkServerOptions, 'auth' | 'room'> {
  /** The account whose rooms the hub serves. */
  accountId: () => string
  /** Whether a device is revoked (the phone's registry); revoked devices are refused 4403. */
  revoked: (deviceId: string) => boolean
  /** Audiences link tokens must name; default `['link']`. */
  audiences?: readonly string[]
  /** Clock of the token check (tests). */
  now?: () => number
  /** How long a peer's OPEN waits for a room the phone has not attached yet (ms); default 5 000. */
  roomWaitMs?: number
}

/** The hub: a transport for the phone's device, a server for its link peers. */
export interface PhoneHub {
  /** Attach the phone's rooms to this (as one of its device's transports). */
  readonly transport: Transport
  /** The link server. */
  readonly server: LinkServer
  /** Serve a link peer on a channel that just came up. */
  serve(channel: LinkChannel): LinkConnection
  /** Close every link connection. */
  close(): void
}

/** Build the hub (see the module notes). */
export function phoneHub(options: PhoneHubOptions): PhoneHub {
  const rooms = new Map<string, HubAttachment>()
  const server = linkServer({
    ...options,
    auth: {
      audiences: options.audiences ?? [PHONE_LINK_AUDIENCE],
      revoked: (identity) => options.revoked(identity.deviceId),
      ...(options.now && { now: options.now }),
    },
    room: async (roomId: string, identity: RelayIdentity | undefined) => {
      // The token check admitted the room for the peer's own account; the phone serves only its own.
      if (!identity || identity.accountId !== options.accountId()) return undefined
      // A phone that just opened attaches its scope rooms once its registry synced: a peer that
      // asks first waits for the room a moment rather than being refused it for the connection.
      const room = rooms.get(roomId)?.room ?? (await arrival(roomId))
      return room && { doc: room.doc, awareness: room.awareness }
    },
  })
  const waiting = new Map<string, Array<(room: SealedLogRoom | undefined) => void>>()
  const arrival = (roomId: string): Promise<SealedLogRoom | undefined> =>
    new Promise((resolve) => {
      const list = waiting.get(roomId) ?? []
      waiting.set(roomId, list)
      const timer = setTimeout(() => {
        list.splice(list.indexOf(done), 1)
        resolve(undefined)
      }, options.roomWaitMs ?? 5_000)
      const done = (room: SealedLogRoom | undefined): void => {
        clearTimeout(timer)
        resolve(room)
      }
      list.push(done)
    })
  const refresh = (): void => {
    for (const attachment of rooms.values()) attachment.set(server.connections.length > 0 ? 'connected' : 'disconnected')
  }
  const transport: Transport = {
    kind: 'link-hub',
    attach(room: SealedLogRoom): TransportAttachment {
      if (rooms.has(room.roomId)) throw new ValidationError(`room ${room.roomId} is already attached`)
      const attachment = new HubAttachment(room, () => rooms.delete(room.roomId))
      rooms.set(room.roomId, attachment)
      for (const done of waiting.get(room.roomId)?.splice(0) ?? []) done(room)
      refresh()
      return attachment
    },
    close() {
      for (const attachment of [...rooms.values()]) attachment.detach()
    },
  }
  return {
    transport,
    server,
    serve(channel) {
      // The channel's close also updates the rooms' status: wrap its onClose registration.
      const watched: LinkChannel = {
        get mtu() {
          return channel.mtu
        },
        send: (bytes) => channel.send(bytes),
        onMessage: (listener) => channel.onMessage(listener),
        onClose: (listener) =>
          channel.onClose(() => {
            listener()
            refresh()
          }),
        ...(channel.canSend && { canSend: () => channel.canSend!() }),
        ...(channel.onDrain && { onDrain: (listener: () => void) => channel.onDrain!(listener) }),
        ...(channel.close && { close: () => channel.close!() }),
      }
      const connection = server.accept(watched)
      refresh()
      return connection
    },
    close() {
      server.close()
      for (const list of waiting.values()) for (const done of list.splice(0)) done(undefined)
      refresh()
    },
  }
}

/** One of the phone's rooms, as the hub holds it. */
class HubAttachment implements TransportAttachment {
  private readonly events = new Emitter<TransportAttachmentEvents>()
  private current: TransportStatus = 'disconnected'
  private detached = false

  constructor(
    readonly room: SealedLogRoom,
    private readonly onDetach: () => void,
  ) {}

  get status(): TransportStatus {
    return this.current
  }

  on<E extends keyof TransportAttachmentEvents>(event: E, listener: TransportAttachmentEvents[E]): () => void {
    return this.events.on(event, listener)
  }

  set(status: TransportStatus): void {
    if (this.detached || status === this.current) return
    this.current = status
    this.events.emit('status', { status, roomId: this.room.roomId })
  }

  detach(): void {
    if (this.detached) return
    this.set('disconnected')
    this.detached = true
    this.onDetach()
    this.events.clear()
  }
}
