/**
 * A Replica keeps one scope's inner doc (plaintext, in memory only) and its sealed log (outer
 * doc of envelopes, persisted and synced) in step (WIRE.md "Sealed log").
 *
 * Outgoing: local inner updates are queued and sealed as one envelope per flush (a microtask by
 * default, a short window for streams), appended to the sealed log, stored, and carried by
 * whatever transports are attached to the outer doc.
 * Incoming: every envelope appended by someone else is parsed, its sender resolved (unknown →
 * held, within bounds), verified, decrypted, checked for replay and applied to the inner doc with
 * this replica's remote origin so it is never sealed again. Every refusal is a coded `rejected`
 * event.
 * Compaction: when the log passes a threshold, a snapshot envelope (full inner state + the seqs it
 * covers) is pushed and the entries it covers are deleted, in one outer transaction.
 *
 * **Local authority.** The sealed log is an untrusted exchange medium: anyone in the room can
 * delete, reorder or re-insert its entries with plain Yjs operations. So what this device has
 * applied is kept in its own store — a checkpoint of the inner doc and the seqs applied, sealed
 * at rest ({@link Checkpoint}) — and never rebuilt from what the log holds: deletions change
 * nothing here, before or after a restart, and a replayed envelope is a seq already applied. The
 * seqs a snapshot says it covers are hints for gap detection only, never a reason to refuse
 * another sender's envelope. When entries this device applied vanish from the log without a
 * snapshot that contains them, it reports `Erased` (14) and republishes ({@link ErasureWatch}).
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { StorageError, type StorageAdapter } from '../adapters/storage.js'
import { ClosedError, ScopeAccessError } from '../errors.js'
import { applyNotingLandedDeleted, carriesDeletedContent } from '../crdt/landed-deleted.js'
import { createSealedLogDoc, sealedLog } from '../crdt/sealed-log.js'
import { RejectCode } from '../crypto/codes.js'
import { decryptEnvelope, EnvelopeType, parseEnvelope, sealEnvelope, verifyEnvelope, type ParsedEnvelope } from '../crypto/envelope.js'
import type { ScopeKeyring } from '../crypto/keyring.js'
import { Emitter } from '../util/emitter.js'
import { openCheckpoint, sealCheckpoint, type Checkpoint } from './checkpoint.js'
import { deletedLogEntries, ErasureWatch, extentContains, stateExtent, updateExtent, type Extent } from './erasure.js'
import { DEFAULT_HOLD_LIMITS, HeldEnvelopes, type HoldLimits } from './hold.js'
import { LogStore, STORAGE_ORIGIN } from './log-store.js'
import { MERGE_CHUNK } from './merge.js'
import { MAX_SEQ_RANGES, SeqSet } from './seq-set.js'
import { coverageOverLimits, decodeSnapshot, decodeSnapshotChecked, encodeSnapshot } from './snapshot.js'

/** Transaction origin for local inner writes that should be sealed after a short window (streams). */
export const STREAM_ORIGIN = Symbol('contextsync/stream')

/** What a {@link SenderDirectory} knows about a sender. */
export type SenderStatus =
  | { status: 'known'; signPublicKey: Uint8Array }
  | { status: 'unknown' }
  | { status: 'revoked' }
  | { status: 'not-granted'; signPublicKey: Uint8Array }
  /** The envelope's key epoch is older than the room's current one, past the grace window. */
  | { status: 'stale' }

/** Resolves the signing key of an envelope's sender for one room. */
export interface SenderDirectory {
  /**
   * How to treat an envelope from `senderId` with sequence number `seq` under key `epoch` (a
   * revoked device's envelopes before its revocation cutoff are history and stay valid).
   */
  resolve(senderId: string, seq: number, epoch: number): SenderStatus
  /** True once `senderId` is revoked (optional: directories without revocations omit it). */
  revoked?(senderId: string): boolean
}

/** Who seals this replica's envelopes. Without a signer a replica is read-only. */
export interface ReplicaSigner {
  /** 16-byte sender id written into envelopes. */
  sender: Uint8Array
  /** Hex form of `sender`. */
  senderId: string
  /** Ed25519 secret key that signs the envelopes. */
  signSecretKey: Uint8Array
}

/**
 * When to compact. A snapshot re-encodes the whole inner doc, so its cost grows with the doc, not
 * with the entries it replaces: once the log is due, compaction waits until this device has
 * stopped writing for {@link idleMs} (so a burst or a live stream is never stalled behind it), and
 * runs inline only when the log has grown to four times {@link maxEntries} (or four times the byte
 * budget) without a pause.
 */
export interface CompactionPolicy {
  /** Compaction is due when the log holds more than this many entries. Default 256. */
  maxEntries: number
  /** …or when entries written since the last snapshot exceed this many bytes (and the snapshot). Default 4 MiB. */
  maxBytes: number
  /**
   * Quiet time (no local write sealed) after which a due compaction runs. Default 250 ms; 0 runs
   * it as soon as it is due, on the write path.
   */
  idleMs: number
}

/** Options of {@link Replica}. */
export interface ReplicaOptions {
  scope: string
  roomId: string
  keyring: ScopeKeyring
  directory: SenderDirectory
  storage: StorageAdapter
  /**
   * This device's at-rest key for the room (`DeviceKeyring.atRestKey`): seals the checkpoint of
   * what it applied, which only it can open.
   */
  atRestKey: Uint8Array
  signer?: ReplicaSigner
  /** Delay before sealing ordinary local writes; 0 = next microtask (coalesces a synchronous burst). */
  flushDelayMs?: number
  /** Delay before sealing stream writes (origin {@link STREAM_ORIGIN}). Default 20 ms. */
  streamFlushDelayMs?: number
  /** Seal at once when this many updates are queued. Default 4096. */
  maxBatchUpdates?: number
  compaction?: Partial<CompactionPolicy>
  /** Bounds of the envelopes held for a sender or key that has not arrived. */
  hold?: Partial<HoldLimits>
  /**
   * How long entries deleted without a snapshot that contains them may stay so before they are
   * reported as erased and republished (a relay may deliver a compaction's delete before its
   * snapshot). Default 500 ms; repeated repairs back off up to 5 min.
   */
  repairDelayMs?: number
  /** Called after an envelope from `senderId` was applied (the registry's "last seen"). */
  onApplied?: (senderId: string) => void
}

/** A refused envelope. Never thrown; sync carries on. */
export interface RejectedEvent {
  code: RejectCode
  reason: string
  /** The scope it concerned (`''` when not known, e.g. an import file's unreadable header). */
  scope: string
  /** The room it arrived in (`''` for input that came from no room, e.g. an import file). */
  roomId: string
  senderId?: string
  /**
   * What was refused: a sealed-log envelope (the default when absent), a presence state, a
   * registry statement, or a line of a memory import.
   */
  source?: 'envelope' | 'presence' | 'statement' | 'import'
  /** For imports: the 1-based line of the file. */
  line?: number
}

/** Events of a {@link Replica}. */
export interface ReplicaEvents {
  /** An envelope was refused. */
  rejected: (event: RejectedEvent) => void
  /** An envelope was held until its sender's certificate or its epoch key arrives. */
  held: (event: RejectedEvent) => void
  /** Storing the sealed log failed; the bytes stay queued and are retried. */
  'storage-error': (event: { error: StorageError; scope: string }) => void
  /** A compaction replaced `removed` entries by one snapshot. */
  compacted: (event: { scope: string; removed: number }) => void
  /** This device appended an envelope of its own (an update or a snapshot) with this seq. */
  sealed: (event: { scope: string; seq: number }) => void
}

interface EntryInfo {
  state: 'applied' | 'held' | 'rejected'
  senderId?: string
  seq?: number
  type?: EnvelopeType
  /** The Yjs extent of its content (computed when a deletion needs it; at once for replays). */
  extent?: Extent
  /** Why it was refused. */
  code?: RejectCode
}

const SEQ_BLOCK = 1024
/** Smallest gap between two sweeps or two storage rewrites caused by someone else's deletions. */
const PRESSURE_INTERVAL_MS = 1_000
const REPAIR_MAX_MS = 5 * 60_000
const RETRY_MIN_MS = 250
const RETRY_MAX_MS = 30_000
const MIN_ENTRIES_FOR_BYTE_RULE = 8
/** A due compaction stops waiting for a quiet moment once the log holds this many times `maxEntries`. */
const HARD_ENTRIES_FACTOR = 4
const META_VERSION = 1

/** One scope: inner doc ⇄ sealed log. */
export class Replica {
  /** The plaintext CRDT (in memory only). */
  readonly inner = new Y.Doc({ gc: true })
  /** The sealed log: what storage and transports carry. */
  readonly outer = createSealedLogDoc()
  /** Awareness of the outer doc (carries only encrypted presence). */
  readonly awareness: Awareness
  /** Typed events. */
  readonly events = new Emitter<ReplicaEvents>()
  /** Rejections counted by code. */
  readonly rejections = new Map<RejectCode, number>()

  readonly scope: string
  readonly roomId: string
  private readonly remoteOrigin = Symbol('contextsync/remote')
  private readonly sealOrigin = Symbol('contextsync/seal')
  private readonly store: LogStore
  private readonly entries = new WeakMap<Uint8Array, EntryInfo>()
  private readonly held: HeldEnvelopes
  private readonly holdLimits: HoldLimits
  /** Seqs this device verified and applied itself, by sender: the authority, kept in the checkpoint. */
  private readonly applied = new Map<string, SeqSet>()
  /** Seqs each sender's own snapshots say they cover: hints for gap detection, nothing more. */
  private readonly claims = new Map<string, SeqSet>()
  /** Snapshot entries this device applied that are still in the log (for erasure checks). */
  private readonly snapshotEntries = new Set<Uint8Array>()
  private readonly erasure: ErasureWatch
  private readonly policy: CompactionPolicy
  /** Entries were erased from the log and not republished yet (kept in the checkpoint). */
  private repairDue = false
  /** The checkpoint restored at load held local changes that may never have been sealed. */
  private unsealedRestored = false
  /** Newest epoch this device sealed under in this room. */
  private sealedEpoch = 0
  /** Own seq of the last envelope that erased content (see {@link compactNow}); 0 when none. */
  private erasureSeq = 0
  private recompactQueued = false
  /** Revoked senders whose applied envelopes this device republished (see {@link retryHeld}). */
  private readonly republishedFor = new Set<string>()
  /** Newest epoch (and a seq under it) of what this device applied from each sender, for {@link retryHeld}. */
  private readonly appliedEpochs = new Map<string, { epoch: number; seq: number }>()
  /** `sender/epoch` of removed senders whose current-epoch envelopes this device republished. */
  private readonly republishedUngranted = new Set<string>()
  /** Where this device's newest sealed update ends (see {@link latestOwnTip}), and its seq. */
  private tip = { client: 0, clock: 0, seq: 0 }
  private loading = false
  private repairTimer: ReturnType<typeof setTimeout> | undefined
  private repairBackoff: number
  private lastRepairAt = -Infinity
  private holdTimer: ReturnType<typeof setInterval> | undefined
  private sweepTimer: ReturnType<typeof setTimeout> | undefined
  private lastSweepAt = -Infinity
  private deletedContentTimer: ReturnType<typeof setTimeout> | undefined
  private lastDeletedContentCompactAt = -Infinity
  private lastStorageCompactAt = -Infinity
  private checkpointExtra: (() => Uint8Array) | undefined
  private restoredExtraBytes: Uint8Array | undefined
  /** Local updates not sealed yet — kept only while the batch is small (see {@link encodeBatch}). */
  private pending: Uint8Array[] = []
  private pendingCount = 0
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = []
  private flushTimer: ReturnType<typeof setTimeout> | undefined
  private flushAt = Infinity
  private microtaskQueued = false
  private reserving: Promise<void> | undefined
  private reserveRetryTimer: ReturnType<typeof setTimeout> | undefined
  private reserveRetryDelay = RETRY_MIN_MS
  private nextSeq = 1
  private reservedUpTo = 0
  private bytesSinceSnapshot = 0
  /** This client's clock in the inner doc at the last flush. */
  private sealedClock = 0
  private lastSnapshotBytes = 0
  private storageCompactQueued = false
  private idleCompactionTimer: ReturnType<typeof setTimeout> | undefined
  private closed = false

  constructor(private readonly options: ReplicaOptions) {
    this.scope = options.scope
    this.roomId = options.roomId
    this.awareness = new Awareness(this.outer)
    // Awareness would otherwise publish an empty plaintext state for this client.
    this.awareness.setLocalState(null)
    this.policy = { maxEntries: 256, maxBytes: 4 * 1024 * 1024, idleMs: 250, ...options.compaction }
    this.holdLimits = { ...DEFAULT_HOLD_LIMITS, ...options.hold }
    this.held = new HeldEnvelopes(this.holdLimits)
    this.repairBackoff = options.repairDelayMs ?? 500
    this.erasure = new ErasureWatch(
      {
        extentOf: (bytes) => this.extentOf(bytes),
        snapshotExtents: () => this.snapshotExtents(),
        erased: (event) => this.onErased(event),
      },
      // Half the repair delay: a peer that saw the same erasure republishes only after the full
      // delay, so its snapshot cannot make this device's check pass and hide the report.
      (options.repairDelayMs ?? 500) / 2,
    )
    this.store = new LogStore(options.storage, options.roomId, this.outer, {
      onError: (error) => this.events.emit('storage-error', { error, scope: this.scope }),
      checkpoint: () => this.sealedCheckpoint(),
    })
  }

  /** True when this replica can write (it has a signer). */
  get writable(): boolean {
    return this.options.signer !== undefined
  }

  /**
   * Load from storage — the checkpoint first (what this device had applied), then the sealed log
   * (only what arrived after the checkpoint is opened) — and start listening.
   */
  async load(options: { compact?: boolean } = {}): Promise<void> {
    const checkpoints = await this.store.loadCheckpoints()
    await this.store.load()
    this.restore(checkpoints)
    const meta = await this.store.loadMeta()
    const reserved = meta ? decodeMeta(meta) : 0
    if (reserved === undefined) {
      // The record is plain bytes in the store (WIRE.md "Device store layout"): damaged, it says
      // nothing about which seqs were reserved. Continue a block past the highest own seq applied
      // here, as after a crash — never at a seq that is not a safe integer.
      const error = new StorageError('corrupt', `the seq reservation of room ${this.roomId} is unreadable; continuing one block past the last seq stored`)
      this.events.emit('storage-error', { error, scope: this.scope })
    } else this.reservedUpTo = reserved
    const log = sealedLog(this.outer)
    this.loading = true
    try {
      for (const bytes of log.toArray()) this.receive(bytes)
    } finally {
      this.loading = false
    }
    this.dropCoveredByOwnSnapshot(log)
    const own = this.options.signer && this.applied.get(this.options.signer.senderId)
    // Never reuse a seq: continue after everything applied and everything reserved before a restart.
    this.nextSeq = Math.max(own ? own.max() : 0, this.reservedUpTo) + 1 + (reserved === undefined ? SEQ_BLOCK : 0)
    this.reservedUpTo = this.nextSeq - 1
    log.observe((_event, transaction) => {
      if (transaction.origin === this.sealOrigin) return
      for (const bytes of envelopesAddedIn(transaction, log)) this.receive(bytes)
    })
    this.outer.on('afterTransaction', (transaction: Y.Transaction) => this.onOuterTransaction(transaction, log))
    this.inner.on('update', this.innerUpdateListener)
    this.holdTimer = setInterval(() => this.expireHeld(), Math.max(50, Math.min(60_000, this.holdLimits.timeoutMs / 4)))
    ;(this.holdTimer as { unref?: () => void }).unref?.()
    // The registry's replica is loaded before its statements tell the keyring the current epoch:
    // it compacts once they do (`compactIfDue`), never under a superseded key.
    if (options.compact !== false) await this.compactIfDue()
  }

  /**
   * Bytes the replica's owner asked to keep with the checkpoint ({@link keepWithCheckpoint}), as
   * restored by {@link load}; `undefined` when there were none.
   */
  get restoredExtra(): Uint8Array | undefined {
    return this.restoredExtraBytes
  }

  /**
   * Keep `extra()` with every checkpoint of this replica (the registry keeps the statements this
   * device relies on that live outside the sealed log, such as its lockboxes).
   */
  keepWithCheckpoint(extra: () => Uint8Array): void {
    this.checkpointExtra = extra
  }

  /** Write a checkpoint now (with a rewrite of the stored log); resolves once stored. */
  checkpoint(): Promise<void> {
    return this.store.compact({ checkpoint: true })
  }

  /**
   * Resolves once every local change made so far is sealed and durably stored.
   * Rejects with a `StorageError` when storing failed (the change stays queued and is retried),
   * and with a `ClosedError` once the replica is closed (the device closed or lost the scope)
   * before they were sealed.
   */
  whenFlushed(): Promise<void> {
    // Closed (the device closed, or lost the scope): a change made now was never recorded.
    if (this.closed) return Promise.reject(new ClosedError(`scope '${this.scope}' is closed on this device`))
    if (this.pendingCount === 0) return this.store.whenSaved()
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  /**
   * Seal what is queued, then compact now, and wait until stored. With `erasing` (after `forget`,
   * purge, retention, `clear`) the last envelope sealed before — the one carrying the deletion —
   * is remembered: a snapshot another device sealed without having applied it may still carry the
   * erased text, so its arrival triggers another compaction (which deletes it).
   */
  async compactNow(options: { erasing?: boolean } = {}): Promise<void> {
    await this.whenFlushed()
    if (!this.options.signer || this.closed) return
    if (options.erasing) this.erasureSeq = Math.max(this.erasureSeq, this.latestOwnSeq())
    await this.reserveSeqs()
    await (this.compact() ?? this.store.whenSaved())
  }

  /** Load-time compaction, for a replica loaded with `{ compact: false }` once its keys are known. */
  async compactIfDue(): Promise<void> {
    if (this.repairDue || this.unsealedRestored || this.epochMoved() || this.shouldCompact()) await this.compactNow()
  }

  /**
   * The registry changed: try again to open envelopes held for an unknown sender, grant or epoch
   * key, seal what waited for a key, and republish under a newer epoch once it can seal there.
   */
  retryHeld(): void {
    if (this.closed) return
    if (this.pendingCount > 0) this.scheduleFlush(0, false)
    for (const { bytes, envelope, since } of this.held.takeAll()) {
      this.entries.delete(bytes)
      this.process(bytes, envelope, since)
    }
    // What this device applied from a sender revoked since may lie outside the revocation's
    // cutoff (it applied it before it knew): devices that knew in time refused it. A snapshot
    // brings everyone to the same state (the content is the revoked device's stated claims).
    const revoked = this.options.directory.revoked
    const newlyRevoked = revoked ? [...this.applied.keys()].filter((id) => !this.republishedFor.has(id) && revoked(id)) : []
    if (newlyRevoked.length > 0 && this.canSeal()) {
      for (const id of newlyRevoked) this.republishedFor.add(id)
      this.compactSoon()
    }
    // Likewise for a sender removed from the scope (a newer policy, a racing narrowing) after it
    // sealed under the current epoch: devices that never applied those envelopes hold them until
    // a grant, and a snapshot among them may be the log's only copy of what it covered — it
    // compacted other senders' envelopes away while it held the scope. Republish what is here.
    const ungranted = this.newlyUngranted()
    if (ungranted.length > 0 && this.canSeal()) {
      for (const key of ungranted) this.republishedUngranted.add(key)
      this.compactSoon()
    }
    if (this.epochMoved()) {
      // Envelopes sealed under the older epoch may be refused as stale by devices that moved on
      // long ago: a snapshot under the new epoch carries everything they hold.
      setTimeout(() => {
        if (!this.closed && this.epochMoved()) void this.compactNow().catch(() => undefined)
      }, 0)
    }
  }

  /**
   * True while this replica still has upkeep queued: a check or repair of erased entries, a sweep
   * of refused ones, a re-compaction after an erasure, or deletions waiting for a store rewrite.
   * Tests and tools wait for it to clear before inspecting stores.
   */
  get maintenancePending(): boolean {
    return (
      this.erasure.pending ||
      this.repairTimer !== undefined ||
      this.sweepTimer !== undefined ||
      this.deletedContentTimer !== undefined ||
      this.recompactQueued ||
      this.storageCompactQueued ||
      this.store.deletionsPending
    )
  }

  /** Number of held envelopes (diagnostics). */
  get heldCount(): number {
    return this.held.size
  }

  /** The held envelopes — sender, epoch, seq and the code they wait on (diagnostics; no content). */
  heldEnvelopes(): Array<{ senderId: string; epoch: number; seq: number; code: number }> {
    return this.held.describe()
  }

  /**
   * Where this device's newest sealed update ends in the inner doc — its Yjs client id and the
   * clock past its last struct (`clock` 0: none yet). Announced with the seq, so a peer can tell it
   * holds that content even if the envelope was compacted away before it arrived.
   */
  latestOwnTip(): { client: number; clock: number } {
    return { client: this.tip.client, clock: this.tip.clock }
  }

  /** True when the inner doc holds every struct of `client` below `clock`. */
  holdsContent(client: number, clock: number): boolean {
    return Y.getState(this.inner.store, client) >= clock
  }

  /** The highest seq this device has sealed into the log (0 when none, or read-only). */
  latestOwnSeq(): number {
    const signer = this.options.signer
    return signer ? (this.applied.get(signer.senderId)?.max() ?? 0) : 0
  }

  /**
   * True while the inner doc holds updates Yjs could not integrate yet because an earlier update is
   * missing: something was applied that depends on something that has not arrived.
   */
  hasPendingUpdates(): boolean {
    return this.inner.store.pendingStructs !== null || this.inner.store.pendingDs !== null
  }

  /**
   * True when `seq` of `senderId` has been applied here, or a snapshot *of that sender* says it
   * covers it (a hint for gap detection: what other senders' snapshots claim is not counted).
   */
  hasApplied(senderId: string, seq: number): boolean {
    return this.applied.get(senderId)?.has(seq) === true || this.claims.get(senderId)?.has(seq) === true
  }

  /** The seqs this device verified and applied itself, by sender (a copy). */
  appliedSeqs(): Map<string, SeqSet> {
    return copySeqMap(this.applied)
  }

  /** Flush, wait for storage, and stop. The docs are destroyed. */
  async close(): Promise<void> {
    if (this.closed) return
    if (this.flushTimer) clearTimeout(this.flushTimer)
    if (this.reserveRetryTimer) clearTimeout(this.reserveRetryTimer)
    if (this.idleCompactionTimer) clearTimeout(this.idleCompactionTimer)
    if (this.repairTimer) clearTimeout(this.repairTimer)
    if (this.sweepTimer) clearTimeout(this.sweepTimer)
    if (this.deletedContentTimer) clearTimeout(this.deletedContentTimer)
    if (this.holdTimer) clearInterval(this.holdTimer)
    // Deletions not yet checked (or a repair not yet run) must survive the restart: the closing
    // rewrite stores the deletions, so the checkpoint it writes says a repair is due.
    if (this.erasure.pending) this.repairDue = true
    this.erasure.close()
    if (this.pendingCount > 0 && this.options.signer) {
      await this.reserveSeqs()
      this.flushNow()
    }
    // Changes that could not be sealed (no key of the current epoch yet) live only in the inner
    // doc: a checkpoint keeps them (marked unsealed, sealed when the scope reopens). A repair
    // still due is kept the same way, so the reopened device republishes.
    const unsealed = this.pendingCount > 0
    if ((this.repairDue || unsealed) && this.options.signer) await this.store.compact({ checkpoint: true }).catch(() => undefined)
    // Whoever waits for those changes to be sealed learns it will not happen on this instance.
    if (this.waiters.length > 0) {
      this.failWaiters(new ClosedError(`scope '${this.scope}' closed before ${this.pendingCount} local change(s) could be sealed (no key of the current epoch yet); they are kept locally and sealed if the scope reopens`))
    }
    this.closed = true
    await this.store.close()
    this.awareness.destroy()
    this.inner.destroy()
    this.outer.destroy()
    this.events.clear()
  }

  // ── outgoing ────────────────────────────────────────────────────────────────

  private readonly innerUpdateListener = (update: Uint8Array, origin: unknown): void => this.onInnerUpdate(update, origin)

  /**
   * Counts local transactions while a batch is past {@link MERGE_CHUNK}. Such a batch is
   * re-encoded from the doc when sealed (see {@link encodeBatch}), so the per-transaction updates
   * Yjs would encode for an 'update' listener are thrown away: in a burst, listening on
   * 'afterTransaction' instead saves that encoding (≈ 1/10 of a burst write's CPU).
   */
  private readonly countLocalTransaction = (transaction: Y.Transaction): void => {
    if (transaction.origin === this.remoteOrigin || this.closed || !hasContent(transaction)) return
    this.onInnerUpdate(undefined, transaction.origin)
  }

  private countingTransactions = false

  /** Listen for local changes by counting transactions (`true`) or by their Yjs updates. */
  private countTransactions(on: boolean): void {
    this.countingTransactions = on
    if (on) {
      this.inner.off('update', this.innerUpdateListener)
      this.inner.on('afterTransaction', this.countLocalTransaction)
    } else {
      this.inner.off('afterTransaction', this.countLocalTransaction)
      this.inner.on('update', this.innerUpdateListener)
    }
  }

  /** Local changes are queued; `update` is undefined when only counted (see above). */
  private onInnerUpdate(update: Uint8Array | undefined, origin: unknown): void {
    if (origin === this.remoteOrigin || this.closed) return
    if (!this.options.signer) {
      // A read-only replica must not diverge silently from what it can publish.
      this.emitReject(RejectCode.NotGranted, 'local write to a read-only replica was not sealed')
      return
    }
    this.pendingCount++
    // Keep single updates only while every queued change has one and the batch is small.
    if (update !== undefined && this.pendingCount === this.pending.length + 1 && this.pendingCount <= MERGE_CHUNK) {
      this.pending.push(update)
    } else {
      this.pending.length = 0
    }
    // Switch inside this transaction's 'update' event: its 'afterTransaction' already fired, so
    // from the next transaction on each is counted exactly once.
    if (this.pendingCount > MERGE_CHUNK && !this.countingTransactions) this.countTransactions(true)
    if (this.pendingCount >= (this.options.maxBatchUpdates ?? 4096)) {
      this.scheduleFlush(0, true)
    } else {
      const delay = origin === STREAM_ORIGIN ? (this.options.streamFlushDelayMs ?? 20) : (this.options.flushDelayMs ?? 0)
      this.scheduleFlush(delay, false)
    }
  }

  private scheduleFlush(delayMs: number, now: boolean): void {
    if (now && this.reservedUpTo >= this.nextSeq) {
      this.flushNow()
      return
    }
    if (delayMs <= 0) {
      if (this.microtaskQueued) return
      this.microtaskQueued = true
      queueMicrotask(() => {
        this.microtaskQueued = false
        void this.flushSoon()
      })
      return
    }
    const at = Date.now() + delayMs
    if (at >= this.flushAt) return
    if (this.flushTimer) clearTimeout(this.flushTimer)
    this.flushAt = at
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.flushAt = Infinity
      void this.flushSoon()
    }, delayMs)
  }

  private async flushSoon(): Promise<void> {
    if (this.closed || this.pendingCount === 0) return
    if (this.reservedUpTo < this.nextSeq) {
      try {
        await this.reserveSeqs()
      } catch (error) {
        // Without a durable seq reservation sealing could reuse a seq after a crash, so the
        // changes stay queued (readable locally) and sealing is retried with backoff.
        this.failWaiters(error)
        const storageError = error instanceof StorageError ? error : new StorageError('io', 'storage write failed', { cause: error })
        this.events.emit('storage-error', { error: storageError, scope: this.scope })
        this.retryFlushLater()
        return
      }
    }
    this.reserveRetryDelay = RETRY_MIN_MS
    this.flushNow()
  }

  private retryFlushLater(): void {
    if (this.closed || this.reserveRetryTimer) return
    this.reserveRetryTimer = setTimeout(() => {
      this.reserveRetryTimer = undefined
      void this.flushSoon()
    }, this.reserveRetryDelay)
    this.reserveRetryDelay = Math.min(this.reserveRetryDelay * 2, RETRY_MAX_MS)
  }

  /** True when this device holds the key of the epoch it would seal under now. */
  canSeal(): boolean {
    return this.options.signer !== undefined && this.options.keyring.sealingKey(this.scope) !== undefined
  }

  private flushNow(): void {
    const signer = this.options.signer
    if (!signer || this.pendingCount === 0 || this.closed) return
    // A new epoch can be announced before its lockbox arrives: keep the changes queued until
    // the key is here (retryHeld() flushes again when keys change).
    if (!this.canSeal()) return
    if (this.flushTimer) {
      clearTimeout(this.flushTimer)
      this.flushTimer = undefined
      this.flushAt = Infinity
    }
    const updates = this.pending
    const count = this.pendingCount
    const waiters = this.waiters
    this.pending = []
    this.pendingCount = 0
    this.waiters = []
    const seq = this.nextSeq++
    const envelope = this.seal(EnvelopeType.Update, seq, this.encodeBatch(updates, count))
    if (this.sealedClock > 0) this.tip = { client: this.inner.clientID, clock: this.sealedClock, seq }
    this.entries.set(this.append(envelope), { state: 'applied', senderId: signer.senderId, seq, type: EnvelopeType.Update })
    this.markApplied(signer.senderId, seq)
    this.events.emit('sealed', { scope: this.scope, seq })
    this.bytesSinceSnapshot += envelope.length
    if (this.shouldCompact()) {
      if ((this.policy.idleMs <= 0 || this.pastHardLimit()) && this.reservedUpTo >= this.nextSeq) void this.compact()
      else this.compactWhenIdle()
    }
    this.store.whenSaved().then(
      () => waiters.forEach((w) => w.resolve()),
      (error: unknown) => waiters.forEach((w) => w.reject(error)),
    )
  }

  /**
   * One update for a batch of local updates. Small batches are merged; a large batch (a burst)
   * would make `Y.mergeUpdates` superlinear, and a batch with counted transactions (see
   * {@link countLocalTransaction}) lacks some single updates, so these are instead re-encoded from
   * the doc: every local update is a transaction of this doc's own client, so the batch's structs
   * are exactly this client's structs since the last flush. That encoding carries the doc's whole
   * delete set — idempotent, and amortised over the burst.
   */
  private encodeBatch(updates: Uint8Array[], count: number): Uint8Array {
    const sealedClock = this.sealedClock
    this.sealedClock = clockOf(this.inner)
    if (this.countingTransactions) {
      // Back to single updates for the next batch — after the current Yjs transaction has
      // finished (a microtask), so no transaction is both counted and delivered as an update.
      queueMicrotask(() => {
        if (this.countingTransactions && !this.closed) this.countTransactions(false)
      })
    }
    if (updates.length === count) return count === 1 ? updates[0]! : Y.mergeUpdates(updates)
    const target = Y.decodeStateVector(Y.encodeStateVector(this.inner))
    target.set(this.inner.clientID, sealedClock)
    return Y.encodeStateAsUpdate(this.inner, Y.encodeStateVector(target))
  }

  /**
   * Append an envelope to the log and return the array's own copy of it (Yjs copies binary
   * content on insert), which is the object later reads and compaction see.
   */
  private append(envelope: Uint8Array): Uint8Array {
    const log = sealedLog(this.outer)
    let stored = envelope
    Y.transact(
      this.outer,
      () => {
        log.push([envelope])
        stored = log.get(log.length - 1)
      },
      this.sealOrigin,
    )
    return stored
  }

  private failWaiters(error: unknown): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w.reject(error)
  }

  private seal(type: EnvelopeType, seq: number, plaintext: Uint8Array): Uint8Array {
    const signer = this.options.signer!
    const sealing = this.options.keyring.sealingKey(this.scope)
    if (!sealing) throw new ScopeAccessError(`no sealing key for scope ${this.scope}`)
    const { epoch, key } = sealing
    this.sealedEpoch = Math.max(this.sealedEpoch, epoch)
    return sealEnvelope({
      roomId: this.roomId,
      type,
      epoch,
      seq,
      sender: signer.sender,
      signSecretKey: signer.signSecretKey,
      key,
      plaintext,
    })
  }

  /** Persist a new block of seqs before using any of it, so a crash never leads to seq reuse. */
  private reserveSeqs(): Promise<void> {
    if (this.reservedUpTo >= this.nextSeq + 1) return Promise.resolve()
    this.reserving ??= (async () => {
      const upTo = this.nextSeq + SEQ_BLOCK
      await this.store.saveMeta(encodeMeta(upTo))
      this.reservedUpTo = upTo
    })().finally(() => {
      this.reserving = undefined
    })
    return this.reserving
  }

  // ── compaction ──────────────────────────────────────────────────────────────

  private shouldCompact(): boolean {
    if (!this.options.signer) return false
    const length = sealedLog(this.outer).length
    if (length > this.policy.maxEntries) return true
    // The byte rule is for a log of many entries outgrowing the state; replacing a handful of
    // big entries (one burst) by a snapshot of the same size would gain nothing.
    return length >= MIN_ENTRIES_FOR_BYTE_RULE && this.bytesSinceSnapshot > Math.max(this.policy.maxBytes, this.lastSnapshotBytes)
  }

  private pastHardLimit(): boolean {
    return (
      sealedLog(this.outer).length > this.policy.maxEntries * HARD_ENTRIES_FACTOR ||
      this.bytesSinceSnapshot > Math.max(this.policy.maxBytes, this.lastSnapshotBytes) * HARD_ENTRIES_FACTOR
    )
  }

  /** (Re)start the quiet-time timer: every local flush pushes a due compaction further out. */
  private compactWhenIdle(): void {
    if (this.idleCompactionTimer) clearTimeout(this.idleCompactionTimer)
    this.idleCompactionTimer = setTimeout(() => {
      this.idleCompactionTimer = undefined
      if (this.closed || !this.shouldCompact()) return
      // Queued local changes go first (compactNow seals them), so the snapshot covers them.
      this.compactNow().catch((error: unknown) => {
        // A failed seq reservation: the log stays as it is; the next flush tries again.
        const storageError = error instanceof StorageError ? error : new StorageError('io', 'storage write failed', { cause: error })
        if (!this.closed) this.events.emit('storage-error', { error: storageError, scope: this.scope })
      })
    }, this.policy.idleMs)
    ;(this.idleCompactionTimer as { unref?: () => void }).unref?.()
  }

  /**
   * Push a snapshot covering every seq this device applied and delete, in the same outer
   * transaction, every entry it applied plus entries that can never be applied (refused). Held
   * entries stay.
   */
  private compact(): Promise<void> | undefined {
    const signer = this.options.signer
    if (!signer || this.closed || !this.canSeal()) return undefined
    let coverage = this.appliedSeqs()
    // Coverage is a hint; past the format's bounds (a member fragmenting its seqs) list only our own.
    if (coverageOverLimits(coverage) !== undefined) coverage = new Map([[signer.senderId, coverage.get(signer.senderId) ?? new SeqSet()]])
    const seq = this.nextSeq++
    // After restoring local changes that may never have been sealed, the snapshot also claims its
    // own seq: no peer has applied that, so none skips the state as redundant.
    if (this.unsealedRestored) addSeq(coverage, signer.senderId, seq)
    const envelope = this.seal(
      EnvelopeType.Snapshot,
      seq,
      encodeSnapshot({ coverage, state: Y.encodeStateAsUpdate(this.inner) }),
    )
    const log = sealedLog(this.outer)
    const current = log.toArray()
    let removed = 0
    let stored = envelope
    Y.transact(
      this.outer,
      () => {
        let runEnd = -1
        for (let i = current.length - 1; i >= -1; i--) {
          const deletable = i >= 0 && this.isCovered(current[i]!)
          if (deletable && runEnd < 0) runEnd = i
          if (!deletable && runEnd >= 0) {
            log.delete(i + 1, runEnd - i)
            removed += runEnd - i
            runEnd = -1
          }
        }
        stored = this.append(envelope)
      },
      this.sealOrigin,
    )
    for (const bytes of current) if (this.isCovered(bytes)) this.snapshotEntries.delete(bytes)
    this.entries.set(stored, { state: 'applied', senderId: signer.senderId, seq, type: EnvelopeType.Snapshot })
    this.snapshotEntries.add(stored)
    this.markApplied(signer.senderId, seq)
    this.events.emit('sealed', { scope: this.scope, seq })
    this.repairDue = false
    this.unsealedRestored = false
    this.bytesSinceSnapshot = 0
    this.lastSnapshotBytes = envelope.length
    if (this.idleCompactionTimer) clearTimeout(this.idleCompactionTimer)
    this.idleCompactionTimer = undefined
    const rewritten = this.store.compact({ checkpoint: true })
    this.events.emit('compacted', { scope: this.scope, removed })
    return rewritten
  }

  /**
   * Whether a compaction by this device may delete the entry: one it applied (its snapshot holds
   * the content, whatever other snapshots claim) or one that can never apply.
   */
  private isCovered(bytes: Uint8Array): boolean {
    const state = this.entries.get(bytes)?.state
    return state === 'applied' || state === 'rejected'
  }

  /**
   * Someone else deleted entries: rewrite local storage (checkpoint first, see `LogStore`) so
   * deleted envelopes leave the disk too — at once, but at most about once a second, so a peer
   * deleting entry after entry cannot make this device rewrite its store for each.
   */
  private queueStorageCompaction(): void {
    if (this.storageCompactQueued || this.closed) return
    this.storageCompactQueued = true
    const wait = Math.max(0, this.lastStorageCompactAt + PRESSURE_INTERVAL_MS - performance.now())
    setTimeout(() => {
      this.storageCompactQueued = false
      this.lastStorageCompactAt = performance.now()
      if (!this.closed) void this.store.compact()
    }, wait)
  }

  // ── incoming ────────────────────────────────────────────────────────────────

  private receive(bytes: Uint8Array): void {
    if (this.entries.has(bytes)) return
    const parsed = parseEnvelope(bytes)
    if (!parsed.ok) return this.rejectEntry(bytes, parsed.code, parsed.reason)
    this.process(bytes, parsed.value)
  }

  /** Check and apply one parsed envelope; `heldSince` is set when it is retried from the hold. */
  private process(bytes: Uint8Array, envelope: ParsedEnvelope, heldSince?: number): void {
    const senderId = envelope.senderId
    if (envelope.type === EnvelopeType.Presence) {
      return this.rejectEntry(bytes, RejectCode.UnknownType, 'presence envelope in a sealed log', senderId)
    }
    if (this.loading && this.applied.get(senderId)?.has(envelope.seq)) {
      // Applied in an earlier session: the checkpoint holds its content already.
      return this.recordApplied(bytes, envelope)
    }
    const sender = this.options.directory.resolve(senderId, envelope.seq, envelope.epoch)
    if (sender.status === 'unknown') {
      return this.holdEntry(bytes, envelope, RejectCode.UnknownSender, 'sender not certified yet', true, heldSince)
    }
    if (sender.status === 'revoked') return this.rejectEntry(bytes, RejectCode.RevokedSender, 'sender revoked', senderId)
    if (sender.status === 'stale') {
      return this.rejectEntry(bytes, RejectCode.StaleEpoch, `epoch ${envelope.epoch} is past its grace window`, senderId)
    }
    // Signature before anything is held for a grant or key: only an authentic envelope is worth it.
    if (!verifyEnvelope(envelope, this.roomId, sender.signPublicKey)) {
      return this.rejectEntry(bytes, RejectCode.BadSignature, 'envelope signature does not verify', senderId)
    }
    // Grants can arrive after the envelopes they allow (rooms sync independently): hold, not drop.
    if (sender.status === 'not-granted') {
      return this.holdEntry(bytes, envelope, RejectCode.NotGranted, 'sender not granted (yet)', false, heldSince)
    }
    const keys = this.options.keyring.openingKeys(this.scope, envelope.epoch)
    if (keys.length === 0) {
      return this.holdEntry(bytes, envelope, RejectCode.UnknownEpoch, `no key for epoch ${envelope.epoch}`, false, heldSince)
    }
    const plaintext = decryptWithAny(envelope, this.roomId, keys)
    if (!plaintext) {
      // Authentic but sealed under a key this device lacks: another owner may have started the
      // same epoch concurrently, and that start's key is on its way. Held (bounded, as if
      // unverified: a member could seal junk); refused with 9 once the hold time passes.
      return this.holdEntry(bytes, envelope, RejectCode.BadCiphertext, 'none of the epoch\'s keys opens it (yet)', true, heldSince)
    }
    // Checked after authentication so a tampered copy of an applied envelope is reported as
    // tampering, and only a genuine re-delivery counts as a replay. Only seqs this device applied
    // itself count: a snapshot's coverage claims never make it refuse another sender's envelope.
    const applied = this.applied.get(senderId)
    if (applied?.has(envelope.seq)) {
      // A replay may carry text forgotten since: swept once a snapshot in the log holds its content.
      const extent = envelope.type === EnvelopeType.Snapshot ? snapshotStateExtent(plaintext) : updateExtent(plaintext)
      return this.rejectEntry(bytes, RejectCode.Replay, `seq ${envelope.seq} already applied`, senderId, extent)
    }
    // Honest senders add about one range per restart; a sender scattering its seqs to bloat every
    // device's bookkeeping (and checkpoint) is refused once its set reaches the format's bound.
    if (applied && applied.rangeCount() >= MAX_SEQ_RANGES && !applied.has(envelope.seq - 1) && !applied.has(envelope.seq + 1)) {
      return this.rejectEntry(bytes, RejectCode.BadPayload, `seq ${envelope.seq} would pass the ${MAX_SEQ_RANGES} ranges kept per sender`, senderId)
    }

    if (envelope.type === EnvelopeType.Update) {
      const outcome = this.applyRemote(plaintext)
      if (outcome === 'failed') {
        return this.rejectEntry(bytes, RejectCode.BadPayload, 'update does not apply', senderId)
      }
      // Written concurrently with a deletion here (an edit of a memory this device forgot): the
      // doc shows none of it, but the envelope holds the text — compact it away as an erasure.
      if (outcome === 'landed-deleted') this.compactForDeletedContent()
      this.bytesSinceSnapshot += bytes.length
      // One of this device's own (after a restart, or copied back by a peer): where it ends.
      if (senderId === this.options.signer?.senderId && envelope.seq > this.tip.seq) this.noteOwnTip(plaintext, envelope.seq)
    } else {
      const decoded = decodeSnapshotChecked(plaintext)
      if (!decoded.ok) return this.rejectEntry(bytes, decoded.code, `snapshot: ${decoded.reason}`, senderId)
      const snapshot = decoded.value
      // A peer that has itself applied everything the snapshot covers gains nothing from its
      // state: anything else in it was sealed (or will be) in an envelope of its own.
      const redundant = [...snapshot.coverage].every(([s, seqs]) => this.applied.get(s)?.covers(seqs) === true)
      // (No landed-deleted check: a snapshot state carries its own deletions as GC structs, which
      // would make every snapshot look suspicious; `carriesDeletedContent` below checks it.)
      if (!redundant && this.applyRemote(snapshot.state, false) === 'failed') {
        return this.rejectEntry(bytes, RejectCode.BadPayload, 'snapshot state does not apply', senderId)
      }
      // What a sender's snapshot says about *its own* seqs is a hint for gap detection; what it
      // claims about other senders' is not used at all (it could not be checked).
      const own = snapshot.coverage.get(senderId)
      if (own) addSeqs(this.claims, senderId, own)
      this.lastSnapshotBytes = bytes.length
      // Sealed without this device's last erasure: it may carry the erased text.
      const signer = this.options.signer
      if (signer && this.erasureSeq > 0 && senderId !== signer.senderId && snapshot.coverage.get(signer.senderId)?.has(this.erasureSeq) !== true) {
        this.compactSoon({ erasing: true })
      } else if (signer && senderId !== signer.senderId && !this.coversApplied(snapshot.coverage) && carriesDeletedContent(this.inner, snapshot.state)) {
        // Sealed without something this device applied — perhaps another device's forget — and
        // it carries text deleted here: compact it away (whoever forgot may never come back).
        this.compactForDeletedContent()
      }
    }
    this.recordApplied(bytes, envelope)
    this.options.onApplied?.(senderId)
  }

  /** `sender/epoch` of senders whose applied envelopes a device without them would now hold as not granted. */
  private newlyUngranted(): string[] {
    const out: string[] = []
    for (const [senderId, { epoch, seq }] of this.appliedEpochs) {
      const key = `${senderId}/${epoch}`
      if (senderId === this.options.signer?.senderId || this.republishedUngranted.has(key)) continue
      if (this.options.directory.resolve(senderId, seq, epoch).status === 'not-granted') out.push(key)
    }
    return out
  }

  /** True when `coverage` includes every seq this device applied (the sealer saw all of it). */
  private coversApplied(coverage: Map<string, SeqSet>): boolean {
    for (const [sender, seqs] of this.applied) if (coverage.get(sender)?.covers(seqs) !== true) return false
    return true
  }

  /**
   * Content deleted here arrived in an envelope (an edit concurrent with a forget, a snapshot
   * sealed before one): compact so the envelope leaves the log — at most about once a second, so
   * a peer sending such envelopes cannot make this device rewrite its store for each.
   */
  private compactForDeletedContent(): void {
    if (this.deletedContentTimer || this.closed) return
    const wait = Math.max(0, this.lastDeletedContentCompactAt + PRESSURE_INTERVAL_MS - performance.now())
    this.deletedContentTimer = setTimeout(() => {
      this.deletedContentTimer = undefined
      this.lastDeletedContentCompactAt = performance.now()
      this.compactSoon({ erasing: this.erasureSeq > 0 })
    }, wait)
    ;(this.deletedContentTimer as { unref?: () => void }).unref?.()
  }

  /** Our own update carries structs of one client: ours when we sealed it. */
  private noteOwnTip(update: Uint8Array, seq: number): void {
    const extent = updateExtent(update)
    if (!extent || extent.size !== 1) return
    for (const [client, clock] of extent) this.tip = { client, clock, seq }
  }

  /** Compact on the next macrotask (coalesced): after an erasure raced, or to republish. */
  private compactSoon(options: { erasing?: boolean } = {}): void {
    if (this.closed) return
    // Kept in the checkpoint, so a restart before it ran (or a load that found the cause) still
    // compacts: `load` ends with a compaction when one is due.
    this.repairDue = true
    if (this.recompactQueued || this.loading) return
    this.recompactQueued = true
    setTimeout(() => {
      this.recompactQueued = false
      if (!this.closed) void this.compactNow(options).catch(() => undefined)
    }, 0)
  }

  private recordApplied(bytes: Uint8Array, envelope: ParsedEnvelope): void {
    this.entries.set(bytes, { state: 'applied', senderId: envelope.senderId, seq: envelope.seq, type: envelope.type })
    if (envelope.type === EnvelopeType.Snapshot) this.snapshotEntries.add(bytes)
    this.markApplied(envelope.senderId, envelope.seq)
    const newest = this.appliedEpochs.get(envelope.senderId)
    if (!newest || envelope.epoch >= newest.epoch) this.appliedEpochs.set(envelope.senderId, { epoch: envelope.epoch, seq: envelope.seq })
    if (envelope.senderId === this.options.signer?.senderId) this.sealedEpoch = Math.max(this.sealedEpoch, envelope.epoch)
  }

  /**
   * Apply a peer's update; with `noteLanded`, `landed-deleted` when some of its content arrived
   * already deleted here.
   */
  private applyRemote(update: Uint8Array, noteLanded = true): 'applied' | 'landed-deleted' | 'failed' {
    try {
      // The envelope is authenticated, so garbage can only come from a certified device; Yjs
      // reads every struct before integrating any, so a malformed update throws before it
      // changes the doc. But applyUpdate allocates an array for each client's claimed struct
      // count before reading them — 256 MiB for a 9-byte update claiming 2^25 (found by the fuzz
      // campaign) — so the update is walked first with Yjs's lazy reader, which allocates nothing
      // per claim and throws on the same garbage.
      Y.parseUpdateMeta(update)
      if (!noteLanded) {
        Y.applyUpdate(this.inner, update, this.remoteOrigin)
        return 'applied'
      }
      return applyNotingLandedDeleted(this.inner, update, this.remoteOrigin) ? 'landed-deleted' : 'applied'
    } catch {
      return 'failed'
    }
  }

  private markApplied(senderId: string, seq: number): void {
    addSeq(this.applied, senderId, seq)
  }

  /** Hold an envelope; `bounded` ones (unauthenticated, or undecryptable) count against the hold limits. */
  private holdEntry(bytes: Uint8Array, envelope: ParsedEnvelope, code: RejectCode, reason: string, bounded: boolean, since?: number): void {
    const senderId = envelope.senderId
    if (!this.held.add(bytes, envelope, bounded, code, since)) {
      return this.rejectEntry(bytes, RejectCode.HoldLimit, `hold of this room is full (${reason})`, senderId)
    }
    this.entries.set(bytes, { state: 'held' })
    // A retried envelope that is still held was reported when it first arrived.
    if (since === undefined) this.events.emit('held', { code, reason, scope: this.scope, roomId: this.roomId, senderId })
  }

  /** Held envelopes the registry never vouched for within the hold time are refused. */
  private expireHeld(): void {
    if (this.closed) return
    for (const { bytes, senderId, code } of this.held.expired()) {
      this.held.delete(bytes)
      if (code === RejectCode.BadCiphertext) {
        this.rejectEntry(bytes, RejectCode.BadCiphertext, 'no key of its epoch opened it within the hold time', senderId)
      } else {
        this.rejectEntry(bytes, RejectCode.HoldLimit, 'held longer than the hold time; the registry never vouched for it', senderId)
      }
    }
  }

  private rejectEntry(bytes: Uint8Array, code: RejectCode, reason: string, senderId?: string, extent?: Extent): void {
    this.entries.set(bytes, extent ? { state: 'rejected', code, extent } : { state: 'rejected', code })
    this.emitReject(code, reason, senderId)
    // Swept soon, whatever the code: almost any refused entry may carry readable text — a replay,
    // a revoked or stale sender's envelope, a copy of a genuine one with a flipped signature bit
    // (its ciphertext intact, maybe of text forgotten since). Sweeps are rate-limited, so a flood
    // costs one log delete and store rewrite a second.
    this.scheduleSweep()
  }

  private emitReject(code: RejectCode, reason: string, senderId?: string): void {
    this.rejections.set(code, (this.rejections.get(code) ?? 0) + 1)
    const event: RejectedEvent = { code, reason, scope: this.scope, roomId: this.roomId }
    if (senderId !== undefined) event.senderId = senderId
    this.events.emit('rejected', event)
  }

  // ── local authority: checkpoint, erasure, repair, sweeping ──────────────────

  /** Restore the newest checkpoint that opens; a corrupt one is reported and the next tried. */
  private restore(sealedCheckpoints: Uint8Array[]): void {
    for (const sealed of sealedCheckpoints) {
      const checkpoint = openCheckpoint(this.options.atRestKey, this.roomId, sealed)
      if (!checkpoint) {
        const error = new StorageError('corrupt', `the checkpoint of room ${this.roomId} does not open; using an older one or the sealed log`)
        this.events.emit('storage-error', { error, scope: this.scope })
        continue
      }
      try {
        Y.applyUpdate(this.inner, checkpoint.state, this.remoteOrigin)
      } catch {
        const error = new StorageError('corrupt', `the checkpoint state of room ${this.roomId} does not apply`)
        this.events.emit('storage-error', { error, scope: this.scope })
        continue
      }
      for (const [sender, seqs] of checkpoint.applied) addSeqs(this.applied, sender, seqs)
      for (const [sender, seqs] of checkpoint.claims) addSeqs(this.claims, sender, seqs)
      this.repairDue = checkpoint.repairDue
      this.unsealedRestored = checkpoint.unsealed
      this.sealedEpoch = checkpoint.sealedEpoch
      this.tip = { ...checkpoint.tip, seq: 0 }
      this.erasureSeq = checkpoint.erasureSeq
      if (checkpoint.extra.length > 0) this.restoredExtraBytes = checkpoint.extra
      return
    }
  }

  /** The checkpoint as it stands now, sealed at rest (called by the store before each rewrite). */
  private sealedCheckpoint(): Uint8Array {
    // Seal what is queued first, when possible, so the checkpoint holds no change the log lacks.
    if (this.pendingCount > 0 && this.canSeal() && this.reservedUpTo >= this.nextSeq) this.flushNow()
    const checkpoint: Checkpoint = {
      applied: this.applied,
      claims: this.claims,
      state: Y.encodeStateAsUpdate(this.inner),
      repairDue: this.repairDue,
      unsealed: this.unsealedRestored || this.pendingCount > 0,
      sealedEpoch: this.sealedEpoch,
      tip: { client: this.tip.client, clock: this.tip.clock },
      erasureSeq: this.erasureSeq,
      extra: this.checkpointExtra?.() ?? new Uint8Array(0),
    }
    return sealCheckpoint(this.options.atRestKey, this.roomId, checkpoint)
  }

  /** True when this device can seal under a newer epoch than it last sealed under, and has sealed before. */
  private epochMoved(): boolean {
    const signer = this.options.signer
    if (!signer || !this.applied.has(signer.senderId)) return false
    const sealing = this.options.keyring.sealingKey(this.scope)
    return sealing !== undefined && sealing.epoch > this.sealedEpoch
  }

  /**
   * At load, delete the entries this device's newest own snapshot in the log covers. Its own
   * compaction deleted them once, so any still here were put back — replays (possibly of text
   * forgotten since) that were refused before the restart but not yet swept. Loading records
   * entries with applied seqs as applied without checking them, so they would otherwise stay
   * until the next compaction.
   */
  private dropCoveredByOwnSnapshot(log: Y.Array<Uint8Array>): void {
    const signer = this.options.signer
    if (!signer) return
    const current = log.toArray()
    let newest: { bytes: Uint8Array; envelope: ParsedEnvelope } | undefined
    for (const bytes of current) {
      const info = this.entries.get(bytes)
      if (info?.state !== 'applied' || info.type !== EnvelopeType.Snapshot || info.senderId !== signer.senderId) continue
      if (newest && newest.envelope.seq >= (info.seq ?? 0)) continue
      const parsed = parseEnvelope(bytes)
      if (parsed.ok) newest = { bytes, envelope: parsed.value }
    }
    if (!newest) return
    const plaintext = decryptWithAny(newest.envelope, this.roomId, this.options.keyring.openingKeys(this.scope, newest.envelope.epoch))
    const snapshot = plaintext && decodeSnapshot(plaintext)
    if (!snapshot) return
    const covered = (bytes: Uint8Array): boolean => {
      if (bytes === newest!.bytes) return false
      const info = this.entries.get(bytes)
      return info?.state === 'applied' && info.senderId !== undefined && info.seq !== undefined && snapshot.coverage.get(info.senderId)?.has(info.seq) === true
    }
    let removed = 0
    Y.transact(
      this.outer,
      () => {
        for (let i = current.length - 1; i >= 0; i--) {
          if (!covered(current[i]!)) continue
          const bytes = current[i]!
          this.snapshotEntries.delete(bytes)
          log.delete(i, 1)
          removed++
        }
      },
      this.sealOrigin,
    )
    if (removed > 0) void this.store.compact().catch(() => undefined)
  }

  /** A transaction on the sealed log by anyone but this replica: deletions are checked. */
  private onOuterTransaction(transaction: Y.Transaction, log: Y.Array<Uint8Array>): void {
    if (this.closed || transaction.origin === this.sealOrigin || transaction.origin === STORAGE_ORIGIN) return
    if (transaction.deleteSet.clients.size === 0) return
    const appliedAndDeleted: Uint8Array[] = []
    for (const bytes of deletedLogEntries(transaction, log)) {
      const info = this.entries.get(bytes)
      if (info?.state === 'applied') appliedAndDeleted.push(bytes)
      else if (info?.state === 'held') this.held.delete(bytes)
    }
    // Snapshots leave the candidates first: a deleted snapshot cannot account for anything.
    for (const bytes of appliedAndDeleted) this.snapshotEntries.delete(bytes)
    if (appliedAndDeleted.length > 0) this.erasure.deleted(appliedAndDeleted)
    this.queueStorageCompaction()
  }

  /** The Yjs extent of an entry this device applied, read from its (still present) bytes. */
  private extentOf(bytes: Uint8Array): Extent | undefined {
    const info = this.entries.get(bytes)
    if (!info || info.state !== 'applied') return undefined
    if (info.extent) return info.extent
    const parsed = parseEnvelope(bytes)
    if (!parsed.ok) return undefined
    const plaintext = decryptWithAny(parsed.value, this.roomId, this.options.keyring.openingKeys(this.scope, parsed.value.epoch))
    if (!plaintext) return undefined
    const extent = parsed.value.type === EnvelopeType.Snapshot ? snapshotStateExtent(plaintext) : updateExtent(plaintext)
    if (extent) info.extent = extent
    return extent
  }

  private snapshotExtents(): Extent[] {
    const out: Extent[] = []
    for (const bytes of this.snapshotEntries) {
      const extent = this.extentOf(bytes)
      if (extent) out.push(extent)
    }
    return out
  }

  /** Applied entries stayed erased: report, then republish (with backoff while it keeps happening). */
  private onErased(event: { count: number; copies: Uint8Array[] }): void {
    if (this.closed) return
    const what = event.count === 1 ? '1 applied entry was' : `${event.count} applied entries were`
    this.emitReject(RejectCode.Erased, `${what} deleted from the shared log without a snapshot that contains them; republishing`)
    this.repairDue = true
    const now = performance.now()
    const base = this.options.repairDelayMs ?? 500
    this.repairBackoff = now - this.lastRepairAt < REPAIR_MAX_MS ? Math.min(this.repairBackoff * 2, REPAIR_MAX_MS) : base
    const wait = Math.max(base / 2, this.lastRepairAt + this.repairBackoff - now)
    if (this.repairTimer) clearTimeout(this.repairTimer)
    this.repairTimer = setTimeout(() => this.repair(event.copies), wait)
    ;(this.repairTimer as { unref?: () => void }).unref?.()
  }

  /**
   * Republish what was erased: a device that can seal pushes a snapshot of everything it holds;
   * one that cannot (a member's registry replica) puts back the authentic envelopes it copied.
   */
  private repair(copies: Uint8Array[]): void {
    this.repairTimer = undefined
    if (this.closed) return
    this.lastRepairAt = performance.now()
    if (this.canSeal()) {
      void this.compactNow().catch(() => undefined)
      return
    }
    if (copies.length === 0) return
    const log = sealedLog(this.outer)
    Y.transact(
      this.outer,
      () => {
        const start = log.length
        log.push(copies)
        for (let i = start; i < log.length; i++) this.receiveOwnCopy(log.get(i))
      },
      this.sealOrigin,
    )
    this.repairDue = false
  }

  /** Record a republished copy of an applied envelope as applied (it is one). */
  private receiveOwnCopy(bytes: Uint8Array): void {
    const parsed = parseEnvelope(bytes)
    if (!parsed.ok) return
    this.entries.set(bytes, { state: 'applied', senderId: parsed.value.senderId, seq: parsed.value.seq, type: parsed.value.type })
    if (parsed.value.type === EnvelopeType.Snapshot) this.snapshotEntries.add(bytes)
  }

  /**
   * Delete refused entries from the log — and, by the rewrite that follows, from the store — so
   * junk a relay or peer inserts never accumulates; at most about once a second.
   */
  private scheduleSweep(): void {
    if (this.sweepTimer || this.closed) return
    const wait = Math.max(0, this.lastSweepAt + PRESSURE_INTERVAL_MS - performance.now())
    this.sweepTimer = setTimeout(() => this.sweep(), wait)
    ;(this.sweepTimer as { unref?: () => void }).unref?.()
  }

  private sweep(): void {
    this.sweepTimer = undefined
    if (this.closed) return
    this.lastSweepAt = performance.now()
    const log = sealedLog(this.outer)
    const current = log.toArray()
    const snapshots = this.snapshotExtents()
    let removed = 0
    Y.transact(
      this.outer,
      () => {
        for (let i = current.length - 1; i >= 0; i--) {
          const info = this.entries.get(current[i]!)
          if (info?.state !== 'rejected') continue
          // A replayed envelope no snapshot here holds may be the only copy a newcomer can get
          // (a read-only device republishing after an erasure): it stays until a compaction.
          if (info.code === RejectCode.Replay && !(info.extent && snapshots.some((s) => extentContains(s, info.extent!)))) continue
          log.delete(i, 1)
          removed++
        }
      },
      this.sealOrigin,
    )
    if (removed > 0) void this.store.compact()
  }
}

/** Decrypt with the first of `keys` that opens the envelope (an epoch may have several). */
function decryptWithAny(envelope: ParsedEnvelope, roomId: string, keys: Uint8Array[]): Uint8Array | undefined {
  for (const key of keys) {
    const plaintext = decryptEnvelope(envelope, roomId, key)
    if (plaintext) return plaintext
  }
  return undefined
}

/** The state vector a snapshot's state yields; `undefined` when it does not decode. */
function snapshotStateExtent(plaintext: Uint8Array): Extent | undefined {
  const snapshot = decodeSnapshot(plaintext)
  return snapshot ? stateExtent(snapshot.state) : undefined
}

function addSeq(map: Map<string, SeqSet>, senderId: string, seq: number): void {
  let set = map.get(senderId)
  if (!set) map.set(senderId, (set = new SeqSet()))
  set.add(seq)
}

function addSeqs(map: Map<string, SeqSet>, senderId: string, seqs: SeqSet): void {
  let set = map.get(senderId)
  if (!set) map.set(senderId, (set = new SeqSet()))
  set.addAll(seqs)
}

function copySeqMap(map: Map<string, SeqSet>): Map<string, SeqSet> {
  const out = new Map<string, SeqSet>()
  for (const [sender, set] of map) addSeqs(out, sender, set)
  return out
}

/** Whether a transaction changed anything (Yjs emits 'update' for exactly these). */
function hasContent(transaction: Y.Transaction): boolean {
  if (transaction.deleteSet.clients.size > 0) return true
  for (const [client, clock] of transaction.afterState) if (transaction.beforeState.get(client) !== clock) return true
  return false
}

/** This doc's own clock (the next clock its client would use). */
function clockOf(doc: Y.Doc): number {
  return Y.getState(doc.store, doc.clientID)
}

function encodeMeta(reservedUpTo: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, META_VERSION)
  encoding.writeVarUint(enc, reservedUpTo)
  return encoding.toUint8Array(enc)
}

/**
 * Highest seq reservation a meta record may hold: one that leaves 2^32 seqs, so no seq this
 * device seals is ever past `Number.MAX_SAFE_INTEGER` (receivers refuse those, 1).
 */
const MAX_RESERVED_SEQ = Number.MAX_SAFE_INTEGER - 2 ** 32

/** The reservation a meta record holds; `undefined` when the record is damaged (wrong version, truncated, trailing bytes, out of range). */
function decodeMeta(bytes: Uint8Array): number | undefined {
  try {
    const dec = decoding.createDecoder(bytes)
    if (decoding.readUint8(dec) !== META_VERSION) return undefined
    const reserved = decoding.readVarUint(dec)
    if (decoding.hasContent(dec) || !Number.isSafeInteger(reserved) || reserved > MAX_RESERVED_SEQ) return undefined
    return reserved
  } catch {
    return undefined
  }
}

/**
 * The envelope bytes a transaction added to the sealed log, in each writer's order. Read from
 * the structs the transaction created (between its before- and after-state clocks) rather than
 * `event.changes`, which walks the whole log on every transaction.
 */
function envelopesAddedIn(transaction: Y.Transaction, log: Y.Array<Uint8Array>): Uint8Array[] {
  const added: Uint8Array[] = []
  for (const [client, after] of transaction.afterState) {
    const before = transaction.beforeState.get(client) ?? 0
    if (after <= before) continue
    const structs = transaction.doc.store.clients.get(client)
    if (structs === undefined) continue
    for (let i = Y.findIndexSS(structs, before); i < structs.length; i++) {
      const struct = structs[i]!
      if (struct.id.clock >= after) break
      if (!(struct instanceof Y.Item) || struct.deleted || struct.parent !== log) continue
      for (const content of struct.content.getContent()) added.push(content as Uint8Array)
    }
  }
  return added
}
