/**
 * One relay room: the room's outer doc (a sealed log the relay cannot read), its awareness, the
 * connections joined to it, and the bridge to storage (append on update, periodic merge).
 *
 * Writes go to the store in the order the doc applied them, one write at a time; local updates
 * that arrive while a write is in flight go together in the next one (group commit: one
 * transaction for all of them on a shared store), and an update is forwarded — to this node's peers and, through the fan-out, to other nodes — only once the store
 * committed it under its seq. The doc holds every committed row up to {@link Room.head} (rows
 * from other nodes arrive as notifications, in seq order, or are fetched from the store when one
 * is missing); a merge covers `seq <= head`. When the store refuses or fails a write, the doc is
 * ahead of the store: the room reports itself broken, and the relay closes its connections so
 * devices reconnect and send again what the store lacks.
 *
 * Message encoding is y-protocols' own (`writeSyncStep1/2`, `writeUpdate`,
 * `encodeAwarenessUpdate`); this file only decides who receives what.
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import { decodeAwarenessEntries, encodeAwarenessEntries, filterAwareness, type AwarenessVerdict } from './awareness-guard.js'
import type { RelayStorage } from './accounting.js'
import type { RelayLogger } from './log.js'
import type { StoredUpdate } from './store.js'
import { MessageType } from '../wire/messages.js'
import { SYNC_FRAME_BYTES, SYNC_FRAME_OVERHEAD, syncStep2Frames } from '../wire/sync-frames.js'
import { cutState } from '../crdt/cut-state.js'
import { bytesDeletedBy } from './room-size.js'

/** Something joined to a room that can receive frames (a relay connection). */
export interface RoomPeer {
  /** Queue one binary frame to the peer. Must not throw. */
  send(frame: Uint8Array): void
  /** Whose connection it is; connections of one device may take over each other's awareness states. */
  readonly identity?: { readonly accountId: string; readonly deviceId: string }
}

/**
 * Shortest time between two merges a room asks for because it is over its quota in stored rows:
 * a merge re-encodes the whole room, so one per update near the quota would make writing there
 * quadratic.
 */
export const QUOTA_MERGE_INTERVAL_MS = 1_000
/** A merge for an exact size waits at least this many times the last merge's duration. */
export const QUOTA_MERGE_COST_FACTOR = 20

/** Origin of updates replayed from storage, so they are not stored again. */
const LOAD_ORIGIN = Symbol('contextsync-relay-load')

/** Origin of committed updates from other relay nodes (or fetched from the store): forwarded, not stored. */
const REMOTE_ORIGIN = Symbol('contextsync-relay-remote')

/** What a room tells its relay (and, through it, other relay nodes). All optional. */
export interface RoomHooks {
  /** A local update was committed under `seq`: tell other nodes. */
  onCommitted?(room: Room, seq: number, update: Uint8Array): void
  /** This node's peers changed awareness states (encoded y-protocols awareness update). */
  onAwareness?(room: Room, update: Uint8Array, owner: RoomPeer['identity']): void
  /**
   * The store refused (`quota`, `roomsPerAccount`, `rooms`: see `AppendResult`) or failed
   * (`storage`) a write of `origin`'s update: the doc holds
   * something the store does not. The relay closes the room's connections and unloads it.
   */
  onBroken?(room: Room, reason: BrokenReason, origin: RoomPeer | undefined): void
  /** Seqs were missing between notifications (`missing`) and a fetch from the store began. */
  onGap?(room: Room): void
  /** A fetch from the store (gap, reconnect or timer) brought `rows` rows this node had not applied. */
  onCatchUp?(room: Room, rows: number): void
  /** With a store several nodes share: the account quota the store checks on each append. */
  maxAccountSize?: number
  /** With `maxAccountSize`: the room caps the store checks when a room gets its first row. */
  maxRoomsPerAccount?: number
  /** With `maxAccountSize`: the relay-wide room cap the store checks when a room gets its first row. */
  maxRooms?: number
}

/** Why a room's doc got ahead of its store (see {@link RoomHooks.onBroken}). */
export type BrokenReason = 'quota' | 'roomsPerAccount' | 'rooms' | 'storage'

/** A local update waiting for its batch. */
interface QueuedUpdate {
  update: Uint8Array
  origin: unknown
  growth: number
}

/**
 * Most updates one store write carries: enough that a busy room commits a few times per round
 * trip's worth of arrivals, few enough that one transaction stays short.
 */
export const MAX_BATCH_UPDATES = 256
/** Most bytes one store write carries (a single larger update goes alone). */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024

/** Awareness clients controlled by a connection on another node, one stand-in peer per device. */
class RemotePeer implements RoomPeer {
  constructor(readonly identity: RoomPeer['identity']) {}
  send(): void {}
}

interface AwarenessChange {
  added: number[]
  updated: number[]
  removed: number[]
}

/** A loaded room. Create through the server; call {@link Room.destroy} after the last peer left. */
export class Room {
  /** The room's outer doc. GC on, so deleted envelopes' ciphertext is dropped. */
  readonly doc = new Y.Doc({ gc: true })
  /** The room's awareness; the relay itself never sets a local state. */
  readonly awareness: awarenessProtocol.Awareness
  /**
   * Joined peers and the awareness client ids each controls, with the JSON bytes of each state
   * (removed when it leaves).
   */
  readonly peers = new Map<RoomPeer, Map<number, number>>()
  /** The peer controlling each awareness client id. */
  private readonly owners = new Map<number, RoomPeer>()
  /** JSON sizes of the entries being applied, read by the awareness update handler. */
  private readonly pendingSizes = new Map<number, number>()
  private mergeScheduled = false
  private lastMerge = 0
  /** When the last merge started (performance.now()) and how long its encoding took (ms). */
  private lastMergeStarted = 0
  private lastMergeMs = 0
  private mergeTimer: NodeJS.Timeout | undefined
  private destroyed = false
  /** The store refused or failed a write: nothing more is stored or merged from this doc. */
  private broken = false
  /** Every committed row with `seq <= head` is in the doc. */
  private headSeq = 0
  /** Committed seqs above `head` already in the doc (this node's own, ahead of a missing one). */
  private readonly ahead = new Set<number>()
  /** Store writes (appends, compactions), one at a time in doc order. */
  private writes: Promise<void> = Promise.resolve()
  private compactionQueued = false
  private catching: Promise<void> | undefined
  /** Growth (bytes minus freed content) of the local update being applied, for the store's quota. */
  private pendingGrowth: number | undefined
  private readonly remotePeers = new Map<string, RemotePeer>()
  /** Local updates applied to the doc and not yet handed to the store, oldest first. */
  private readonly queued: QueuedUpdate[] = []
  /** A commit of the queued updates is in the write chain and has not started yet. */
  private commitQueuedFlag = false

  /** Load a room's rows from the store and build it. */
  static async load(
    id: string,
    storage: RelayStorage,
    logger: RelayLogger,
    mergeEveryUpdates: number,
    onMerged: () => void,
    hooks: RoomHooks = {},
  ): Promise<Room> {
    const stored = await storage.store.load(id)
    storage.loaded(id, stored)
    return new Room(id, storage, logger, mergeEveryUpdates, onMerged, stored, hooks)
  }

  /**
   * A room holding `stored` (read from the store; {@link Room.load} reads them).
   *
   * @param mergeEveryUpdates merge once this many rows are stored for the room
   */
  constructor(
    readonly id: string,
    private readonly storage: RelayStorage,
    private readonly logger: RelayLogger,
    private readonly mergeEveryUpdates: number,
    private readonly onMerged: () => void,
    stored: readonly StoredUpdate[] = [],
    private readonly hooks: RoomHooks = {},
  ) {
    this.doc.transact(() => {
      for (const { seq, data } of stored) {
        this.headSeq = Math.max(this.headSeq, seq)
        try {
          Y.applyUpdate(this.doc, data, LOAD_ORIGIN)
        } catch {
          logger.error('stored update could not be applied; skipped', { roomId: id, bytes: data.length })
        }
      }
    }, LOAD_ORIGIN)
    this.awareness = new awarenessProtocol.Awareness(this.doc)
    this.awareness.setLocalState(null)
    this.doc.on('update', (update: Uint8Array, origin: unknown) => this.onUpdate(update, origin))
    this.awareness.on('update', (change: AwarenessChange, origin: unknown) => this.onAwareness(change, origin))
    if (stored.length > 1) this.tryMerge()
  }

  /** Join a peer: it receives the relay's sync step 1 and the current awareness states. */
  join(peer: RoomPeer): void {
    this.peers.set(peer, new Map())
    const step1 = encoding.createEncoder()
    encoding.writeVarUint(step1, MessageType.Sync)
    syncProtocol.writeSyncStep1(step1, this.doc)
    peer.send(encoding.toUint8Array(step1))
    const states = this.awareness.getStates()
    if (states.size > 0) peer.send(this.awarenessFrame([...states.keys()]))
  }

  /** Remove a peer and the awareness states it controlled. */
  leave(peer: RoomPeer): void {
    const controlled = this.peers.get(peer)
    if (!controlled) return
    this.peers.delete(peer)
    for (const id of controlled.keys()) if (this.owners.get(id) === peer) this.owners.delete(id)
    if (controlled.size > 0) awarenessProtocol.removeAwarenessStates(this.awareness, [...controlled.keys()], null)
  }

  /**
   * Reply to a client's sync step 1 with the updates it lacks: sync updates of at most
   * {@link SYNC_FRAME_BYTES} each (whole envelopes), then the sync step 2, so a large room
   * reaches a new device in steps and never as one frame past its limits (WIRE.md, "Frame sizes").
   */
  syncStep2(stateVector: Uint8Array): Uint8Array[] {
    return syncStep2Frames(cutState(this.doc, SYNC_FRAME_BYTES - SYNC_FRAME_OVERHEAD, stateVector)).frames
  }

  /** Every awareness state, for a `query-awareness` message. */
  allAwareness(): Uint8Array {
    return this.awarenessFrame([...this.awareness.getStates().keys()])
  }

  /** The room's seq up to which every committed row is in the doc. */
  get head(): number {
    return this.headSeq
  }

  /**
   * Apply a validated update from `peer`; what it adds is stored and then forwarded. `growth`
   * (bytes minus the content its deletions free) is what the store's account quota counts.
   * Throws if Yjs refuses it.
   */
  applyUpdate(update: Uint8Array, peer: RoomPeer, growth = update.length): void {
    this.pendingGrowth = growth
    try {
      Y.applyUpdate(this.doc, update, peer)
    } finally {
      this.pendingGrowth = undefined
    }
  }

  /**
   * A committed update from another node (its `update`, or `undefined` when only the seq was
   * announced). Applied when it is the next seq; a seq past the next one means notifications were
   * lost or reordered, and the missing rows are fetched from the store.
   */
  applyRemote(seq: number, update: Uint8Array | undefined): void {
    if (this.destroyed || seq <= this.headSeq || this.ahead.has(seq)) return
    if (seq === this.headSeq + 1 && update) {
      this.applyCommitted(seq, update)
      return
    }
    // A seq-only notice of the next seq is no gap: the update was just too large to carry.
    if (seq > this.headSeq + 1) this.hooks.onGap?.(this)
    void this.catchUp()
  }

  /**
   * Fetch every row above {@link head} from the store and apply it (a missed notification, a
   * reconnect to the fan-out, the periodic check). One fetch at a time; resolves when done.
   */
  catchUp(): Promise<void> {
    if (this.destroyed) return Promise.resolve()
    return (this.catching ??= (async () => {
      try {
        const rows = await this.storage.store.load(this.id, this.headSeq)
        let applied = 0
        for (const { seq, data } of rows) {
          if (seq <= this.headSeq) continue
          if (this.ahead.has(seq)) {
            this.advance(seq, true)
            continue
          }
          this.applyCommitted(seq, data, true)
          applied += 1
        }
        this.hooks.onCatchUp?.(this, applied)
      } catch (error) {
        this.logger.warn('fetching a room from the store failed; retried with the next check', { roomId: this.id, error: errorMessage(error) })
      } finally {
        this.catching = undefined
      }
    })())
  }

  /** Resolves once every store write queued so far has finished. */
  settled(): Promise<void> {
    return this.writes
  }

  /** Apply awareness entries relayed from another node's `owner` device. */
  applyRemoteAwareness(update: Uint8Array, owner: RoomPeer['identity']): void {
    if (this.destroyed) return
    const key = owner ? `${owner.accountId}/${owner.deviceId}` : ''
    let peer = this.remotePeers.get(key)
    if (!peer) this.remotePeers.set(key, (peer = new RemotePeer(owner)))
    try {
      awarenessProtocol.applyAwarenessUpdate(this.awareness, update, peer)
    } catch (error) {
      this.logger.warn('awareness from another node could not be applied', { roomId: this.id, error: errorMessage(error) })
    }
  }

  /** Bytes of live content the delete set of a validated `update` would remove (quota accounting). */
  bytesFreedBy(update: Uint8Array): number {
    return bytesDeletedBy(this.doc, update)
  }

  /**
   * Apply a validated awareness update from `peer`: only entries for client ids it may touch, and
   * nothing when it would exceed `maxStates` states or `maxBytes` of state JSON (see
   * `awareness-guard.ts`). Returns what was dropped. Throws on an update that does not decode.
   */
  applyAwareness(update: Uint8Array, peer: RoomPeer, maxStates = Infinity, maxBytes = Infinity): AwarenessVerdict {
    const verdict = filterAwareness(
      decodeAwarenessEntries(update),
      peer,
      {
        ownerOf: (id) => this.owners.get(id),
        clockOf: (id) => this.awareness.meta.get(id)?.clock,
        statesOf: (p) => this.peers.get(p) ?? new Map<number, number>(),
        sameDevice: (a, b) =>
          a.identity !== undefined &&
          b.identity !== undefined &&
          a.identity.deviceId !== 'anonymous' &&
          a.identity.accountId === b.identity.accountId &&
          a.identity.deviceId === b.identity.deviceId,
      },
      maxStates,
      maxBytes,
    )
    if (verdict.keep.length === 0) return verdict
    for (const { clientId, json } of verdict.keep) this.pendingSizes.set(clientId, json.length)
    try {
      awarenessProtocol.applyAwarenessUpdate(this.awareness, encodeAwarenessEntries(verdict.keep), peer)
    } finally {
      this.pendingSizes.clear()
    }
    return verdict
  }

  /** The room's merged state as one update (what a merge stores). */
  mergedState(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc)
  }

  /**
   * Replace the room's stored rows up to {@link head} by its merged state. No-op when already one
   * row. The exact merged size counts at once; the store writes the row after queued appends.
   */
  merge(): void {
    this.mergeScheduled = false
    if (this.destroyed || this.broken || this.storage.rows(this.id) <= 1) return
    this.lastMergeStarted = performance.now()
    this.lastMerge = Date.now()
    const merged = this.mergedState()
    this.lastMergeMs = performance.now() - this.lastMergeStarted
    this.storage.setExactSize(this.id, merged.length)
    const through = this.headSeq
    if (through === 0 || this.compactionQueued) return
    this.compactionQueued = true
    this.enqueue(async () => {
      this.compactionQueued = false
      const result = await this.storage.store.compact(this.id, through, merged)
      if (result.status === 'merged') {
        this.storage.recordCompact(this.id, result.rows, result.bytes, merged.length)
        this.onMerged()
      }
    }, 'merging a room failed')
  }

  /**
   * Whether a merge only for an exact size (a quota decision the estimate cannot make) may run
   * now: not within {@link QUOTA_MERGE_COST_FACTOR} times the last merge's encoding time since it
   * started — so a writer hovering at its quota makes the relay spend a small fraction of its time
   * merging that room (the encoding, and the store's rewrite of about as many bytes), whatever the
   * room's size, while a small room gets an exact figure almost whenever it needs one. Encoding
   * time, not the rewrite's wall time: a store's rewrite waits on I/O and other rooms' writes.
   */
  mayMergeForExactSize(): boolean {
    return performance.now() - this.lastMergeStarted >= QUOTA_MERGE_COST_FACTOR * this.lastMergeMs
  }

  /**
   * Merge now, or — when the room merged less than {@link QUOTA_MERGE_INTERVAL_MS} ago — once that
   * interval has passed. For a room whose stored rows exceed its quota while its merged size fits.
   */
  mergeSoon(): void {
    if (this.destroyed || this.mergeTimer) return
    const wait = this.lastMerge + QUOTA_MERGE_INTERVAL_MS - Date.now()
    if (wait <= 0) {
      this.tryMerge()
      return
    }
    this.mergeTimer = setTimeout(() => {
      this.mergeTimer = undefined
      this.tryMerge()
    }, wait)
    this.mergeTimer.unref()
  }

  /** {@link merge}, logging instead of throwing. Returns false when the merge failed. */
  tryMerge(): boolean {
    try {
      this.merge()
      return true
    } catch (error) {
      // Rows stay as they are: nothing stored is lost, the room just is not compacted.
      this.logger.error('merging a room failed', { roomId: this.id, error: errorMessage(error) })
      return false
    }
  }

  /** Release the doc and awareness (timers included). */
  destroy(): void {
    this.destroyed = true
    clearTimeout(this.mergeTimer)
    this.mergeTimer = undefined
    this.awareness.destroy()
    this.doc.destroy()
  }

  /** Run a store write after the ones queued before it; a failure is logged, never thrown. */
  private enqueue(write: () => Promise<void>, failure: string): void {
    this.writes = this.writes.then(write).catch((error: unknown) => {
      this.logger.error(failure, { roomId: this.id, error: errorMessage(error) })
    })
  }

  /** A committed row is in the doc: advance the head past it and anything already ahead. */
  private advance(seq: number, covering = false): void {
    if (seq <= this.headSeq) return
    if (seq > this.headSeq + 1 && !covering) {
      // Another node committed the seqs between: they come as notifications or by a fetch.
      this.ahead.add(seq)
      return
    }
    this.headSeq = seq
    for (const ahead of this.ahead) if (ahead <= seq) this.ahead.delete(ahead)
    while (this.ahead.delete(this.headSeq + 1)) this.headSeq += 1
  }

  /**
   * Apply a committed row from elsewhere (forwarded to local peers by the update handler).
   * `covering`: it came from a fetch of every row above the head, so every seq up to it is in.
   */
  private applyCommitted(seq: number, data: Uint8Array, covering = false): void {
    try {
      Y.applyUpdate(this.doc, data, REMOTE_ORIGIN)
    } catch {
      this.logger.error('stored update could not be applied; skipped', { roomId: this.id, bytes: data.length })
    }
    this.storage.recordAppend(this.id, data.length)
    this.advance(seq, covering)
    this.scheduleMergeIfDue()
  }

  private forward(update: Uint8Array, origin: unknown): void {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeUpdate(encoder, update)
    const frame = encoding.toUint8Array(encoder)
    // The sender already has the update; everyone else gets it once.
    for (const peer of this.peers.keys()) if (peer !== origin) peer.send(frame)
  }

  /**
   * Store the local updates queued so far in one batch (one transaction on a shared store), then
   * forward each: only committed updates leave this room. Updates arriving while a batch commits
   * wait for the next one, so a busy room commits once per round trip, not once per update.
   */
  private async commitQueued(): Promise<void> {
    this.commitQueuedFlag = false
    const batch = this.takeBatch()
    if (this.broken || batch.length === 0) return
    if (this.queued.length > 0) this.queueCommit()
    const limits = this.hooks.maxAccountSize === undefined ? undefined : this.hooks
    const entries = batch.map(({ update, growth }) => ({
      update,
      ...(limits && {
        quota: {
          growth,
          maxAccountSize: limits.maxAccountSize!,
          ...(limits.maxRoomsPerAccount !== undefined && { maxRoomsPerAccount: limits.maxRoomsPerAccount }),
          ...(limits.maxRooms !== undefined && { maxRooms: limits.maxRooms }),
        },
      }),
    }))
    let results
    try {
      results = await this.storage.store.appendBatch(this.id, entries)
    } catch (error) {
      this.logger.error('storing an update failed; closing the room so devices send it again', { roomId: this.id, error: errorMessage(error) })
      return this.breakRoom('storage', batch[0]!.origin)
    }
    for (let i = 0; i < batch.length; i++) {
      const result = results[i]
      const { update, origin } = batch[i]!
      if (!result?.ok) return this.breakRoom(result?.reason ?? 'storage', origin)
      this.advance(result.seq)
      this.forward(update, origin)
      this.hooks.onCommitted?.(this, result.seq, update)
    }
  }

  /** The oldest queued updates, up to {@link MAX_BATCH_UPDATES} and {@link MAX_BATCH_BYTES}. */
  private takeBatch(): QueuedUpdate[] {
    let bytes = 0
    let n = 0
    while (n < this.queued.length && n < MAX_BATCH_UPDATES && (n === 0 || bytes + this.queued[n]!.update.length <= MAX_BATCH_BYTES)) {
      bytes += this.queued[n]!.update.length
      n += 1
    }
    return this.queued.splice(0, n)
  }

  private queueCommit(): void {
    if (this.commitQueuedFlag) return
    this.commitQueuedFlag = true
    this.enqueue(() => this.commitQueued(), 'storing an update failed')
  }

  private breakRoom(reason: BrokenReason, origin: unknown): void {
    if (this.broken) return
    this.broken = true
    this.hooks.onBroken?.(this, reason, this.peers.has(origin as RoomPeer) ? (origin as RoomPeer) : undefined)
  }

  private scheduleMergeIfDue(): void {
    if (!this.mergeScheduled && !this.destroyed && this.storage.rows(this.id) >= this.mergeEveryUpdates) {
      this.mergeScheduled = true
      setImmediate(() => this.tryMerge())
    }
  }

  private onUpdate(update: Uint8Array, origin: unknown): void {
    if (origin === LOAD_ORIGIN) return
    if (origin === REMOTE_ORIGIN) return this.forward(update, origin)
    const growth = this.pendingGrowth ?? update.length
    this.storage.recordAppend(this.id, update.length)
    this.queued.push({ update, origin, growth })
    this.queueCommit()
    if (!this.mergeScheduled && this.storage.rows(this.id) >= this.mergeEveryUpdates) {
      this.mergeScheduled = true
      // Outside the Yjs transaction that emitted this event.
      setImmediate(() => this.tryMerge())
    }
  }

  private onAwareness({ added, updated, removed }: AwarenessChange, origin: unknown): void {
    const peer = origin as RoomPeer
    const remote = origin instanceof RemotePeer
    const controlled = this.peers.get(peer) ?? (remote ? new Map<number, number>() : undefined)
    if (controlled) {
      for (const id of [...added, ...updated]) {
        const previous = this.owners.get(id)
        // Taken over from another connection of the same device (awareness-guard.ts).
        if (previous !== undefined && previous !== peer) this.peers.get(previous)?.delete(id)
        this.owners.set(id, peer)
        controlled.set(id, this.pendingSizes.get(id) ?? controlled.get(id) ?? 0)
      }
    }
    // Removed by its owner, by a leave, or timed out: the slot is free again.
    for (const id of removed) {
      const owner = this.owners.get(id)
      if (owner !== undefined) this.peers.get(owner)?.delete(id)
      this.owners.delete(id)
    }
    const changed = [...added, ...updated, ...removed]
    const frame = this.awarenessFrame(changed)
    for (const peer of this.peers.keys()) peer.send(frame)
    // This node's peers' changes (and their states removed when they left) go to other nodes;
    // each node times out stale states by itself.
    if (this.hooks.onAwareness && !remote && origin !== 'timeout' && changed.length > 0) {
      this.hooks.onAwareness(this, awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed), this.peers.has(peer) ? peer.identity : undefined)
    }
  }

  private awarenessFrame(clients: number[]): Uint8Array {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Awareness)
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients))
    return encoding.toUint8Array(encoder)
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : 'unknown error'
}
