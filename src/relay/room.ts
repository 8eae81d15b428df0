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
import type { RelayLogger } from './log.js'
import type { RelayStorage } from './persistence.js'
import { MessageType } from './protocol.js'

/** Something joined to a room that can receive frames (a relay connection). */
export interface RoomPeer {
  /** Queue one binary frame to the peer. Must not throw. */
  send(frame: Uint8Array): void
}

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
  /** Joined peers and the awareness client ids each controls (removed when it leaves). */
  readonly peers = new Map<RoomPeer, Set<number>>()
  private mergeScheduled = false
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
    this.peers.set(peer, new Set())
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
    if (controlled.size > 0) awarenessProtocol.removeAwarenessStates(this.awareness, [...controlled], null)
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

  /** Apply a validated awareness update from `peer`. */
  applyAwareness(update: Uint8Array, peer: RoomPeer): void {
    awarenessProtocol.applyAwarenessUpdate(this.awareness, update, peer)
  }

  /** The room's merged state as one update (what a merge stores). */
  mergedState(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc)
  }

  /** Replace the room's stored rows by its merged state. No-op when already one row. */
  merge(): void {
    this.mergeScheduled = false
    if (this.destroyed || this.storage.rows(this.id) <= 1) return
    this.storage.replace(this.id, this.mergedState())
    this.onMerged()
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
    const controlled = this.peers.get(origin as RoomPeer)
    if (controlled) {
      for (const id of added) controlled.add(id)
      for (const id of removed) controlled.delete(id)
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
