/**
 * The objects of the link's room layer (`link-node.ts`): a room a node holds
 * ({@link RoomEndpoint}), one room bound on one session ({@link Binding}), one session as the
 * room layer sees it ({@link LinkPeer}), what differs between a device node and a hub node
 * ({@link LinkNodeHooks}), and the handle of a channel handed to a node ({@link LinkConnection}).
 * State only: what the messages do to them is the node's.
 *
 * @module
 */
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import type { LinkError } from './link-errors.js'
import type { RoomRef } from './link-messages.js'
import type { LinkSession, LinkSessionStats } from './link-session.js'

/** A room held by a node: a device's attached room or a hub's copy. */
export class RoomEndpoint {
  readonly bindings = new Set<Binding>()
  /** Which binding each remote awareness client was learned over (`null`: local or elsewhere). */
  readonly sources = new Map<number, Binding | null>()
  private readonly offDoc: () => void
  private readonly offAwareness: () => void

  constructor(
    readonly roomId: string,
    readonly doc: Y.Doc,
    readonly awareness: Awareness,
    /**
     * A hub forwards everyone's presence and keeps the clocks of peers that left (it must be able
     * to re-send their removal); a device announces only its own presence and forgets the clocks
     * of peers that left, so it accepts their states again when they come back.
     */
    readonly hub: boolean,
    onDoc: (endpoint: RoomEndpoint, update: Uint8Array, origin: unknown) => void,
    onAwareness: (endpoint: RoomEndpoint, changes: AwarenessChanges, origin: unknown) => void,
  ) {
    const docListener = (update: Uint8Array, origin: unknown): void => onDoc(this, update, origin)
    const awarenessListener = (changes: AwarenessChanges, origin: unknown): void => onAwareness(this, changes, origin)
    doc.on('update', docListener)
    awareness.on('update', awarenessListener)
    this.offDoc = () => doc.off('update', docListener)
    this.offAwareness = () => awareness.off('update', awarenessListener)
  }

  /** Stop listening to the doc and awareness. */
  release(): void {
    this.offDoc()
    this.offAwareness()
  }
}

/** What an awareness instance reports changed in one update. */
export type AwarenessChanges = { added: number[]; updated: number[]; removed: number[] }

/** Where a room stands on one session. */
export type BindingState = 'opening' | 'open' | 'absent' | 'refused'

/** One room bound (or being bound) on one session. */
export class Binding {
  state: BindingState = 'opening'
  /** A sync step 2 arrived on this binding. */
  gotStep2 = false
  /** Updates and awareness clients held for the next flush. */
  updates: Uint8Array[] = []
  readonly awarenessIds = new Set<number>()
  /** Re-open attempts after a refusal that a fresh token may fix. */
  reopenAttempts = 0
  reopenTimer: unknown
  /** When a temporary admission ends (hub side). */
  endTimer: unknown

  constructor(
    readonly peer: LinkPeer,
    readonly endpoint: RoomEndpoint,
    /** The room number, in the space of whoever sent the OPEN. */
    readonly num: number,
    /** True when this end chose the number (it sent the OPEN). */
    readonly mine: boolean,
  ) {}

  /** The reference this end writes in its messages. */
  get ref(): RoomRef {
    return { num: this.num, senderChose: this.mine }
  }
}

/** What the node decides about a room a peer opened. */
export type AdmitResult =
  /** `endsInMs`: the peer's access to the room ends then (a temporary grant); the hub refuses it then. */
  | { endpoint: RoomEndpoint; endsInMs?: number }
  | { absent: true }
  | { refuse: number; reason: string }

/** What differs between a device node and a hub node. */
export interface LinkNodeHooks {
  /** A peer sent OPEN for `roomId` with `token` (`''` for none). */
  admit(peer: LinkPeer, roomId: string, token: string): AdmitResult | Promise<AdmitResult>
  /** The token for an OPEN this node sends; `''` for none. */
  tokenFor(endpoint: RoomEndpoint): string | Promise<string>
  /** A binding of `endpoint` changed state (status bookkeeping). */
  changed(endpoint: RoomEndpoint): void
  /** Something was refused; `roomId` when it concerned one room. */
  error(error: LinkError, roomId: string | undefined): void
}

/** One session as the room layer sees it. */
export class LinkPeer {
  /** Bindings by the number this end chose. */
  readonly mine = new Map<number, Binding>()
  /** Bindings by the number the peer chose. */
  readonly theirs = new Map<number, Binding>()
  /** OPENs the peer sent for rooms this node does not hold: room id → the peer's number. */
  readonly offers = new Map<string, number>()
  /** OPENs the peer sent that are still being admitted (async token checks). */
  readonly admitting = new Set<number>()
  /** What the hub learned about this peer (`{ accountId, deviceId }`), for checks across rooms. */
  identity: unknown
  nextNum = 0
  session!: LinkSession

  /** Every binding of this peer. */
  *bindings(): Iterable<Binding> {
    yield* this.mine.values()
    yield* this.theirs.values()
  }

  /** This peer's binding of `endpoint`, if any. */
  bindingOf(endpoint: RoomEndpoint): Binding | undefined {
    for (const binding of this.bindings()) if (binding.endpoint === endpoint) return binding
    return undefined
  }
}

/** Counters of a link connection. */
export interface LinkConnectionStats extends LinkSessionStats {
  /** Rooms bound on this connection. */
  rooms: number
}

/** A channel handed to a node: close it, read its counters. */
export interface LinkConnection {
  /** Whether the peer's handshake arrived and the session is still up. */
  readonly ready: boolean
  /** Whether the session has ended. */
  readonly closed: boolean
  /** A snapshot of the session's counters. */
  readonly stats: LinkConnectionStats
  /** End the session (the channel is closed if it can be). */
  close(): void
}

/** The {@link LinkConnection} handle of a peer's session. */
export function connectionOf(peer: LinkPeer): LinkConnection {
  return {
    get ready() {
      return peer.session.ready && !peer.session.closed
    },
    get closed() {
      return peer.session.closed
    },
    get stats() {
      return { ...peer.session.stats, rooms: [...peer.bindings()].filter((binding) => binding.state === 'open').length }
    },
    close: () => peer.session.close(),
  }
}