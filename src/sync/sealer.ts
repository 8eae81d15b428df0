/**
 * The outgoing path of a replica: local inner updates are queued and sealed as one update
 * envelope per flush (the next microtask by default, a short window for streams, at once when the
 * batch is full), under a seq reserved in the store first, appended to the sealed log and stored.
 * Whoever waits on {@link Sealer.whenFlushed} learns when that is durable.
 *
 * @module
 */
import * as Y from 'yjs'
import { StorageError } from '../adapters/storage.js'
import { RejectCode } from '../crypto/codes.js'
import { EnvelopeType } from '../crypto/envelope.js'
import { ClosedError } from '../errors.js'
import { EarliestTimer } from '../util/timers.js'
import { MERGE_CHUNK } from './merge.js'
import type { ReplicaCore } from './replica-core.js'
import { STREAM_ORIGIN } from './replica-types.js'

const RETRY_MIN_MS = 250
const RETRY_MAX_MS = 30_000

/** Batches, seals and appends this device's local changes. */
export class Sealer {
  /** Local updates not sealed yet — kept only while the batch is small (see {@link encodeBatch}). */
  private pending: Uint8Array[] = []
  private pendingCount = 0
  private waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = []
  private readonly flushTimer = new EarliestTimer(() => void this.flushSoon())
  private microtaskQueued = false
  private reserveRetryTimer: ReturnType<typeof setTimeout> | undefined
  private reserveRetryDelay = RETRY_MIN_MS
  /** This client's clock in the inner doc at the last flush. */
  private sealedClock = 0
  private countingTransactions = false

  /** `afterSeal` runs after each update envelope is appended, with its size (compaction checks). */
  constructor(
    private readonly core: ReplicaCore,
    private readonly afterSeal: (bytes: number) => void,
  ) {}

  /** Local changes not sealed yet. */
  get queued(): number {
    return this.pendingCount
  }

  /** Start sealing local changes of the inner doc. */
  listen(): void {
    this.core.inner.on('update', this.innerUpdateListener)
  }

  /**
   * Resolves once every local change made so far is sealed and durably stored; see
   * `Replica.whenFlushed`.
   */
  whenFlushed(): Promise<void> {
    // Closed (the device closed, or lost the scope): a change made now was never recorded.
    if (this.core.closed) return Promise.reject(new ClosedError(`scope '${this.core.scope}' is closed on this device`))
    if (this.pendingCount === 0) return this.core.store.whenSaved()
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  /** Try to seal what is queued soon (keys changed: what waited for a key may go now). */
  retry(): void {
    if (this.pendingCount > 0) this.scheduleFlush(0, false)
  }

  /** Seal what is queued now if the key and a reserved seq are at hand (before a checkpoint). */
  flushIfReady(): void {
    if (this.pendingCount > 0 && this.core.canSeal() && this.core.seqs.ready) this.flushNow()
  }

  /** Stop the timers (closing); what is queued stays queued. */
  stop(): void {
    this.flushTimer.cancel()
    if (this.reserveRetryTimer) clearTimeout(this.reserveRetryTimer)
  }

  /** Seal what is queued before the replica closes; returns how many changes stay unsealed. */
  async flushForClose(): Promise<number> {
    if (this.pendingCount > 0 && this.core.signer) {
      await this.core.seqs.reserve()
      this.flushNow()
    }
    return this.pendingCount
  }

  /** Whoever waits for changes that will not be sealed on this instance learns why. */
  failWaitersOnClose(): void {
    if (this.waiters.length === 0) return
    this.failWaiters(new ClosedError(`scope '${this.core.scope}' closed before ${this.pendingCount} local change(s) could be sealed (no key of the current epoch yet); they are kept locally and sealed if the scope reopens`))
  }

  private readonly innerUpdateListener = (update: Uint8Array, origin: unknown): void => this.onInnerUpdate(update, origin)

  /**
   * Counts local transactions while a batch is past {@link MERGE_CHUNK}. Such a batch is
   * re-encoded from the doc when sealed (see {@link encodeBatch}), so the per-transaction updates
   * Yjs would encode for an 'update' listener are thrown away: in a burst, listening on
   * 'afterTransaction' instead saves that encoding (≈ 1/10 of a burst write's CPU).
   */
  private readonly countLocalTransaction = (transaction: Y.Transaction): void => {
    if (transaction.origin === this.core.remoteOrigin || this.core.closed || !hasContent(transaction)) return
    this.onInnerUpdate(undefined, transaction.origin)
  }

  /** Listen for local changes by counting transactions (`true`) or by their Yjs updates. */
  private countTransactions(on: boolean): void {
    this.countingTransactions = on
    const inner = this.core.inner
    if (on) {
      inner.off('update', this.innerUpdateListener)
      inner.on('afterTransaction', this.countLocalTransaction)
    } else {
      inner.off('afterTransaction', this.countLocalTransaction)
      inner.on('update', this.innerUpdateListener)
    }
  }

  /** Local changes are queued; `update` is undefined when only counted (see above). */
  private onInnerUpdate(update: Uint8Array | undefined, origin: unknown): void {
    const core = this.core
    if (origin === core.remoteOrigin || core.closed) return
    if (!core.signer) {
      // A read-only replica must not diverge silently from what it can publish.
      core.emitReject(RejectCode.NotGranted, 'local write to a read-only replica was not sealed')
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
    const options = core.options
    if (this.pendingCount >= (options.maxBatchUpdates ?? 4096)) {
      this.scheduleFlush(0, true)
    } else {
      const delay = origin === STREAM_ORIGIN ? (options.streamFlushDelayMs ?? 20) : (options.flushDelayMs ?? 0)
      this.scheduleFlush(delay, false)
    }
  }

  private scheduleFlush(delayMs: number, now: boolean): void {
    if (now && this.core.seqs.ready) {
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
    this.flushTimer.arm(Date.now() + delayMs)
  }

  private async flushSoon(): Promise<void> {
    if (this.core.closed || this.pendingCount === 0) return
    if (!this.core.seqs.ready) {
      try {
        await this.core.seqs.reserve()
      } catch (error) {
        // Without a durable seq reservation sealing could reuse a seq after a crash, so the
        // changes stay queued (readable locally) and sealing is retried with backoff.
        this.failWaiters(error)
        this.core.storageError(error instanceof StorageError ? error : new StorageError('io', 'storage write failed', { cause: error }))
        this.retryFlushLater()
        return
      }
    }
    this.reserveRetryDelay = RETRY_MIN_MS
    this.flushNow()
  }

  private retryFlushLater(): void {
    if (this.core.closed || this.reserveRetryTimer) return
    this.reserveRetryTimer = setTimeout(() => {
      this.reserveRetryTimer = undefined
      void this.flushSoon()
    }, this.reserveRetryDelay)
    this.reserveRetryDelay = Math.min(this.reserveRetryDelay * 2, RETRY_MAX_MS)
  }

  private flushNow(): void {
    const core = this.core
    const signer = core.signer
    if (!signer || this.pendingCount === 0 || core.closed) return
    // A new epoch can be announced before its lockbox arrives: keep the changes queued until
    // the key is here (retryHeld() flushes again when keys change).
    if (!core.canSeal()) return
    this.flushTimer.cancel()
    const updates = this.pending
    const count = this.pendingCount
    const waiters = this.waiters
    this.pending = []
    this.pendingCount = 0
    this.waiters = []
    const seq = core.seqs.take()
    const envelope = core.seal(EnvelopeType.Update, seq, this.encodeBatch(updates, count))
    if (this.sealedClock > 0) core.tip = { client: core.inner.clientID, clock: this.sealedClock, seq }
    core.ledger.recordSealed(core.append(envelope), signer.senderId, seq, EnvelopeType.Update)
    core.events.emit('sealed', { scope: core.scope, seq })
    this.afterSeal(envelope.length)
    core.store.whenSaved().then(
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
    const inner = this.core.inner
    const sealedClock = this.sealedClock
    this.sealedClock = Y.getState(inner.store, inner.clientID)
    if (this.countingTransactions) {
      // Back to single updates for the next batch — after the current Yjs transaction has
      // finished (a microtask), so no transaction is both counted and delivered as an update.
      queueMicrotask(() => {
        if (this.countingTransactions && !this.core.closed) this.countTransactions(false)
      })
    }
    if (updates.length === count) return count === 1 ? updates[0]! : Y.mergeUpdates(updates)
    const target = Y.decodeStateVector(Y.encodeStateVector(inner))
    target.set(inner.clientID, sealedClock)
    return Y.encodeStateAsUpdate(inner, Y.encodeStateVector(target))
  }

  private failWaiters(error: unknown): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w.reject(error)
  }
}

/** Whether a transaction changed anything (Yjs emits 'update' for exactly these). */
function hasContent(transaction: Y.Transaction): boolean {
  if (transaction.deleteSet.clients.size > 0) return true
  for (const [client, clock] of transaction.afterState) if (transaction.beforeState.get(client) !== clock) return true
  return false
}
