/**
 * The outbox a head unit can show (ARCHITECTURE.md "adapters/car"): per scope, how many envelopes
 * this device sealed while the scope's room was not in sync with the relay, and how many bytes —
 * writes made in a tunnel, or in flight while reconnecting. A room that syncs again (y-websocket
 * sync: each side sends only what the other's state vector lacks, so nothing goes twice) empties
 * its count; once every count is empty, `synced` fires.
 *
 * @module
 */
import type * as Y from 'yjs'
import type { ContextSync, TransportStatus } from '../../src/index.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import { Emitter } from '../../src/util/emitter.js'

/** What waits to reach the relay in one scope. */
export interface PendingScope {
  /** Envelopes sealed since the room was last in sync. */
  count: number
  /** Their bytes. */
  bytes: number
}

/** The outbox: per scope, and in all. */
export interface Pending {
  count: number
  bytes: number
  scopes: Record<string, PendingScope>
}

/** Events of an {@link Outbox}. */
export interface OutboxEvents {
  /** Everything sealed while out of sync reached the relay: every held scope is synced again. */
  synced: (event: { scopes: string[] }) => void
}

/** Watches one device's sealed logs and room states. */
export class Outbox {
  readonly events = new Emitter<OutboxEvents>()
  private readonly pending = new Map<string, PendingScope>()
  private readonly status = new Map<string, TransportStatus>()
  private readonly watched = new Map<string, () => void>()
  private readonly offs: Array<() => void> = []

  /** @param statusOf the current state of a room (the link remembers it; events alone miss early ones) */
  constructor(
    private readonly dev: ContextSync,
    private readonly statusOf: (roomId: string) => TransportStatus,
  ) {
    this.offs.push(
      dev.on('status', ({ scope, status }) => this.onStatus(scope, status)),
      dev.on('scopes', () => this.watchHeld()),
    )
    this.watchHeld()
  }

  /** The outbox now. */
  snapshot(): Pending {
    const scopes: Record<string, PendingScope> = {}
    let count = 0
    let bytes = 0
    for (const [scope, p] of this.pending) {
      if (p.count === 0) continue
      scopes[scope] = { ...p }
      count += p.count
      bytes += p.bytes
    }
    return { count, bytes, scopes }
  }

  close(): void {
    for (const off of this.offs.splice(0)) off()
    for (const unwatch of this.watched.values()) unwatch()
    this.watched.clear()
    this.events.clear()
  }

  private watchHeld(): void {
    for (const scope of this.dev.scopes.available()) {
      if (scope === 'local' || this.watched.has(scope)) continue
      const replica = this.dev.replica(scope)
      if (!replica) continue
      const log = sealedLog(replica.outer)
      // Local transactions on the outer doc are this device's own sealing and compaction; what a
      // transport applies is remote (y-websocket and the loopback apply updates as non-local).
      const observer = (event: Y.YArrayEvent<Uint8Array>, transaction: Y.Transaction): void => {
        if (!transaction.local || this.isSynced(scope)) return
        let count = 0
        let bytes = 0
        for (const delta of event.changes.delta) {
          if (!Array.isArray(delta.insert)) continue
          for (const item of delta.insert as unknown[]) {
            count += 1
            if (item instanceof Uint8Array) bytes += item.byteLength
          }
        }
        if (count === 0) return
        const p = this.pending.get(scope) ?? { count: 0, bytes: 0 }
        this.pending.set(scope, { count: p.count + count, bytes: p.bytes + bytes })
      }
      log.observe(observer)
      this.watched.set(scope, () => log.unobserve(observer))
    }
  }

  private isSynced(scope: string): boolean {
    return this.statusOf(this.dev.roomId(scope)) === 'synced'
  }

  private onStatus(scope: string, status: TransportStatus): void {
    this.status.set(scope, status)
    if (status !== 'synced') return
    const had = this.snapshot().count > 0
    this.pending.delete(scope)
    if (had && this.snapshot().count === 0) this.events.emit('synced', { scopes: [...this.status.keys()].filter((s) => this.status.get(s) === 'synced') })
  }
}
