/**
 * Presence envelopes (WIRE.md "Presence and seq announcements"): what a device tells the others
 * about itself — online, what it is doing, which session it is in — sealed like any envelope
 * (type 3 = presence, the personal scope's sealing key, the device's signature) and carried as
 * the device's y-protocols awareness state of the personal scope's sealed log. The awareness
 * state holds only `{ e: <base64url envelope> }`: relays and transports never see plaintext
 * presence.
 *
 * Presence plaintext (lib0): `u8 version=3 · varuint at (sender clock, ms) · varstring activity ·
 * varstring activeSessionId · varuint logSeq · varuint tipClient · varuint tipClock` (empty string /
 * 0 = none). `logSeq` is the sender's latest seq in the room's sealed log, and the tip where its
 * latest sealed update ends in the inner doc: receivers compare them with what they hold and so
 * notice envelopes a relay withholds (WIRE.md "Presence and seq announcements"). Versions 1 (no
 * `logSeq`) and 2 (no tip) are still read.
 *
 * Seqs: presence envelopes carry their own per-sender seq, `max(previous + 1, Date.now())`, so it
 * keeps increasing across restarts without being stored. A receiver keeps the newest seq per
 * sender: an older seq is stale and ignored; the same seq is accepted only as the byte-identical
 * envelope (a re-announcement after a reconnect), and with other bytes is a replay
 * (`RejectCode.Replay`).
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { reject, RejectCode, type Checked } from '../crypto/codes.js'
import { decryptEnvelope, EnvelopeType, parseEnvelope, sealEnvelope, verifyEnvelope } from '../crypto/envelope.js'
import { bytesEqual, fromBase64Url, toBase64Url } from '../util/bytes.js'

const PRESENCE_VERSION = 3
/** The version before `logSeq`; still accepted. */
const PRESENCE_VERSION_1 = 1
/** The version before the tip; still accepted. */
const PRESENCE_VERSION_2 = 2
/** Longest activity / session id carried. */
export const MAX_PRESENCE_FIELD = 200
/** Longest base64url envelope accepted from an awareness state. */
const MAX_STATE_CHARS = 4096

/** What a device says about itself. */
export interface PresencePayload {
  /** Sender's clock when it sealed this (ms). */
  at: number
  activity?: string
  activeSessionId?: string
  /** The sender's latest seq in this room's sealed log (absent: it has sealed nothing there). */
  logSeq?: number
  /**
   * Where the sender's latest sealed update ends in the inner doc: its Yjs client and the clock
   * past its last struct (absent: none). A receiver whose doc reaches it holds that content even
   * when the envelope that carried it was compacted away.
   */
  tip?: { client: number; clock: number }
}

/** The awareness state of a device: only the sealed envelope. */
export interface PresenceAwarenessState {
  e: string
}

/** Encode presence plaintext. */
export function encodePresence(payload: PresencePayload): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, PRESENCE_VERSION)
  encoding.writeVarUint(enc, Math.max(0, Math.floor(payload.at)))
  encoding.writeVarString(enc, payload.activity ?? '')
  encoding.writeVarString(enc, payload.activeSessionId ?? '')
  encoding.writeVarUint(enc, Math.max(0, Math.floor(payload.logSeq ?? 0)))
  encoding.writeVarUint(enc, payload.tip?.client ?? 0)
  encoding.writeVarUint(enc, payload.tip?.clock ?? 0)
  return encoding.toUint8Array(enc)
}

/** Decode presence plaintext; `undefined` when malformed. */
export function decodePresence(bytes: Uint8Array): PresencePayload | undefined {
  try {
    const dec = decoding.createDecoder(bytes)
    const version = decoding.readUint8(dec)
    if (version !== PRESENCE_VERSION && version !== PRESENCE_VERSION_2 && version !== PRESENCE_VERSION_1) return undefined
    const at = decoding.readVarUint(dec)
    const activity = decoding.readVarString(dec)
    const activeSessionId = decoding.readVarString(dec)
    const logSeq = version === PRESENCE_VERSION_1 ? 0 : decoding.readVarUint(dec)
    const tipClient = version === PRESENCE_VERSION ? decoding.readVarUint(dec) : 0
    const tipClock = version === PRESENCE_VERSION ? decoding.readVarUint(dec) : 0
    if (decoding.hasContent(dec) || activity.length > MAX_PRESENCE_FIELD || activeSessionId.length > MAX_PRESENCE_FIELD) return undefined
    // Yjs client ids are 32-bit; clocks are safe integers.
    if (!Number.isSafeInteger(at) || !Number.isSafeInteger(logSeq) || tipClient > 0xffffffff || !Number.isSafeInteger(tipClock)) return undefined
    const out: PresencePayload = { at }
    if (activity) out.activity = activity
    if (activeSessionId) out.activeSessionId = activeSessionId
    if (logSeq > 0) out.logSeq = logSeq
    if (tipClock > 0) out.tip = { client: tipClient, clock: tipClock }
    return out
  } catch {
    return undefined
  }
}

/** Everything needed to seal a presence envelope. */
export interface SealPresenceInput {
  roomId: string
  epoch: number
  key: Uint8Array
  sender: Uint8Array
  signSecretKey: Uint8Array
  seq: number
  payload: PresencePayload
}

/** Seal presence into the awareness state a device publishes. */
export function sealPresence(input: SealPresenceInput): PresenceAwarenessState {
  const envelope = sealEnvelope({
    roomId: input.roomId,
    type: EnvelopeType.Presence,
    epoch: input.epoch,
    seq: input.seq,
    sender: input.sender,
    signSecretKey: input.signSecretKey,
    key: input.key,
    plaintext: encodePresence(input.payload),
  })
  return { e: toBase64Url(envelope) }
}

/** What a receiver knows about senders and keys. */
export interface PresenceKeys {
  roomId: string
  /** The sender's signing key, or why there is none. */
  sender(senderId: string): { status: 'known'; signPublicKey: Uint8Array } | { status: 'unknown' } | { status: 'revoked' }
  /**
   * The room's keys of an epoch (several when owners started it concurrently), the sealing key
   * first; empty while not held.
   */
  epochKeys(epoch: number): Uint8Array[]
}

/** An opened presence envelope. */
export interface OpenedPresence {
  senderId: string
  seq: number
  /** The envelope bytes (to recognise a re-announcement). */
  bytes: Uint8Array
  payload: PresencePayload
}

/** Result of opening: opened, refused with a code, or held until the sender/key is known. */
export type OpenResult = Checked<OpenedPresence> | { ok: false; held: true; code: RejectCode; reason: string; senderId: string }

/** Open an untrusted awareness state. Never throws. */
export function openPresence(state: unknown, keys: PresenceKeys): OpenResult {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) return reject(RejectCode.Malformed, 'awareness state is not an object')
  const entries = Object.keys(state)
  const e = (state as Record<string, unknown>).e
  if (entries.length !== 1 || typeof e !== 'string') return reject(RejectCode.Malformed, 'awareness state must be exactly { e: <envelope> }')
  if (e.length > MAX_STATE_CHARS) return reject(RejectCode.Malformed, 'presence envelope too long')
  const bytes = fromBase64Url(e)
  if (!bytes) return reject(RejectCode.Malformed, 'presence envelope is not base64url')
  const parsed = parseEnvelope(bytes)
  if (!parsed.ok) return parsed
  const envelope = parsed.value
  if (envelope.type !== EnvelopeType.Presence) return reject(RejectCode.UnknownType, `envelope type ${envelope.type} in awareness`)
  const sender = keys.sender(envelope.senderId)
  if (sender.status === 'unknown') {
    return { ok: false, held: true, code: RejectCode.UnknownSender, reason: 'sender not certified yet', senderId: envelope.senderId }
  }
  if (sender.status === 'revoked') return reject(RejectCode.RevokedSender, 'sender revoked')
  if (!verifyEnvelope(envelope, keys.roomId, sender.signPublicKey)) return reject(RejectCode.BadSignature, 'presence signature does not verify')
  const epochKeys = keys.epochKeys(envelope.epoch)
  if (epochKeys.length === 0) {
    return { ok: false, held: true, code: RejectCode.UnknownEpoch, reason: `no key for epoch ${envelope.epoch}`, senderId: envelope.senderId }
  }
  let plaintext: Uint8Array | undefined
  for (const key of epochKeys) if ((plaintext = decryptEnvelope(envelope, keys.roomId, key))) break
  if (!plaintext) return reject(RejectCode.BadCiphertext, 'presence does not decrypt')
  const payload = decodePresence(plaintext)
  if (!payload) return reject(RejectCode.BadPayload, 'presence payload does not decode')
  return { ok: true, value: { senderId: envelope.senderId, seq: envelope.seq, bytes, payload } }
}

/** Per-sender replay protection for presence. */
export class PresenceSeqs {
  private readonly latest = new Map<string, { seq: number; bytes: Uint8Array }>()

  /**
   * Classify an opened envelope: `new` (newer than anything seen from its sender — recorded),
   * `same` (the byte-identical latest envelope again), `stale` (older: ignored, not reported — an
   * honest relay delivers those too, since it keeps a restarted device's old awareness client
   * until it times out and hands it to every device that connects), or `replay` (the same seq
   * with different bytes: no honest sender makes that).
   */
  check(opened: OpenedPresence): 'new' | 'same' | 'stale' | 'replay' {
    const last = this.latest.get(opened.senderId)
    if (last) {
      if (opened.seq < last.seq) return 'stale'
      if (opened.seq === last.seq) return bytesEqual(opened.bytes, last.bytes) ? 'same' : 'replay'
    }
    this.latest.set(opened.senderId, { seq: opened.seq, bytes: opened.bytes })
    return 'new'
  }
}

/** The next seq of a sender: `max(previous + 1, now)`. */
export function nextPresenceSeq(previous: number, now = Date.now()): number {
  return Math.max(previous + 1, Math.floor(now))
}
