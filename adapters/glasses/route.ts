/**
 * The glasses' two ways out (ARCHITECTURE.md "adapters/glasses"): the Bluetooth link to the
 * phone first, a direct WebSocket to the relay as the fallback while the link is down and Wi-Fi
 * is up. Each room is attached to exactly one of them at any time — it is detached from one
 * before it is attached to the other — so no envelope travels both ways, and a switch loses
 * nothing: both sides resume from state vectors. Pairing rooms (`pair.*`) always go direct: the
 * phone's hub serves only rooms a relay pass covers.
 *
 * @module
 */
import type { SealedLogRoom, Transport, TransportAttachment, TransportAttachmentEvents, TransportStatus } from '../../src/adapters/transport.js'
import type { LinkChannel } from '../../src/adapters/link-channel.js'
import type { LinkConnection } from '../../src/adapters/link-node.js'
import type { LinkTransport } from '../../src/adapters/link.js'
import { Emitter } from '../../src/util/emitter.js'
import { ValidationError } from '../../src/errors.js'

/** Which way a room goes now. */
export type GlassesPath = 'link' | 'direct'

/** The glasses' routing transport. */
export interface GlassesRoute extends Transport {
  /** A link channel to the phone came up. */
  connect(channel: LinkChannel): LinkConnection
  /** The host's view of Wi-Fi. */
  setWifi(up: boolean): void
  /** Where rooms go now. */
  readonly path: GlassesPath
  /** Where one room is attached now (`undefined`: not attached). */
  pathOf(roomId: string): GlassesPath | undefined
}

/** Build the route over a link transport and an optional direct transport. */
export function glassesRoute(link: LinkTransport, direct: (Transport & { setOnline?: (online: boolean) => void }) | undefined, wifi: boolean): GlassesRoute {
  const rooms = new Map<string, RoutedRoom>()
  let linksUp = 0
  let wifiUp = wifi
  direct?.setOnline?.(wifiUp)
  const currentPath = (): GlassesPath => (linksUp === 0 && wifiUp && direct ? 'direct' : 'link')
  const pathFor = (roomId: string): GlassesPath => (roomId.startsWith('pair.') && direct ? 'direct' : currentPath())
  const reroute = (): void => {
    for (const room of rooms.values()) room.route(pathFor(room.room.roomId))
  }
  const inner = (path: GlassesPath): Transport => (path === 'direct' ? direct! : link)
  return {
    kind: 'glasses',
    get path() {
      return currentPath()
    },
    pathOf: (roomId) => rooms.get(roomId)?.path,
    connect(channel) {
      let up = true
      const down = (): void => {
        if (!up) return
        up = false
        linksUp--
        reroute()
      }
      linksUp++
      // Move the rooms onto the link before its session opens them (detached from the relay first).
      reroute()
      const watched: LinkChannel = {
        get mtu() {
          return channel.mtu
        },
        send: (bytes) => channel.send(bytes),
        onMessage: (listener) => channel.onMessage(listener),
        onClose: (listener) =>
          channel.onClose(() => {
            listener()
            down()
          }),
        ...(channel.canSend && { canSend: () => channel.canSend!() }),
        ...(channel.onDrain && { onDrain: (listener: () => void) => channel.onDrain!(listener) }),
        close: () => {
          channel.close?.()
          down()
        },
      }
      return link.connect(watched)
    },
    setWifi(up) {
      wifiUp = up
      direct?.setOnline?.(up)
      reroute()
    },
    attach(room) {
      if (rooms.has(room.roomId)) throw new ValidationError(`room ${room.roomId} is already attached`)
      const routed = new RoutedRoom(room, inner, () => rooms.delete(room.roomId))
      rooms.set(room.roomId, routed)
      routed.route(pathFor(room.roomId))
      return routed
    },
    async close() {
      for (const room of [...rooms.values()]) room.detach()
      link.close()
      await direct?.close()
    },
  }
}

/** One room and the inner attachment carrying it now. */
class RoutedRoom implements TransportAttachment {
  private readonly events = new Emitter<TransportAttachmentEvents>()
  private current: TransportStatus = 'disconnected'
  private inner: { path: GlassesPath; attachment: TransportAttachment; offs: Array<() => void> } | undefined
  private detached = false

  constructor(
    readonly room: SealedLogRoom,
    private readonly transportFor: (path: GlassesPath) => Transport,
    private readonly onDetach: () => void,
  ) {}

  get path(): GlassesPath | undefined {
    return this.inner?.path
  }

  get status(): TransportStatus {
    return this.current
  }

  on<E extends keyof TransportAttachmentEvents>(event: E, listener: TransportAttachmentEvents[E]): () => void {
    return this.events.on(event, listener)
  }

  /** Carry the room on `path`: detach from the other one first, so never both at once. */
  route(path: GlassesPath): void {
    if (this.detached || this.inner?.path === path) return
    this.release()
    const attachment = this.transportFor(path).attach(this.room)
    const offs = [
      attachment.on('status', ({ status }) => this.set(status)),
      attachment.on('error', (event) => this.events.emit('error', event)),
    ]
    this.inner = { path, attachment, offs }
    this.set(attachment.status)
  }

  detach(): void {
    if (this.detached) return
    this.release()
    this.set('disconnected')
    this.detached = true
    this.onDetach()
    this.events.clear()
  }

  private release(): void {
    const inner = this.inner
    if (!inner) return
    this.inner = undefined
    for (const off of inner.offs) off()
    inner.attachment.detach()
  }

  private set(status: TransportStatus): void {
    if (status === this.current) return
    this.current = status
    this.events.emit('status', { status, roomId: this.room.roomId })
  }
}
