/**
 * Local authority over a shared log that anyone in the room can edit: deletions by others are
 * checked ({@link ErasureWatch}), applied entries that stay erased are reported as `Erased` (14)
 * and republished, refused entries are swept out, and the store is rewritten so deleted
 * envelopes leave the disk too — each at most about once a second, so a peer deleting or
 * inserting entry after entry cannot make this device rewrite its store for each.
 *
 * @module
 */
import * as Y from 'yjs'
import { sealedLog } from '../crdt/sealed-log.js'
import { RejectCode } from '../crypto/codes.js'
import { EnvelopeType, parseEnvelope, type ParsedEnvelope } from '../crypto/envelope.js'
import { unref } from '../util/timers.js'
import type { Compactor } from './compactor.js'
import { deletedLogEntries, ErasureWatch, extentContains, reachOf, updateExtent, type Extent, type StateRange } from './erasure.js'
import { STORAGE_ORIGIN } from './log-store.js'
import { PRESSURE_INTERVAL_MS, snapshotStateRange, type ReplicaCore } from './replica-core.js'
import { decodeSnapshot } from './snapshot.js'

const REPAIR_MAX_MS = 5 * 60_000

/** Erasure checks, repair, sweeps and store rewrites after someone else's deletions. */
export class LogUpkeep {
  private readonly erasure: ErasureWatch
  private repairTimer: ReturnType<typeof setTimeout> | undefined
  private repairBackoff: number
  private lastRepairAt = -Infinity
  private sweepTimer: ReturnType<typeof setTimeout> | undefined
  private lastSweepAt = -Infinity
  private storageCompactQueued = false
  private lastStorageCompactAt = -Infinity

  constructor(
    private readonly core: ReplicaCore,
    private readonly compactor: Compactor,
  ) {
    const repairDelayMs = core.options.repairDelayMs ?? 500
    this.repairBackoff = repairDelayMs
    this.erasure = new ErasureWatch(
      {
        extentOf: (bytes) => this.extentOf(bytes),
        snapshotExtents: () => this.snapshotExtents(),
        erased: (event) => this.onErased(event),
      },
      // Half the repair delay: a peer that saw the same erasure republishes only after the full
      // delay, so its snapshot cannot make this device's check pass and hide the report.
      repairDelayMs / 2,
    )
  }

  /** True while a check, repair, sweep or store rewrite is queued. */
  get pending(): boolean {
    return this.erasure.pending || this.repairTimer !== undefined || this.sweepTimer !== undefined || this.storageCompactQueued
  }

  /** Check every transaction on the sealed log by anyone but this replica. */
  listen(log: Y.Array<Uint8Array>): void {
    this.core.outer.on('afterTransaction', (transaction: Y.Transaction) => this.onOuterTransaction(transaction, log))
  }

  /**
   * Stop the timers (closing). Deletions not yet checked (or a repair not yet run) must survive
   * the restart: the closing rewrite stores the deletions, so the checkpoint it writes says a
   * repair is due.
   */
  stop(): void {
    if (this.repairTimer) clearTimeout(this.repairTimer)
    if (this.sweepTimer) clearTimeout(this.sweepTimer)
    if (this.erasure.pending) this.core.repairDue = true
    this.erasure.close()
  }

  /**
   * At load, delete the entries this device's newest own snapshot in the log covers. Its own
   * compaction deleted them once, so any still here were put back — replays (possibly of text
   * forgotten since) that were refused before the restart but not yet swept. Loading records
   * entries with applied seqs as applied without checking them, so they would otherwise stay
   * until the next compaction.
   */
  dropCoveredByOwnSnapshot(log: Y.Array<Uint8Array>): void {
    const core = this.core
    const signer = core.signer
    if (!signer) return
    const entries = core.ledger.entries
    const current = log.toArray()
    let newest: { bytes: Uint8Array; envelope: ParsedEnvelope } | undefined
    for (const bytes of current) {
      const info = entries.get(bytes)
      if (info?.state !== 'applied' || info.type !== EnvelopeType.Snapshot || info.senderId !== signer.senderId) continue
      if (newest && newest.envelope.seq >= (info.seq ?? 0)) continue
      const parsed = parseEnvelope(bytes)
      if (parsed.ok) newest = { bytes, envelope: parsed.value }
    }
    if (!newest) return
    const plaintext = core.open(newest.envelope)
    const snapshot = plaintext && decodeSnapshot(plaintext)
    if (!snapshot) return
    const covered = (bytes: Uint8Array): boolean => {
      if (bytes === newest!.bytes) return false
      const info = entries.get(bytes)
      return info?.state === 'applied' && info.senderId !== undefined && info.seq !== undefined && snapshot.coverage.get(info.senderId)?.has(info.seq) === true
    }
    let removed = 0
    Y.transact(
      core.outer,
      () => {
        for (let i = current.length - 1; i >= 0; i--) {
          if (!covered(current[i]!)) continue
          const bytes = current[i]!
          core.ledger.snapshotEntries.delete(bytes)
          log.delete(i, 1)
          removed++
        }
      },
      core.sealOrigin,
    )
    if (removed > 0) void core.store.compact().catch(() => undefined)
  }

  /**
   * Delete refused entries from the log — and, by the rewrite that follows, from the store — so
   * junk a relay or peer inserts never accumulates; at most about once a second.
   */
  scheduleSweep(): void {
    if (this.sweepTimer || this.core.closed) return
    const wait = Math.max(0, this.lastSweepAt + PRESSURE_INTERVAL_MS - performance.now())
    this.sweepTimer = setTimeout(() => this.sweep(), wait)
    unref(this.sweepTimer)
  }

  /** A transaction on the sealed log by anyone but this replica: deletions are checked. */
  private onOuterTransaction(transaction: Y.Transaction, log: Y.Array<Uint8Array>): void {
    const core = this.core
    if (core.closed || transaction.origin === core.sealOrigin || transaction.origin === STORAGE_ORIGIN) return
    if (transaction.deleteSet.clients.size === 0) return
    const appliedAndDeleted: Uint8Array[] = []
    for (const bytes of deletedLogEntries(transaction, log)) {
      const info = core.ledger.entries.get(bytes)
      if (info?.state === 'applied') appliedAndDeleted.push(bytes)
      else if (info?.state === 'held') core.held.delete(bytes)
    }
    // Snapshots leave the candidates first: a deleted snapshot cannot account for anything.
    for (const bytes of appliedAndDeleted) core.ledger.snapshotEntries.delete(bytes)
    if (appliedAndDeleted.length > 0) this.erasure.deleted(appliedAndDeleted)
    this.queueStorageCompaction()
  }

  /**
   * Someone else deleted entries: rewrite local storage (checkpoint first, see `LogStore`) so
   * deleted envelopes leave the disk too — at once, but at most about once a second.
   */
  private queueStorageCompaction(): void {
    const core = this.core
    if (this.storageCompactQueued || core.closed) return
    this.storageCompactQueued = true
    const wait = Math.max(0, this.lastStorageCompactAt + PRESSURE_INTERVAL_MS - performance.now())
    setTimeout(() => {
      this.storageCompactQueued = false
      this.lastStorageCompactAt = performance.now()
      if (!core.closed) void core.store.compact()
    }, wait)
  }

  /** The Yjs extent of an entry this device applied, read from its (still present) bytes. */
  private extentOf(bytes: Uint8Array): Extent | undefined {
    const info = this.core.ledger.entries.get(bytes)
    if (!info || info.state !== 'applied') return undefined
    if (info.extent) return info.extent
    const parsed = parseEnvelope(bytes)
    if (!parsed.ok) return undefined
    const plaintext = this.core.open(parsed.value)
    if (!plaintext) return undefined
    if (parsed.value.type !== EnvelopeType.Snapshot) {
      const extent = updateExtent(plaintext)
      if (extent) info.extent = extent
      return extent
    }
    const range = snapshotStateRange(plaintext)
    if (!range) return undefined
    info.extent = range.end
    if ([...range.start.values()].some((clock) => clock > 0)) info.start = range.start
    return range.end
  }

  /**
   * What the snapshots this device applied, still in the log, hold together: one extent, as far
   * as their ranges reach from clock 0 (a snapshot sealed in parts holds its state only as a
   * whole).
   */
  private snapshotExtents(): Extent[] {
    const ranges: StateRange[] = []
    for (const bytes of this.core.ledger.snapshotEntries) {
      const end = this.extentOf(bytes)
      if (end) ranges.push({ start: this.core.ledger.entries.get(bytes)?.start ?? new Map(), end })
    }
    return ranges.length === 0 ? [] : [reachOf(ranges)]
  }


  /** Applied entries stayed erased: report, then republish (with backoff while it keeps happening). */
  private onErased(event: { count: number; copies: Uint8Array[] }): void {
    const core = this.core
    if (core.closed) return
    const what = event.count === 1 ? '1 applied entry was' : `${event.count} applied entries were`
    core.emitReject(RejectCode.Erased, `${what} deleted from the shared log without a snapshot that contains them; republishing`)
    core.repairDue = true
    const now = performance.now()
    const base = core.options.repairDelayMs ?? 500
    this.repairBackoff = now - this.lastRepairAt < REPAIR_MAX_MS ? Math.min(this.repairBackoff * 2, REPAIR_MAX_MS) : base
    const wait = Math.max(base / 2, this.lastRepairAt + this.repairBackoff - now)
    if (this.repairTimer) clearTimeout(this.repairTimer)
    this.repairTimer = setTimeout(() => this.repair(event.copies), wait)
    unref(this.repairTimer)
  }

  /**
   * Republish what was erased: a device that can seal pushes a snapshot of everything it holds;
   * one that cannot (a member's registry replica) puts back the authentic envelopes it copied.
   */
  private repair(copies: Uint8Array[]): void {
    const core = this.core
    this.repairTimer = undefined
    if (core.closed) return
    this.lastRepairAt = performance.now()
    if (core.canSeal()) {
      void this.compactor.compactNow().catch(() => undefined)
      return
    }
    if (copies.length === 0) return
    const log = sealedLog(core.outer)
    Y.transact(
      core.outer,
      () => {
        const start = log.length
        log.push(copies)
        for (let i = start; i < log.length; i++) {
          // Record a republished copy of an applied envelope as applied (it is one).
          const bytes = log.get(i)
          const parsed = parseEnvelope(bytes)
          if (parsed.ok) core.ledger.recordCopy(bytes, parsed.value)
        }
      },
      core.sealOrigin,
    )
    core.repairDue = false
  }

  private sweep(): void {
    const core = this.core
    this.sweepTimer = undefined
    if (core.closed) return
    this.lastSweepAt = performance.now()
    const log = sealedLog(core.outer)
    const current = log.toArray()
    const snapshots = this.snapshotExtents()
    let removed = 0
    Y.transact(
      core.outer,
      () => {
        for (let i = current.length - 1; i >= 0; i--) {
          const info = core.ledger.entries.get(current[i]!)
          if (info?.state !== 'rejected') continue
          // A replayed envelope no snapshot here holds may be the only copy a newcomer can get
          // (a read-only device republishing after an erasure): it stays until a compaction.
          if (info.code === RejectCode.Replay && !(info.extent && snapshots.some((s) => extentContains(s, info.extent!)))) continue
          log.delete(i, 1)
          removed++
        }
      },
      core.sealOrigin,
    )
    if (removed > 0) void core.store.compact()
  }
}
