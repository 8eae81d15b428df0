/**
 * Envelopes a replica holds because it cannot apply them yet — their sender's certificate or
 * grant, or their epoch key, has not arrived (rooms sync independently, so the registry may lag).
 *
 * Two kinds: an envelope from a sender that is not certified (yet) cannot even be authenticated,
 * so a relay without any key can fill the hold with junk naming made-up senders. Those are
 * *unverified* and bounded per room in count, bytes and time (WIRE.md "Sealed log", held
 * envelopes): past a bound an envelope is refused with `HoldLimit` (16) instead, and the replica
 * deletes refused entries from its log, so its store never keeps more than the bound. An
 * envelope whose signature verified (waiting for a grant or an epoch key) came from a device of
 * the account and is held without those bounds: its key may take as long as an owner is offline.
 *
 * @module
 */
import type { ParsedEnvelope } from '../crypto/envelope.js'

/** Bounds of the unverified hold of one room (envelopes from senders not certified yet). */
export interface HoldLimits {
  /** Most unverified envelopes held at once. Default 64. */
  maxEntries: number
  /** Most unverified bytes held at once. Default 16 MiB (a snapshot can be large). */
  maxBytes: number
  /** How long an unverified envelope may wait for the registry to vouch for its sender (ms). Default 10 min. */
  timeoutMs: number
}

/** Defaults of {@link HoldLimits}: room for what a device whose certificate lags wrote, not for a flood. */
export const DEFAULT_HOLD_LIMITS: Readonly<HoldLimits> = { maxEntries: 64, maxBytes: 16 * 1024 * 1024, timeoutMs: 10 * 60_000 }

interface Held {
  envelope: ParsedEnvelope
  /** Monotonic ms when first held. */
  since: number
  /** Bounded: its signature could not be checked (unknown sender), or no key opens it yet. */
  unverified: boolean
  /** Why it is held (reported again if it expires). */
  code: number
}

/** Monotonic ms: a hold must not expire early when the wall clock jumps. */
const monotonic = (): number => performance.now()

/** The bounded hold of one room, keyed by the log's own copy of each envelope. */
export class HeldEnvelopes {
  private readonly held = new Map<Uint8Array, Held>()
  private unverifiedCount = 0
  private unverifiedBytes = 0

  constructor(private readonly limits: HoldLimits) {}

  /** Number of envelopes held. */
  get size(): number {
    return this.held.size
  }

  /** True when `bytes` is held. */
  has(bytes: Uint8Array): boolean {
    return this.held.has(bytes)
  }

  /**
   * Hold an envelope (again: a retried one keeps its original time). Returns false, holding
   * nothing, when an unverified one would pass a bound.
   */
  add(bytes: Uint8Array, envelope: ParsedEnvelope, unverified: boolean, code: number, since = monotonic()): boolean {
    if (this.held.has(bytes)) return true
    if (unverified) {
      if (this.unverifiedCount + 1 > this.limits.maxEntries || this.unverifiedBytes + bytes.length > this.limits.maxBytes) return false
      this.unverifiedCount++
      this.unverifiedBytes += bytes.length
    }
    this.held.set(bytes, { envelope, since, unverified, code })
    return true
  }

  /** Stop holding `bytes`; returns whether it was held. */
  delete(bytes: Uint8Array): boolean {
    const held = this.held.get(bytes)
    if (!held) return false
    this.held.delete(bytes)
    if (held.unverified) {
      this.unverifiedCount--
      this.unverifiedBytes -= bytes.length
    }
    return true
  }

  /** What is held, for diagnostics: sender, epoch, seq and why, oldest first. */
  describe(): Array<{ senderId: string; epoch: number; seq: number; code: number }> {
    return [...this.held.values()].map(({ envelope, code }) => ({ senderId: envelope.senderId, epoch: envelope.epoch, seq: envelope.seq, code }))
  }

  /** Take every held envelope out (to retry them), oldest first. */
  takeAll(): Array<{ bytes: Uint8Array; envelope: ParsedEnvelope; since: number }> {
    const out = [...this.held].map(([bytes, held]) => ({ bytes, envelope: held.envelope, since: held.since }))
    this.held.clear()
    this.unverifiedCount = 0
    this.unverifiedBytes = 0
    return out
  }

  /** Bounded envelopes held longer than the timeout (nothing arrived that vouches for or opens them). */
  expired(now = monotonic()): Array<{ bytes: Uint8Array; senderId: string; code: number }> {
    const out: Array<{ bytes: Uint8Array; senderId: string; code: number }> = []
    for (const [bytes, held] of this.held) {
      if (held.unverified && now - held.since >= this.limits.timeoutMs) out.push({ bytes, senderId: held.envelope.senderId, code: held.code })
    }
    return out
  }
}
