/**
 * What the parts of one `Replica` (`replica.ts`) share: the two documents, the store, the ledger of what
 * was applied, the hold, the seq reservation, the events, and the few facts every part reads or
 * changes (a repair is due, the epoch last sealed under, the own tip, the last erasure's seq).
 * It also seals and appends envelopes, the one step the sealer and the compactor both take.
 *
 * The parts — sealer (outgoing), compactor, opener (incoming), log upkeep (erasure, repair,
 * sweeps) and checkpoint keeper — each hold this core and own the rest of their state.
 *
 * @module
 */
import * as Y from 'yjs'
import type { StorageError } from '../adapters/storage.js'
import { createSealedLogDoc, sealedLog } from '../crdt/sealed-log.js'
import type { RejectCode } from '../crypto/codes.js'
import { decryptEnvelope, sealEnvelope, type EnvelopeType, type ParsedEnvelope } from '../crypto/envelope.js'
import { ScopeAccessError } from '../errors.js'
import { Emitter } from '../util/emitter.js'
import { AppliedLedger } from './applied-ledger.js'
import { stateRange, type StateRange } from './erasure.js'
import { DEFAULT_HOLD_LIMITS, HeldEnvelopes, type HoldLimits } from './hold.js'
import { LogStore } from './log-store.js'
import type { RejectedEvent, ReplicaEvents, ReplicaOptions, ReplicaSigner } from './replica-types.js'
import { SeqReservation } from './seq-reservation.js'
import { decodeSnapshot } from './snapshot.js'

/** Smallest gap between two sweeps, repairs-for-deleted-content or store rewrites caused by someone else. */
export const PRESSURE_INTERVAL_MS = 1_000

/** Shared state and the sealing step of one replica. */
export class ReplicaCore {
  /** The plaintext CRDT (in memory only). */
  readonly inner = new Y.Doc({ gc: true })
  /** The sealed log: what storage and transports carry. */
  readonly outer = createSealedLogDoc()
  readonly events = new Emitter<ReplicaEvents>()
  /** Rejections counted by code. */
  readonly rejections = new Map<RejectCode, number>()
  /** Origin of updates applied to the inner doc from envelopes (never sealed again). */
  readonly remoteOrigin = Symbol('contextsync/remote')
  /** Origin of this replica's own transactions on the sealed log. */
  readonly sealOrigin = Symbol('contextsync/seal')
  readonly ledger = new AppliedLedger()
  readonly holdLimits: HoldLimits
  readonly held: HeldEnvelopes
  readonly store: LogStore
  readonly seqs: SeqReservation
  readonly scope: string
  readonly roomId: string

  /** Entries were erased from the log and not republished yet (kept in the checkpoint). */
  repairDue = false
  /** The checkpoint restored at load held local changes that may never have been sealed. */
  unsealedRestored = false
  /** Newest epoch this device sealed under in this room. */
  sealedEpoch = 0
  /** Own seq of the last envelope that erased content (see `Compactor.compactNow`); 0 when none. */
  erasureSeq = 0
  /** Where this device's newest sealed update ends in the inner doc, and its seq. */
  tip = { client: 0, clock: 0, seq: 0 }
  /** True while `load` opens the stored log. */
  loading = false
  closed = false

  /** `checkpoint` yields the sealed checkpoint the store writes before each rewrite. */
  constructor(
    readonly options: ReplicaOptions,
    checkpoint: () => Uint8Array,
  ) {
    this.scope = options.scope
    this.roomId = options.roomId
    this.holdLimits = { ...DEFAULT_HOLD_LIMITS, ...options.hold }
    this.held = new HeldEnvelopes(this.holdLimits)
    this.store = new LogStore(options.storage, options.roomId, this.outer, {
      onError: (error) => this.storageError(error),
      checkpoint,
    })
    this.seqs = new SeqReservation((record) => this.store.saveMeta(record))
  }

  /** Who seals here; `undefined` for a read-only replica. */
  get signer(): ReplicaSigner | undefined {
    return this.options.signer
  }

  /** Count and report a refusal. */
  emitReject(code: RejectCode, reason: string, senderId?: string): void {
    this.rejections.set(code, (this.rejections.get(code) ?? 0) + 1)
    const event: RejectedEvent = { code, reason, scope: this.scope, roomId: this.roomId }
    if (senderId !== undefined) event.senderId = senderId
    this.events.emit('rejected', event)
  }

  /** Report a storage failure. */
  storageError(error: StorageError): void {
    this.events.emit('storage-error', { error, scope: this.scope })
  }

  /** True when this device holds the key of the epoch it would seal under now. */
  canSeal(): boolean {
    return this.options.signer !== undefined && this.options.keyring.sealingKey(this.scope) !== undefined
  }

  /** True when this device can seal under a newer epoch than it last sealed under, and has sealed before. */
  epochMoved(): boolean {
    const signer = this.options.signer
    if (!signer || !this.ledger.applied.has(signer.senderId)) return false
    const sealing = this.options.keyring.sealingKey(this.scope)
    return sealing !== undefined && sealing.epoch > this.sealedEpoch
  }

  /** The highest seq this device has sealed into the log (0 when none, or read-only). */
  latestOwnSeq(): number {
    const signer = this.options.signer
    return signer ? this.ledger.maxApplied(signer.senderId) : 0
  }

  /** Seal `plaintext` under the scope's current epoch (the caller checked {@link canSeal}). */
  seal(type: EnvelopeType, seq: number, plaintext: Uint8Array): Uint8Array {
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

  /**
   * Append an envelope to the log and return the array's own copy of it (Yjs copies binary
   * content on insert), which is the object later reads and compaction see.
   */
  append(envelope: Uint8Array): Uint8Array {
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

  /** Decrypt with any key of the envelope's epoch; `undefined` when none opens it. */
  open(envelope: ParsedEnvelope): Uint8Array | undefined {
    return decryptWithAny(envelope, this.roomId, this.options.keyring.openingKeys(this.scope, envelope.epoch))
  }
}

/** Decrypt with the first of `keys` that opens the envelope (an epoch may have several). */
export function decryptWithAny(envelope: ParsedEnvelope, roomId: string, keys: Uint8Array[]): Uint8Array | undefined {
  for (const key of keys) {
    const plaintext = decryptEnvelope(envelope, roomId, key)
    if (plaintext) return plaintext
  }
  return undefined
}

/** The clock ranges a snapshot's state holds (a part of a state: from where it begins); `undefined` when it does not decode. */
export function snapshotStateRange(plaintext: Uint8Array): StateRange | undefined {
  const snapshot = decodeSnapshot(plaintext)
  return snapshot ? stateRange(snapshot.state) : undefined
}
