/**
 * The incoming path of a replica: every envelope someone else appended to the sealed log is
 * parsed, its sender resolved through the {@link SenderDirectory} (unknown or not granted yet →
 * held, within bounds), verified, decrypted, checked for replay against the seqs this device
 * applied itself, and applied to the inner doc with the replica's remote origin, so it is never
 * sealed again. Every refusal is a coded `rejected` event; none is thrown.
 *
 * @module
 */
import * as Y from 'yjs'
import { applyNotingLandedDeleted, carriesDeletedContent } from '../crdt/landed-deleted.js'
import { RejectCode } from '../crypto/codes.js'
import { EnvelopeType, parseEnvelope, verifyEnvelope, type ParsedEnvelope } from '../crypto/envelope.js'
import { unref } from '../util/timers.js'
import type { Compactor } from './compactor.js'
import { updateExtent, type Extent } from './erasure.js'
import type { LogUpkeep } from './log-upkeep.js'
import { decryptWithAny, snapshotStateRange, type ReplicaCore } from './replica-core.js'
import type { SenderDirectory } from './replica-types.js'
import { MAX_SEQ_RANGES, type SeqSet } from './seq-set.js'
import { decodeSnapshotChecked } from './snapshot.js'

/** Checks, holds and applies what others append to the sealed log. */
export class Opener {
  private holdTimer: ReturnType<typeof setInterval> | undefined
  /** Sender and coverage of the last snapshot envelope applied, to tell its next part. */
  private lastSnapshot: { senderId: string; coverage: Map<string, SeqSet> } | undefined

  constructor(
    private readonly core: ReplicaCore,
    private readonly compactor: Compactor,
    private readonly upkeep: LogUpkeep,
  ) {}

  /** Open every envelope others append to `log` from now on, and expire held ones on time. */
  listen(log: Y.Array<Uint8Array>): void {
    const core = this.core
    log.observe((_event, transaction) => {
      if (transaction.origin === core.sealOrigin) return
      for (const bytes of envelopesAddedIn(transaction, log)) this.receive(bytes)
    })
    this.holdTimer = setInterval(() => this.expireHeld(), Math.max(50, Math.min(60_000, core.holdLimits.timeoutMs / 4)))
    unref(this.holdTimer)
  }

  /** Stop expiring held envelopes (closing). */
  stop(): void {
    if (this.holdTimer) clearInterval(this.holdTimer)
  }

  /** Open one entry of the log (unless this device already made something of it). */
  receive(bytes: Uint8Array): void {
    if (this.core.ledger.entries.has(bytes)) return
    const parsed = parseEnvelope(bytes)
    if (!parsed.ok) return this.rejectEntry(bytes, parsed.code, parsed.reason)
    this.process(bytes, parsed.value)
  }

  /** Try every held envelope again (the registry changed). */
  retryHeld(): void {
    for (const { bytes, envelope, since } of this.core.held.takeAll()) {
      this.core.ledger.entries.delete(bytes)
      this.process(bytes, envelope, since)
    }
  }

  /** Check and apply one parsed envelope; `heldSince` is set when it is retried from the hold. */
  private process(bytes: Uint8Array, envelope: ParsedEnvelope, heldSince?: number): void {
    const core = this.core
    const ledger = core.ledger
    const directory: SenderDirectory = core.options.directory
    const senderId = envelope.senderId
    if (envelope.type === EnvelopeType.Presence) {
      return this.rejectEntry(bytes, RejectCode.UnknownType, 'presence envelope in a sealed log', senderId)
    }
    if (core.loading && ledger.appliedHas(senderId, envelope.seq)) {
      // Applied in an earlier session: the checkpoint holds its content already.
      return this.recordApplied(bytes, envelope)
    }
    const sender = directory.resolve(senderId, envelope.seq, envelope.epoch)
    if (sender.status === 'unknown') {
      return this.holdEntry(bytes, envelope, RejectCode.UnknownSender, 'sender not certified yet', true, heldSince)
    }
    if (sender.status === 'revoked') return this.rejectEntry(bytes, RejectCode.RevokedSender, 'sender revoked', senderId)
    if (sender.status === 'ended') {
      return this.rejectEntry(bytes, RejectCode.RevokedSender, 'sender’s temporary access ended before this envelope', senderId)
    }
    if (sender.status === 'stale') {
      return this.rejectEntry(bytes, RejectCode.StaleEpoch, `epoch ${envelope.epoch} is past its grace window`, senderId)
    }
    // Signature before anything is held for a grant or key: only an authentic envelope is worth it.
    if (!verifyEnvelope(envelope, core.roomId, sender.signPublicKey)) {
      return this.rejectEntry(bytes, RejectCode.BadSignature, 'envelope signature does not verify', senderId)
    }
    // Grants can arrive after the envelopes they allow (rooms sync independently): hold, not drop.
    if (sender.status === 'not-granted') {
      return this.holdEntry(bytes, envelope, RejectCode.NotGranted, 'sender not granted (yet)', false, heldSince)
    }
    const keys = core.options.keyring.openingKeys(core.scope, envelope.epoch)
    if (keys.length === 0) {
      return this.holdEntry(bytes, envelope, RejectCode.UnknownEpoch, `no key for epoch ${envelope.epoch}`, false, heldSince)
    }
    const plaintext = decryptWithAny(envelope, core.roomId, keys)
    if (!plaintext) {
      // Authentic but sealed under a key this device lacks: another owner may have started the
      // same epoch concurrently, and that start's key is on its way. Held (bounded, as if
      // unverified: a member could seal junk); refused with 9 once the hold time passes.
      return this.holdEntry(bytes, envelope, RejectCode.BadCiphertext, 'none of the epoch\'s keys opens it (yet)', true, heldSince)
    }
    // Checked after authentication so a tampered copy of an applied envelope is reported as
    // tampering, and only a genuine re-delivery counts as a replay. Only seqs this device applied
    // itself count: a snapshot's coverage claims never make it refuse another sender's envelope.
    const applied = ledger.applied.get(senderId)
    if (applied?.has(envelope.seq)) {
      // A replay may carry text forgotten since: swept once a snapshot in the log holds its content.
      const extent = envelope.type === EnvelopeType.Snapshot ? snapshotStateRange(plaintext)?.end : updateExtent(plaintext)
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
      if (outcome === 'landed-deleted') this.compactor.compactForDeletedContent()
      this.compactor.grew(bytes.length)
      // One of this device's own (after a restart, or copied back by a peer): where it ends.
      if (senderId === core.signer?.senderId && envelope.seq > core.tip.seq) this.noteOwnTip(plaintext, envelope.seq)
    } else {
      const decoded = decodeSnapshotChecked(plaintext)
      if (!decoded.ok) return this.rejectEntry(bytes, decoded.code, `snapshot: ${decoded.reason}`, senderId)
      const snapshot = decoded.value
      // A peer that has itself applied everything the snapshot covers gains nothing from its
      // state: anything else in it was sealed (or will be) in an envelope of its own.
      const redundant = [...snapshot.coverage].every(([s, seqs]) => ledger.applied.get(s)?.covers(seqs) === true)
      // (No landed-deleted check: a snapshot state carries its own deletions as GC structs, which
      // would make every snapshot look suspicious; `carriesDeletedContent` below checks it.)
      if (!redundant && this.applyRemote(snapshot.state, false) === 'failed') {
        return this.rejectEntry(bytes, RejectCode.BadPayload, 'snapshot state does not apply', senderId)
      }
      // What a sender's snapshot says about *its own* seqs is a hint for gap detection; what it
      // claims about other senders' is not used at all (it could not be checked).
      const own = snapshot.coverage.get(senderId)
      if (own) ledger.addClaims(senderId, own)
      // A snapshot in parts: each part names the same coverage (see `compactor.ts`).
      const last = this.lastSnapshot
      this.compactor.snapshotSeen(bytes.length, last?.senderId === senderId && sameCoverage(last.coverage, snapshot.coverage))
      this.lastSnapshot = { senderId, coverage: snapshot.coverage }
      // Sealed without this device's last erasure: it may carry the erased text.
      const signer = core.signer
      if (signer && core.erasureSeq > 0 && senderId !== signer.senderId && snapshot.coverage.get(signer.senderId)?.has(core.erasureSeq) !== true) {
        this.compactor.compactSoon({ erasing: true })
      } else if (signer && senderId !== signer.senderId && !ledger.coversApplied(snapshot.coverage) && carriesDeletedContent(core.inner, snapshot.state)) {
        // Sealed without something this device applied — perhaps another device's forget — and
        // it carries text deleted here: compact it away (whoever forgot may never come back).
        this.compactor.compactForDeletedContent()
      }
    }
    this.recordApplied(bytes, envelope)
    core.options.onApplied?.(senderId)
  }

  /** Our own update carries structs of one client: ours when we sealed it. */
  private noteOwnTip(update: Uint8Array, seq: number): void {
    const extent = updateExtent(update)
    if (!extent || extent.size !== 1) return
    for (const [client, clock] of extent) this.core.tip = { client, clock, seq }
  }

  private recordApplied(bytes: Uint8Array, envelope: ParsedEnvelope): void {
    const core = this.core
    core.ledger.recordApplied(bytes, envelope)
    if (envelope.senderId === core.signer?.senderId) core.sealedEpoch = Math.max(core.sealedEpoch, envelope.epoch)
  }

  /**
   * Apply a peer's update; with `noteLanded`, `landed-deleted` when some of its content arrived
   * already deleted here.
   */
  private applyRemote(update: Uint8Array, noteLanded = true): 'applied' | 'landed-deleted' | 'failed' {
    const core = this.core
    try {
      // The envelope is authenticated, so garbage can only come from a certified device; Yjs
      // reads every struct before integrating any, so a malformed update throws before it
      // changes the doc. But applyUpdate allocates an array for each client's claimed struct
      // count before reading them — 256 MiB for a 9-byte update claiming 2^25 (found by the fuzz
      // campaign) — so the update is walked first with Yjs's lazy reader, which allocates nothing
      // per claim and throws on the same garbage.
      Y.parseUpdateMeta(update)
      if (!noteLanded) {
        Y.applyUpdate(core.inner, update, core.remoteOrigin)
        return 'applied'
      }
      return applyNotingLandedDeleted(core.inner, update, core.remoteOrigin) ? 'landed-deleted' : 'applied'
    } catch {
      return 'failed'
    }
  }

  /** Hold an envelope; `bounded` ones (unauthenticated, or undecryptable) count against the hold limits. */
  private holdEntry(bytes: Uint8Array, envelope: ParsedEnvelope, code: RejectCode, reason: string, bounded: boolean, since?: number): void {
    const core = this.core
    const senderId = envelope.senderId
    if (!core.held.add(bytes, envelope, bounded, code, since)) {
      return this.rejectEntry(bytes, RejectCode.HoldLimit, `hold of this room is full (${reason})`, senderId)
    }
    core.ledger.entries.set(bytes, { state: 'held' })
    // A retried envelope that is still held was reported when it first arrived.
    if (since === undefined) core.events.emit('held', { code, reason, scope: core.scope, roomId: core.roomId, senderId })
  }

  /** Held envelopes the registry never vouched for within the hold time are refused. */
  private expireHeld(): void {
    const core = this.core
    if (core.closed) return
    for (const { bytes, senderId, code } of core.held.expired()) {
      core.held.delete(bytes)
      if (code === RejectCode.BadCiphertext) {
        this.rejectEntry(bytes, RejectCode.BadCiphertext, 'no key of its epoch opened it within the hold time', senderId)
      } else {
        this.rejectEntry(bytes, RejectCode.HoldLimit, 'held longer than the hold time; the registry never vouched for it', senderId)
      }
    }
  }

  private rejectEntry(bytes: Uint8Array, code: RejectCode, reason: string, senderId?: string, extent?: Extent): void {
    this.core.ledger.entries.set(bytes, extent ? { state: 'rejected', code, extent } : { state: 'rejected', code })
    this.core.emitReject(code, reason, senderId)
    // Swept soon, whatever the code: almost any refused entry may carry readable text — a replay,
    // a revoked or stale sender's envelope, a copy of a genuine one with a flipped signature bit
    // (its ciphertext intact, maybe of text forgotten since). Sweeps are rate-limited, so a flood
    // costs one log delete and store rewrite a second.
    this.upkeep.scheduleSweep()
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

/** True when two snapshot coverages list the same seqs for the same senders. */
function sameCoverage(a: Map<string, SeqSet>, b: Map<string, SeqSet>): boolean {
  if (a.size !== b.size) return false
  for (const [sender, seqs] of a) if (b.get(sender)?.equals(seqs) !== true) return false
  return true
}
