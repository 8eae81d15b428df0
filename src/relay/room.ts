/**
 * One relay room: the room's outer doc (a sealed log the relay cannot read), its awareness, the
 * connections joined to it, and the bridge to storage (append on update, periodic merge).
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
import type { RelayLogger } from './log.js'
import type { RelayStorage } from './persistence.js'
import { MessageType } from '../wire/messages.js'
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

/** Origin of updates replayed from storage, so they are not stored again. */
const LOAD_ORIGIN = Symbol('contextsync-relay-load')

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
  private mergeTimer: NodeJS.Timeout | undefined
  private destroyed = false

  /**
   * Load a room from storage.
   *
   * @param mergeEveryUpdates merge once this many rows are stored for the room
   */
  constructor(
    readonly id: string,
    private readonly storage: RelayStorage,
    private readonly logger: RelayLogger,
    private readonly mergeEveryUpdates: number,
    private readonly onMerged: () => void,
  ) {
    const stored = storage.load(id)
    this.doc.transact(() => {
      for (const update of stored) {
        try {
          Y.applyUpdate(this.doc, update, LOAD_ORIGIN)
        } catch {
          logger.error('stored update could not be applied; skipped', { roomId: id, bytes: update.length })
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

  /** Reply to a client's sync step 1 with the updates it lacks (sync step 2). */
  syncStep2(stateVector: Uint8Array): Uint8Array {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeSyncStep2(encoder, this.doc, stateVector)
    return encoding.toUint8Array(encoder)
  }

  /** Every awareness state, for a `query-awareness` message. */
  allAwareness(): Uint8Array {
    return this.awarenessFrame([...this.awareness.getStates().keys()])
  }

  /** Apply a validated update from `peer`. Throws if Yjs refuses it. */
  applyUpdate(update: Uint8Array, peer: RoomPeer): void {
    Y.applyUpdate(this.doc, update, peer)
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

  /** Replace the room's stored rows by its merged state. No-op when already one row. */
  merge(): void {
    this.mergeScheduled = false
    if (this.destroyed || this.storage.rows(this.id) <= 1) return
    this.lastMerge = Date.now()
    this.storage.replace(this.id, this.mergedState())
    this.onMerged()
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

  private onUpdate(update: Uint8Array, origin: unknown): void {
    if (origin === LOAD_ORIGIN) return
    try {
      // Backends may commit later (SQLite batches one event-loop turn); order is kept either way.
      this.storage.append(this.id, update)
    } catch (error) {
      // The update stays in memory and reaches storage with the next successful merge.
      this.logger.error('storing an update failed', { roomId: this.id, error: errorMessage(error) })
    }
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeUpdate(encoder, update)
    const frame = encoding.toUint8Array(encoder)
    // The sender already has the update; everyone else gets it once.
    for (const peer of this.peers.keys()) if (peer !== origin) peer.send(frame)
    if (!this.mergeScheduled && this.storage.rows(this.id) >= this.mergeEveryUpdates) {
      this.mergeScheduled = true
      // Outside the Yjs transaction that emitted this event.
      setImmediate(() => this.tryMerge())
    }
  }

  private onAwareness({ added, updated, removed }: AwarenessChange, origin: unknown): void {
    const peer = origin as RoomPeer
    const controlled = this.peers.get(peer)
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
    const frame = this.awarenessFrame([...added, ...updated, ...removed])
    for (const peer of this.peers.keys()) peer.send(frame)
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
