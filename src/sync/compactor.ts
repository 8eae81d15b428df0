/**
 * Compaction of a replica's sealed log: when the log passes the policy, a snapshot (the full inner
 * state plus the seqs it covers) is sealed and every entry this device applied — and every refused
 * one — is deleted, in one outer transaction; the store is rewritten with a fresh checkpoint
 * first. A state larger than {@link SNAPSHOT_PART_BYTES} is sealed as several snapshot envelopes,
 * each with the same coverage and a part of the state cut between items (`src/crdt/cut-state.ts`),
 * so no envelope outgrows a frame a relay or a link accepts (WIRE.md, "Frame sizes"). The same step republishes: after an erasure, a revocation or a narrowing,
 * or when the scope's epoch moved on, a snapshot carries everything this device holds.
 *
 * @module
 */
import * as Y from 'yjs'
import { StorageError } from '../adapters/storage.js'
import { cutState } from '../crdt/cut-state.js'
import { sealedLog } from '../crdt/sealed-log.js'
import { EnvelopeType } from '../crypto/envelope.js'
import { unref } from '../util/timers.js'
import { addSeq } from './applied-ledger.js'
import { PRESSURE_INTERVAL_MS, type ReplicaCore } from './replica-core.js'
import type { CompactionPolicy } from './replica-types.js'
import type { Sealer } from './sealer.js'
import { SeqSet } from './seq-set.js'
import { coverageOverLimits, encodeSnapshot, SNAPSHOT_PART_BYTES } from './snapshot.js'

const MIN_ENTRIES_FOR_BYTE_RULE = 8
/** A due compaction stops waiting for a quiet moment once the log holds this many times `maxEntries`. */
const HARD_ENTRIES_FACTOR = 4

/** Decides when to compact, and compacts. */
export class Compactor {
  private readonly policy: CompactionPolicy
  private bytesSinceSnapshot = 0
  private lastSnapshotBytes = 0
  private idleCompactionTimer: ReturnType<typeof setTimeout> | undefined
  private recompactQueued = false
  /** While true, only a log past the hard limit compacts on the write path (see {@link defer}). */
  private deferred = false
  private deletedContentTimer: ReturnType<typeof setTimeout> | undefined
  private lastDeletedContentCompactAt = -Infinity
  /** Revoked senders whose applied envelopes this device republished (see {@link registryChanged}). */
  private readonly republishedFor = new Set<string>()
  /** `sender/epoch` of removed senders whose current-epoch envelopes this device republished. */
  private readonly republishedUngranted = new Set<string>()

  constructor(
    private readonly core: ReplicaCore,
    private readonly sealer: Sealer,
  ) {
    this.policy = { maxEntries: 256, maxBytes: 4 * 1024 * 1024, idleMs: 250, ...core.options.compaction }
  }

  /** True while a re-compaction is queued. */
  get pending(): boolean {
    return this.recompactQueued || this.deletedContentTimer !== undefined
  }

  /** Stop the timers (closing). */
  stop(): void {
    if (this.idleCompactionTimer) clearTimeout(this.idleCompactionTimer)
    if (this.deletedContentTimer) clearTimeout(this.deletedContentTimer)
  }

  /** Seal what is queued, then compact now, and wait until stored; see `Replica.compactNow`. */
  async compactNow(options: { erasing?: boolean } = {}): Promise<void> {
    const core = this.core
    await this.sealer.whenFlushed()
    if (!core.signer || core.closed) return
    if (options.erasing) core.erasureSeq = Math.max(core.erasureSeq, core.latestOwnSeq())
    await core.seqs.reserve()
    await (this.compact() ?? core.store.whenSaved())
  }

  /** Compact when load found a reason to, or the log is due. */
  async compactIfDue(): Promise<void> {
    const core = this.core
    if (core.repairDue || core.unsealedRestored || core.epochMoved() || this.shouldCompact()) await this.compactNow()
  }

  /**
   * Defer write-path compaction (a device on battery: ARCHITECTURE.md "adapters/glasses") until
   * `defer(false)`, which compacts at once if due. A log past the hard limit still compacts, so a
   * deferral never lets it grow without bound.
   */
  defer(deferred: boolean): void {
    const was = this.deferred
    this.deferred = deferred
    if (was && !deferred && !this.core.closed) {
      this.compactIfDue().catch((error: unknown) => {
        const storageError = error instanceof StorageError ? error : new StorageError('io', 'storage write failed', { cause: error })
        if (!this.core.closed) this.core.storageError(storageError)
      })
    }
  }

  /** This device sealed an update of `bytes`: compact now, once idle, or not yet. */
  afterLocalSeal(bytes: number): void {
    this.bytesSinceSnapshot += bytes
    if (!this.shouldCompact()) return
    if (this.deferred && !this.pastHardLimit()) return
    if ((this.policy.idleMs <= 0 || this.pastHardLimit()) && this.core.seqs.ready) this.compact()?.catch((error: unknown) => this.reportFailure(error))
    else this.compactWhenIdle()
  }

  /** An update of someone else's, of `bytes`, was applied: the log grew. */
  grew(bytes: number): void {
    this.bytesSinceSnapshot += bytes
  }

  /**
   * A snapshot envelope of `bytes` was applied: the byte rule compares against the newest
   * snapshot. `continues` when it is the next part of the same snapshot (same sender, same
   * coverage) as the one before: its size adds up.
   */
  snapshotSeen(bytes: number, continues = false): void {
    this.lastSnapshotBytes = continues ? this.lastSnapshotBytes + bytes : bytes
  }

  /**
   * The registry changed: republish what a sender revoked or removed since may have been alone
   * in carrying, and what was sealed under an epoch that moved on.
   */
  registryChanged(): void {
    const core = this.core
    // What this device applied from a sender revoked since may lie outside the revocation's
    // cutoff (it applied it before it knew): devices that knew in time refused it. A snapshot
    // brings everyone to the same state (the content is the revoked device's stated claims).
    const revoked = core.options.directory.revoked
    const newlyRevoked = revoked ? [...core.ledger.applied.keys()].filter((id) => !this.republishedFor.has(id) && revoked(id)) : []
    if (newlyRevoked.length > 0 && core.canSeal()) {
      for (const id of newlyRevoked) this.republishedFor.add(id)
      this.compactSoon()
    }
    // Likewise for a sender removed from the scope (a newer policy, a racing narrowing) after it
    // sealed under the current epoch: devices that never applied those envelopes hold them until
    // a grant, and a snapshot among them may be the log's only copy of what it covered — it
    // compacted other senders' envelopes away while it held the scope. Republish what is here.
    const ungranted = this.newlyUngranted()
    if (ungranted.length > 0 && core.canSeal()) {
      for (const key of ungranted) this.republishedUngranted.add(key)
      this.compactSoon()
    }
    if (core.epochMoved()) {
      // Envelopes sealed under the older epoch may be refused as stale by devices that moved on
      // long ago: a snapshot under the new epoch carries everything they hold.
      setTimeout(() => {
        if (!core.closed && core.epochMoved()) void this.compactNow().catch(() => undefined)
      }, 0)
    }
  }

  /** Compact on the next macrotask (coalesced): after an erasure raced, or to republish. */
  compactSoon(options: { erasing?: boolean } = {}): void {
    const core = this.core
    if (core.closed) return
    // Kept in the checkpoint, so a restart before it ran (or a load that found the cause) still
    // compacts: `load` ends with a compaction when one is due.
    core.repairDue = true
    if (this.recompactQueued || core.loading) return
    this.recompactQueued = true
    setTimeout(() => {
      this.recompactQueued = false
      if (!core.closed) void this.compactNow(options).catch(() => undefined)
    }, 0)
  }

  /**
   * Content deleted here arrived in an envelope (an edit concurrent with a forget, a snapshot
   * sealed before one): compact so the envelope leaves the log — at most about once a second, so
   * a peer sending such envelopes cannot make this device rewrite its store for each.
   */
  compactForDeletedContent(): void {
    if (this.deletedContentTimer || this.core.closed) return
    const wait = Math.max(0, this.lastDeletedContentCompactAt + PRESSURE_INTERVAL_MS - performance.now())
    this.deletedContentTimer = setTimeout(() => {
      this.deletedContentTimer = undefined
      this.lastDeletedContentCompactAt = performance.now()
      this.compactSoon({ erasing: this.core.erasureSeq > 0 })
    }, wait)
    unref(this.deletedContentTimer)
  }

  /** `sender/epoch` of senders whose applied envelopes a device without them would now hold as not granted. */
  private newlyUngranted(): string[] {
    const core = this.core
    const out: string[] = []
    for (const [senderId, { epoch, seq }] of core.ledger.appliedEpochs) {
      const key = `${senderId}/${epoch}`
      if (senderId === core.signer?.senderId || this.republishedUngranted.has(key)) continue
      if (core.options.directory.resolve(senderId, seq, epoch).status === 'not-granted') out.push(key)
    }
    return out
  }

  private shouldCompact(): boolean {
    if (!this.core.signer) return false
    const length = sealedLog(this.core.outer).length
    if (length > this.policy.maxEntries) return true
    // The byte rule is for a log of many entries outgrowing the state; replacing a handful of
    // big entries (one burst) by a snapshot of the same size would gain nothing.
    return length >= MIN_ENTRIES_FOR_BYTE_RULE && this.bytesSinceSnapshot > Math.max(this.policy.maxBytes, this.lastSnapshotBytes)
  }

  private pastHardLimit(): boolean {
    return (
      sealedLog(this.core.outer).length > this.policy.maxEntries * HARD_ENTRIES_FACTOR ||
      this.bytesSinceSnapshot > Math.max(this.policy.maxBytes, this.lastSnapshotBytes) * HARD_ENTRIES_FACTOR
    )
  }

  /** (Re)start the quiet-time timer: every local flush pushes a due compaction further out. */
  private compactWhenIdle(): void {
    if (this.idleCompactionTimer) clearTimeout(this.idleCompactionTimer)
    this.idleCompactionTimer = setTimeout(() => {
      this.idleCompactionTimer = undefined
      if (this.core.closed || !this.shouldCompact()) return
      // Queued local changes go first (compactNow seals them), so the snapshot covers them.
      // A failed seq reservation: the log stays as it is; the next flush tries again.
      this.compactNow().catch((error: unknown) => this.reportFailure(error))
    }, this.policy.idleMs)
    unref(this.idleCompactionTimer)
  }

  private reportFailure(error: unknown): void {
    const storageError = error instanceof StorageError ? error : new StorageError('io', 'storage write failed', { cause: error })
    if (!this.core.closed) this.core.storageError(storageError)
  }

  /**
   * Push a snapshot covering every seq this device applied and delete, in the same outer
   * transaction, every entry it applied plus entries that can never be applied (refused). Held
   * entries stay. A large state goes in parts, one seq each: when fewer seqs are reserved than
   * parts, it reserves them first and compacts then.
   */
  private compact(): Promise<void> | undefined {
    const core = this.core
    const signer = core.signer
    if (!signer || core.closed || !core.canSeal()) return undefined
    const states = snapshotStates(core.inner)
    if (!core.seqs.hasReserved(states.length)) {
      return core.seqs.reserve(states.length).then(() => this.compact() ?? core.store.whenSaved())
    }
    const ledger = core.ledger
    let coverage = ledger.appliedSeqs()
    // Coverage is a hint; past the format's bounds (a member fragmenting its seqs) list only our own.
    if (coverageOverLimits(coverage) !== undefined) coverage = new Map([[signer.senderId, coverage.get(signer.senderId) ?? new SeqSet()]])
    const seqs = states.map(() => core.seqs.take())
    // After restoring local changes that may never have been sealed, the snapshot also claims its
    // own seqs: no peer has applied those, so none skips the state as redundant.
    if (core.unsealedRestored) for (const seq of seqs) addSeq(coverage, signer.senderId, seq)
    const envelopes = states.map((state, i) => core.seal(EnvelopeType.Snapshot, seqs[i]!, encodeSnapshot({ coverage, state })))
    const log = sealedLog(core.outer)
    const current = log.toArray()
    let removed = 0
    const stored: Uint8Array[] = []
    Y.transact(
      core.outer,
      () => {
        let runEnd = -1
        for (let i = current.length - 1; i >= -1; i--) {
          const deletable = i >= 0 && ledger.isCovered(current[i]!)
          if (deletable && runEnd < 0) runEnd = i
          if (!deletable && runEnd >= 0) {
            log.delete(i + 1, runEnd - i)
            removed += runEnd - i
            runEnd = -1
          }
        }
        for (const envelope of envelopes) stored.push(core.append(envelope))
      },
      core.sealOrigin,
    )
    for (const bytes of current) if (ledger.isCovered(bytes)) ledger.snapshotEntries.delete(bytes)
    stored.forEach((bytes, i) => ledger.recordSealed(bytes, signer.senderId, seqs[i]!, EnvelopeType.Snapshot))
    for (const seq of seqs) core.events.emit('sealed', { scope: core.scope, seq })
    core.repairDue = false
    core.unsealedRestored = false
    this.bytesSinceSnapshot = 0
    this.lastSnapshotBytes = envelopes.reduce((sum, envelope) => sum + envelope.length, 0)
    if (this.idleCompactionTimer) clearTimeout(this.idleCompactionTimer)
    this.idleCompactionTimer = undefined
    const rewritten = core.store.compact({ checkpoint: true })
    core.events.emit('compacted', { scope: core.scope, removed })
    return rewritten
  }
}

/**
 * The inner state for a snapshot: one update when it fits {@link SNAPSHOT_PART_BYTES} (the
 * common case, byte for byte what a single-envelope snapshot always held), else the state cut
 * into parts of at most that size.
 */
function snapshotStates(inner: Y.Doc): Uint8Array[] {
  const whole = Y.encodeStateAsUpdate(inner)
  if (whole.length <= SNAPSHOT_PART_BYTES) return [whole]
  return cutState(inner, SNAPSHOT_PART_BYTES).updates
}
