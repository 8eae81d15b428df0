/**
 * A Replica keeps one scope's inner doc (plaintext, in memory only) and its sealed log (outer
 * doc of envelopes, persisted and synced) in step (WIRE.md "Sealed log"). It is a composition of
 * parts with one job each, sharing a {@link ReplicaCore}:
 *
 * - **Outgoing** (`sealer.ts`): local inner updates are queued and sealed as one envelope per
 *   flush (a microtask by default, a short window for streams), under a seq reserved in the store
 *   first (`seq-reservation.ts`), appended to the sealed log, stored, and carried by whatever
 *   transports are attached to the outer doc.
 * - **Incoming** (`opener.ts`): every envelope appended by someone else is parsed, its sender
 *   resolved (unknown → held, within bounds), verified, decrypted, checked for replay and applied
 *   to the inner doc with this replica's remote origin so it is never sealed again. Every refusal
 *   is a coded `rejected` event.
 * - **Compaction** (`compactor.ts`): when the log passes a threshold, a snapshot envelope (full
 *   inner state + the seqs it covers) is pushed and the entries it covers are deleted, in one
 *   outer transaction.
 * - **Local authority** (`applied-ledger.ts`, `checkpoint-keeper.ts`, `log-upkeep.ts`): the
 *   sealed log is an untrusted exchange medium — anyone in the room can delete, reorder or
 *   re-insert its entries with plain Yjs operations. So what this device has applied is kept in
 *   its own store, a checkpoint of the inner doc and the seqs applied, sealed at rest, and never
 *   rebuilt from what the log holds: deletions change nothing here, before or after a restart,
 *   and a replayed envelope is a seq already applied. The seqs a snapshot says it covers are
 *   hints for gap detection only, never a reason to refuse another sender's envelope. When
 *   entries this device applied vanish from the log without a snapshot that contains them, it
 *   reports `Erased` (14) and republishes.
 *
 * @module
 */
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { StorageError } from '../adapters/storage.js'
import { sealedLog } from '../crdt/sealed-log.js'
import type { RejectCode } from '../crypto/codes.js'
import type { Emitter } from '../util/emitter.js'
import { CheckpointKeeper } from './checkpoint-keeper.js'
import { Compactor } from './compactor.js'
import { LogUpkeep } from './log-upkeep.js'
import { Opener } from './opener.js'
import { ReplicaCore } from './replica-core.js'
import type { ReplicaEvents, ReplicaOptions } from './replica-types.js'
import { Sealer } from './sealer.js'
import type { SeqSet } from './seq-set.js'

export {
  STREAM_ORIGIN,
  type CompactionPolicy,
  type RejectedEvent,
  type ReplicaEvents,
  type ReplicaOptions,
  type ReplicaSigner,
  type SenderDirectory,
  type SenderStatus,
} from './replica-types.js'

/** One scope: inner doc ⇄ sealed log. */
export class Replica {
  /** The plaintext CRDT (in memory only). */
  readonly inner: Y.Doc
  /** The sealed log: what storage and transports carry. */
  readonly outer: Y.Doc
  /** Awareness of the outer doc (carries only encrypted presence). */
  readonly awareness: Awareness
  /** Typed events. */
  readonly events: Emitter<ReplicaEvents>
  /** Rejections counted by code. */
  readonly rejections: Map<RejectCode, number>
  readonly scope: string
  readonly roomId: string

  private readonly core: ReplicaCore
  private readonly sealer: Sealer
  private readonly compactor: Compactor
  private readonly upkeep: LogUpkeep
  private readonly opener: Opener
  private readonly checkpoints: CheckpointKeeper

  constructor(options: ReplicaOptions) {
    // The store asks for the checkpoint only when it rewrites, long after construction.
    this.core = new ReplicaCore(options, () => this.checkpoints.seal())
    this.sealer = new Sealer(this.core, (bytes) => this.compactor.afterLocalSeal(bytes))
    this.compactor = new Compactor(this.core, this.sealer)
    this.upkeep = new LogUpkeep(this.core, this.compactor)
    this.opener = new Opener(this.core, this.compactor, this.upkeep)
    this.checkpoints = new CheckpointKeeper(this.core, this.sealer)
    this.inner = this.core.inner
    this.outer = this.core.outer
    this.events = this.core.events
    this.rejections = this.core.rejections
    this.scope = options.scope
    this.roomId = options.roomId
    this.awareness = new Awareness(this.outer)
    // Awareness would otherwise publish an empty plaintext state for this client.
    this.awareness.setLocalState(null)
  }

  /** True when this replica can write (it has a signer). */
  get writable(): boolean {
    return this.core.signer !== undefined
  }

  /**
   * Load from storage — the checkpoint first (what this device had applied), then the sealed log
   * (only what arrived after the checkpoint is opened) — and start listening.
   */
  async load(options: { compact?: boolean } = {}): Promise<void> {
    const core = this.core
    const checkpoints = await core.store.loadCheckpoints()
    await core.store.load()
    this.checkpoints.restore(checkpoints)
    const damaged = !core.seqs.restore(await core.store.loadMeta())
    if (damaged) {
      // The record is plain bytes in the store (WIRE.md "Device store layout"): damaged, it says
      // nothing about which seqs were reserved. Continue a block past the highest own seq applied
      // here, as after a crash — never at a seq that is not a safe integer.
      core.storageError(new StorageError('corrupt', `the seq reservation of room ${this.roomId} is unreadable; continuing one block past the last seq stored`))
    }
    const log = sealedLog(this.outer)
    core.loading = true
    try {
      for (const bytes of log.toArray()) this.opener.receive(bytes)
    } finally {
      core.loading = false
    }
    this.upkeep.dropCoveredByOwnSnapshot(log)
    // Never reuse a seq: continue after everything applied and everything reserved before a restart.
    core.seqs.start(core.latestOwnSeq(), damaged)
    this.opener.listen(log)
    this.upkeep.listen(log)
    this.sealer.listen()
    // The registry's replica is loaded before its statements tell the keyring the current epoch:
    // it compacts once they do (`compactIfDue`), never under a superseded key.
    if (options.compact !== false) await this.compactor.compactIfDue()
  }

  /**
   * Bytes the replica's owner asked to keep with the checkpoint ({@link keepWithCheckpoint}), as
   * restored by {@link load}; `undefined` when there were none.
   */
  get restoredExtra(): Uint8Array | undefined {
    return this.checkpoints.restoredExtra
  }

  /**
   * Keep `extra()` with every checkpoint of this replica (the registry keeps the statements this
   * device relies on that live outside the sealed log, such as its lockboxes).
   */
  keepWithCheckpoint(extra: () => Uint8Array): void {
    this.checkpoints.extra = extra
  }

  /** Write a checkpoint now (with a rewrite of the stored log); resolves once stored. */
  checkpoint(): Promise<void> {
    return this.core.store.compact({ checkpoint: true })
  }

  /**
   * Resolves once every local change made so far is sealed and durably stored.
   * Rejects with a `StorageError` when storing failed (the change stays queued and is retried),
   * and with a `ClosedError` once the replica is closed (the device closed or lost the scope)
   * before they were sealed.
   */
  whenFlushed(): Promise<void> {
    return this.sealer.whenFlushed()
  }

  /**
   * Seal what is queued, then compact now, and wait until stored. With `erasing` (after `forget`,
   * purge, retention, `clear`) the last envelope sealed before — the one carrying the deletion —
   * is remembered: a snapshot another device sealed without having applied it may still carry the
   * erased text, so its arrival triggers another compaction (which deletes it).
   */
  compactNow(options: { erasing?: boolean } = {}): Promise<void> {
    return this.compactor.compactNow(options)
  }

  /**
   * Change the sealing windows while running, and defer write-path compaction (`true`) or run a
   * deferred one now (`false`) — a device's power profile (ARCHITECTURE.md "adapters/glasses").
   */
  tune(timing: { flushDelayMs?: number; streamFlushDelayMs?: number; deferCompaction?: boolean }): void {
    const options = this.core.options
    if (timing.flushDelayMs !== undefined) options.flushDelayMs = timing.flushDelayMs
    if (timing.streamFlushDelayMs !== undefined) options.streamFlushDelayMs = timing.streamFlushDelayMs
    if (timing.deferCompaction !== undefined) this.compactor.defer(timing.deferCompaction)
  }

  /** Load-time compaction, for a replica loaded with `{ compact: false }` once its keys are known. */
  compactIfDue(): Promise<void> {
    return this.compactor.compactIfDue()
  }

  /**
   * The registry changed: try again to open envelopes held for an unknown sender, grant or epoch
   * key, seal what waited for a key, and republish under a newer epoch once it can seal there.
   */
  retryHeld(): void {
    if (this.core.closed) return
    this.sealer.retry()
    this.opener.retryHeld()
    this.compactor.registryChanged()
  }

  /**
   * True while this replica still has upkeep queued: a check or repair of erased entries, a sweep
   * of refused ones, a re-compaction after an erasure, or deletions waiting for a store rewrite.
   * Tests and tools wait for it to clear before inspecting stores.
   */
  get maintenancePending(): boolean {
    return this.upkeep.pending || this.compactor.pending || this.core.store.deletionsPending
  }

  /** Number of held envelopes (diagnostics). */
  get heldCount(): number {
    return this.core.held.size
  }

  /** The held envelopes — sender, epoch, seq and the code they wait on (diagnostics; no content). */
  heldEnvelopes(): Array<{ senderId: string; epoch: number; seq: number; code: number }> {
    return this.core.held.describe()
  }

  /**
   * Where this device's newest sealed update ends in the inner doc — its Yjs client id and the
   * clock past its last struct (`clock` 0: none yet). Announced with the seq, so a peer can tell it
   * holds that content even if the envelope was compacted away before it arrived.
   */
  latestOwnTip(): { client: number; clock: number } {
    return { client: this.core.tip.client, clock: this.core.tip.clock }
  }

  /** True when the inner doc holds every struct of `client` below `clock`. */
  holdsContent(client: number, clock: number): boolean {
    return Y.getState(this.inner.store, client) >= clock
  }

  /** The highest seq this device has sealed into the log (0 when none, or read-only). */
  latestOwnSeq(): number {
    return this.core.latestOwnSeq()
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
    return this.core.ledger.hasApplied(senderId, seq)
  }

  /** The seqs this device verified and applied itself, by sender (a copy). */
  appliedSeqs(): Map<string, SeqSet> {
    return this.core.ledger.appliedSeqs()
  }

  /** True when this device holds the key of the epoch it would seal under now. */
  canSeal(): boolean {
    return this.core.canSeal()
  }

  /** Flush, wait for storage, and stop. The docs are destroyed. */
  async close(): Promise<void> {
    const core = this.core
    if (core.closed) return
    this.sealer.stop()
    this.compactor.stop()
    this.upkeep.stop()
    this.opener.stop()
    const unsealed = (await this.sealer.flushForClose()) > 0
    // Changes that could not be sealed (no key of the current epoch yet) live only in the inner
    // doc: a checkpoint keeps them (marked unsealed, sealed when the scope reopens). A repair
    // still due is kept the same way, so the reopened device republishes.
    if ((core.repairDue || unsealed) && core.signer) await core.store.compact({ checkpoint: true }).catch(() => undefined)
    // Whoever waits for those changes to be sealed learns it will not happen on this instance.
    this.sealer.failWaitersOnClose()
    core.closed = true
    await core.store.close()
    this.awareness.destroy()
    this.inner.destroy()
    this.outer.destroy()
    this.events.clear()
  }
}
