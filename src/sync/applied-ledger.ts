/**
 * What this device knows about the entries of one sealed log and the seqs it applied: the
 * replica's own record, never rebuilt from the log (ARCHITECTURE.md "Invariants").
 *
 * - per log entry (keyed by the log's own copy of the bytes): applied, held or refused, with its
 *   sender, seq and type;
 * - per sender, the seqs this device verified and applied itself — the authority, kept in the
 *   checkpoint — and, apart from them, the seqs the sender's own snapshots claim (hints for gap
 *   detection only);
 * - the snapshot entries it applied that are still in the log (what an erasure check may count
 *   as holding deleted content).
 *
 * @module
 */
import { EnvelopeType, type ParsedEnvelope } from '../crypto/envelope.js'
import type { RejectCode } from '../crypto/codes.js'
import type { Extent } from './erasure.js'
import { SeqSet } from './seq-set.js'

/** What this device made of one log entry. */
export interface EntryInfo {
  state: 'applied' | 'held' | 'rejected'
  senderId?: string
  seq?: number
  type?: EnvelopeType
  /** The Yjs extent of its content (computed when a deletion needs it; at once for replays). */
  extent?: Extent
  /** For a snapshot part: where each client's range in it begins (absent: at clock 0). */
  start?: Extent
  /** Why it was refused. */
  code?: RejectCode
}

/** The replica's record of entries and applied seqs. */
export class AppliedLedger {
  /** By the log's copy of an entry's bytes (entries that left the log are forgotten with them). */
  readonly entries = new WeakMap<Uint8Array, EntryInfo>()
  /** Seqs this device verified and applied itself, by sender: the authority, kept in the checkpoint. */
  readonly applied = new Map<string, SeqSet>()
  /** Seqs each sender's own snapshots say they cover: hints for gap detection, nothing more. */
  readonly claims = new Map<string, SeqSet>()
  /** Snapshot entries this device applied that are still in the log (for erasure checks). */
  readonly snapshotEntries = new Set<Uint8Array>()
  /** Newest epoch (and a seq under it) of what this device applied from each sender. */
  readonly appliedEpochs = new Map<string, { epoch: number; seq: number }>()

  /** An envelope this device sealed and appended itself (its log copy `bytes`). */
  recordSealed(bytes: Uint8Array, senderId: string, seq: number, type: EnvelopeType): void {
    this.entries.set(bytes, { state: 'applied', senderId, seq, type })
    if (type === EnvelopeType.Snapshot) this.snapshotEntries.add(bytes)
    addSeq(this.applied, senderId, seq)
  }

  /** An envelope someone else appended, verified and applied here. */
  recordApplied(bytes: Uint8Array, envelope: ParsedEnvelope): void {
    this.entries.set(bytes, { state: 'applied', senderId: envelope.senderId, seq: envelope.seq, type: envelope.type })
    if (envelope.type === EnvelopeType.Snapshot) this.snapshotEntries.add(bytes)
    addSeq(this.applied, envelope.senderId, envelope.seq)
    const newest = this.appliedEpochs.get(envelope.senderId)
    if (!newest || envelope.epoch >= newest.epoch) this.appliedEpochs.set(envelope.senderId, { epoch: envelope.epoch, seq: envelope.seq })
  }

  /** A republished copy of an envelope applied before: an applied entry, no new seq. */
  recordCopy(bytes: Uint8Array, envelope: ParsedEnvelope): void {
    this.entries.set(bytes, { state: 'applied', senderId: envelope.senderId, seq: envelope.seq, type: envelope.type })
    if (envelope.type === EnvelopeType.Snapshot) this.snapshotEntries.add(bytes)
  }

  /** Add what a sender's own snapshot says it covers of its own seqs. */
  addClaims(senderId: string, seqs: SeqSet): void {
    addSeqs(this.claims, senderId, seqs)
  }

  /** Take the applied seqs and claims a checkpoint kept. */
  restore(applied: Map<string, SeqSet>, claims: Map<string, SeqSet>): void {
    for (const [sender, seqs] of applied) addSeqs(this.applied, sender, seqs)
    for (const [sender, seqs] of claims) addSeqs(this.claims, sender, seqs)
  }

  /** True when this device applied `seq` of `senderId` itself. */
  appliedHas(senderId: string, seq: number): boolean {
    return this.applied.get(senderId)?.has(seq) === true
  }

  /** Applied here, or claimed by a snapshot *of that sender* (see {@link claims}). */
  hasApplied(senderId: string, seq: number): boolean {
    return this.appliedHas(senderId, seq) || this.claims.get(senderId)?.has(seq) === true
  }

  /** The highest seq of `senderId` applied here (0 when none). */
  maxApplied(senderId: string): number {
    return this.applied.get(senderId)?.max() ?? 0
  }

  /** A copy of the applied seqs, by sender. */
  appliedSeqs(): Map<string, SeqSet> {
    const out = new Map<string, SeqSet>()
    for (const [sender, set] of this.applied) addSeqs(out, sender, set)
    return out
  }

  /** True when `coverage` includes every seq this device applied (its sealer saw all of it). */
  coversApplied(coverage: Map<string, SeqSet>): boolean {
    for (const [sender, seqs] of this.applied) if (coverage.get(sender)?.covers(seqs) !== true) return false
    return true
  }

  /**
   * Whether a compaction by this device may delete the entry: one it applied (its snapshot holds
   * the content, whatever other snapshots claim) or one that can never apply.
   */
  isCovered(bytes: Uint8Array): boolean {
    const state = this.entries.get(bytes)?.state
    return state === 'applied' || state === 'rejected'
  }
}

/** Add one seq to a sender's set in `map`. */
export function addSeq(map: Map<string, SeqSet>, senderId: string, seq: number): void {
  let set = map.get(senderId)
  if (!set) map.set(senderId, (set = new SeqSet()))
  set.add(seq)
}

function addSeqs(map: Map<string, SeqSet>, senderId: string, seqs: SeqSet): void {
  let set = map.get(senderId)
  if (!set) map.set(senderId, (set = new SeqSet()))
  set.addAll(seqs)
}
