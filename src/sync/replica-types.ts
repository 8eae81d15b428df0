/**
 * The vocabulary of a `Replica` (`replica.ts`): who seals, who vouches for senders, how it compacts, what
 * it reports. Kept apart from the class so the facade and the tests can name these types without
 * pulling in the machinery.
 *
 * @module
 */
import type { StorageAdapter, StorageError } from '../adapters/storage.js'
import type { RejectCode } from '../crypto/codes.js'
import type { ScopeKeyring } from '../crypto/keyring.js'
import type { HoldLimits } from './hold.js'

/** Transaction origin for local inner writes that should be sealed after a short window (streams). */
export const STREAM_ORIGIN = Symbol('contextsync/stream')

/** What a {@link SenderDirectory} knows about a sender. */
export type SenderStatus =
  | { status: 'known'; signPublicKey: Uint8Array }
  | { status: 'unknown' }
  | { status: 'revoked' }
  /** The sender's temporary access ended and an owner's end cutoff does not list this envelope. */
  | { status: 'ended' }
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

/** Options of a `Replica`. */
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

/** Events of a `Replica`. */
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
