/**
 * The ends of the loopback network and the links between them: a device's {@link Attachment} of
 * a room, the in-process relay's copy of a room ({@link HubRoom}, `hub` layout), the transport a
 * device holds ({@link TransportImpl}), and the {@link Link} that joins two ends. The network
 * that moves frames between them (`network.ts`) reaches them through {@link LoopbackHost}.
 *
 * @module
 */
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import type { Awareness } from 'y-protocols/awareness'
import { Emitter } from '../../util/emitter.js'
import type {
  SealedLogRoom,
  TransportAttachment,
  TransportAttachmentEvents,
  TransportStatus,
} from '../../adapters/transport.js'
import { LoopbackError, type LoopbackTransport } from './types.js'
import type { QueueKey } from './queue.js'

/** What the ends need of the network they live on (implemented by `network.ts`). */
export interface LoopbackHost {
  /** A doc update on `end`: forward it over its open links. */
  onDocUpdate(end: Endpoint, update: Uint8Array, origin: unknown): void
  /** An awareness change on `end`: record where it came from and forward what `end` owns. */
  onAwarenessUpdate(end: Endpoint, changes: AwarenessChanges, origin: unknown): void
  /** Count a frame an end refused. */
  countRejected(): void
  /** Wire a new attachment of `room` into the network. */
  attach(transport: TransportImpl, room: SealedLogRoom): Attachment
  /** Unwire an attachment (closing its links). */
  detach(attachment: Attachment): void
}

/**
 * A bidirectional connection between two endpoints of one room. A new `generation` starts each
 * time it opens or closes, so frames sent on an earlier connection are discarded like a closed
 * socket's buffers.
 */
export class Link {
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

export type AwarenessChanges = { added: number[]; updated: number[]; removed: number[] }

/** One holder of a room's outer doc on the network: a device's attachment, or the relay's copy. */
export abstract class Endpoint {
  readonly links = new Set<Link>()
  /** Which link each remote awareness client was learned over (`null`: from elsewhere, ours to announce). */
  readonly sources = new Map<number, Link | null>()
  private readonly offDoc: () => void
  private readonly offAwareness: () => void

  constructor(
    protected readonly net: LoopbackHost,
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
export class HubRoom extends Endpoint {
  readonly name = 'hub'
  readonly joined = true

  constructor(net: LoopbackHost, roomId: string) {
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
export class Attachment extends Endpoint implements TransportAttachment {
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
    net: LoopbackHost,
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

export class TransportImpl implements LoopbackTransport {
  readonly kind = 'loopback'
  readonly attachments = new Map<string, Attachment>()
  closed = false

  constructor(
    private readonly net: LoopbackHost,
    readonly name: string,
  ) {}

  attach(room: SealedLogRoom): TransportAttachment {
    if (this.closed) throw new LoopbackError(`transport ${this.name} is closed`, 'closed')
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
