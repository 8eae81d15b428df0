/**
 * A device's outbox, as the car's head unit and the PC's `contextsync status` show it
 * (ARCHITECTURE.md "Outbox"): per scope, how many envelopes this device sealed that may not have
 * reached the relay, and how many bytes — writes made offline, and writes sent in the last
 * {@link IN_DOUBT_MS} before a connection dropped (y-websocket has no acknowledgement, and a dead
 * connection is only noticed when it closes or times out). A room that syncs again (y-websocket
 * sync: each side sends only what the other's state vector lacks, so nothing goes twice) empties
 * its count; once every count is empty, `synced` fires.
 *
 * A device whose processes come and go (the PC's CLI: one process per command) hands what one
 * process left pending to the next with {@link OutboxOptions.carried}.
 *
 * @module
 */
import type * as Y from 'yjs'
import type { TransportStatus } from '../adapters/transport.js'
import { sealedLog } from '../crdt/sealed-log.js'
import { Emitter } from '../util/emitter.js'
import type { ContextSync } from './context-sync.js'

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
  /** The outbox changed (grew, or a scope synced): its new {@link Outbox.snapshot}. */
  change: (pending: Pending) => void
}

/** Options of an {@link Outbox}. */
export interface OutboxOptions {
  /**
   * What an earlier process of this device left pending (its last {@link Outbox.snapshot}): counted
   * until the scope syncs, since nothing in this process knows whether the relay got it.
   */
  carried?: Pending
}

/**
 * How long a write sent on a live connection stays in doubt: y-websocket closes a connection that
 * received nothing for 30 s, so a drop is noticed within that (plus a margin).
 */
export const IN_DOUBT_MS = 35_000

/** Watches one device's sealed logs and room states. */
export class Outbox {
  /** `synced` events. */
  readonly events = new Emitter<OutboxEvents>()
  private readonly pending = new Map<string, PendingScope>()
  private readonly status = new Map<string, TransportStatus>()
  private readonly watched = new Map<string, () => void>()
  /** Envelopes sent on a live connection lately, per scope: pending again if it drops. */
  private readonly recent = new Map<string, Array<{ at: number; bytes: number }>>()
  private readonly offs: Array<() => void> = []

  /** @param statusOf the current state of a room (the link remembers it; events alone miss early ones) */
  constructor(
    private readonly dev: ContextSync,
    private readonly statusOf: (roomId: string) => TransportStatus,
    options: OutboxOptions = {},
  ) {
    for (const [scope, p] of Object.entries(options.carried?.scopes ?? {})) {
      if (p.count > 0 && dev.scopes.available().includes(scope) && !this.isSynced(scope)) this.pending.set(scope, { count: p.count, bytes: p.bytes })
    }
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

  /** Stop watching (the profile is closing). */
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
        if (!transaction.local) return
        const sizes: number[] = []
        for (const delta of event.changes.delta) {
          if (!Array.isArray(delta.insert)) continue
          for (const item of delta.insert as unknown[]) sizes.push(item instanceof Uint8Array ? item.byteLength : 0)
        }
        if (sizes.length === 0) return
        if (this.isSynced(scope)) {
          const now = Date.now()
          const recent = (this.recent.get(scope) ?? []).filter((r) => now - r.at < IN_DOUBT_MS)
          for (const bytes of sizes) recent.push({ at: now, bytes })
          this.recent.set(scope, recent)
          return
        }
        this.add(scope, sizes.length, sizes.reduce((a, b) => a + b, 0))
      }
      log.observe(observer)
      this.watched.set(scope, () => log.unobserve(observer))
    }
  }

  private isSynced(scope: string): boolean {
    return this.statusOf(this.dev.roomId(scope)) === 'synced'
  }

  private add(scope: string, count: number, bytes: number): void {
    const p = this.pending.get(scope) ?? { count: 0, bytes: 0 }
    this.pending.set(scope, { count: p.count + count, bytes: p.bytes + bytes })
    this.events.emit('change', this.snapshot())
  }

  private onStatus(scope: string, status: TransportStatus): void {
    const was = this.status.get(scope)
    this.status.set(scope, status)
    if (status !== 'synced') {
      // The connection dropped: what went out on it lately may never have arrived.
      if (was === 'synced') {
        const now = Date.now()
        const doubtful = (this.recent.get(scope) ?? []).filter((r) => now - r.at < IN_DOUBT_MS)
        this.recent.delete(scope)
        if (doubtful.length > 0) this.add(scope, doubtful.length, doubtful.reduce((a, r) => a + r.bytes, 0))
      }
      return
    }
    const had = this.snapshot().count > 0
    const cleared = (this.pending.get(scope)?.count ?? 0) > 0
    this.pending.delete(scope)
    if (cleared) this.events.emit('change', this.snapshot())
    if (had && this.snapshot().count === 0) this.events.emit('synced', { scopes: [...this.status.keys()].filter((s) => this.status.get(s) === 'synced') })
  }
}
