/**
 * Pairing a new device with an invite code (WIRE.md "Pairing").
 *
 * An invite code is 80 random bits written as 16 Crockford base32 characters
 * (`K7QF-2M9X-PL4D-8RTA`): short enough to type, fit for a QR code. Both devices derive from it a
 * rendezvous room id (`pair.<hash>`) and a pairing key; every message between them is
 * XChaCha20-Poly1305-sealed under that key, so the code never travels and only a holder of the
 * code can ask to join or read the answer. An 80-bit secret is out of reach of offline guessing,
 * and the owner accepts one request per code before its short expiry.
 *
 * Message (lib0): `u8 version(2) · u8 type · 24B nonce · varbytes ciphertext`, AAD =
 * `varstring "contextsync/v1/pair" ‖ varstring roomId ‖ u8 version ‖ u8 type`.
 *
 * The code alone proves little once someone else has read it (over a shoulder, off a photo):
 * whoever holds it can answer as the owner or ask as the joiner. So both devices show a short
 * authentication string over the whole exchange — the root key, the joiner's keys and a nonce
 * from each side — and the joiner commits to its nonce before it sees the owner's, so someone in
 * the middle cannot search for keys whose digits match (one try in a million per attempt, and an
 * invite allows {@link MAX_PAIRING_ATTEMPTS}). WIRE.md "Pairing" has the exchange.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { toBase64Url, utf8 } from '../util/bytes.js'
import { fromCrockford, toCrockford } from '../util/base32.js'
import { reject, RejectCode, type Checked } from './codes.js'
import { aeadDecrypt, aeadEncrypt, hash, NONCE_BYTES, randomBytes } from './primitives.js'

/** Bytes of secret in an invite code. */
export const INVITE_SECRET_BYTES = 10
/** Bytes of each side's pairing nonce. */
export const PAIRING_NONCE_BYTES = 32
/** Join attempts one invite answers (each may end in a mismatch); later requests are refused. */
export const MAX_PAIRING_ATTEMPTS = 3
const PAIR_VERSION = 2
const MAX_TYPE = 7

/** Pairing message types. */
export const PairingMessageType = {
  /** New device → owner: its public keys, kind, name and the commitment to its nonce. */
  JoinRequest: 1,
  /** Owner → new device: the account root public key and its relay pass, once both sides confirmed. */
  Welcome: 2,
  /** Owner → new device: the request was refused (expired, already used, too many attempts). */
  Refused: 3,
  /** Owner → new device: the account root public key and the owner's nonce. */
  Offer: 4,
  /** New device → owner: the nonce it committed to. */
  Reveal: 5,
  /** New device → owner: its user confirmed the digits. */
  Confirm: 6,
  /** Either side: the digits did not match (or the user declined); the attempt is over. */
  Abort: 7,
} as const
/** One of {@link PairingMessageType}. */
export type PairingMessageType = (typeof PairingMessageType)[keyof typeof PairingMessageType]

/** A fresh invite secret. */
export function createInviteSecret(): Uint8Array {
  return randomBytes(INVITE_SECRET_BYTES)
}

/** Write a secret as `XXXX-XXXX-XXXX-XXXX`. */
export function formatInviteCode(secret: Uint8Array): string {
  return toCrockford(secret)
}

/**
 * Read a typed code: case-insensitive, dashes and spaces ignored, I/L read as 1 and O as 0.
 * `undefined` when it is not a well-formed code.
 */
export function parseInviteCode(code: string): Uint8Array | undefined {
  return fromCrockford(code, INVITE_SECRET_BYTES)
}

/** The rendezvous room both devices attach for pairing. */
export function pairingRoomId(secret: Uint8Array): string {
  return `pair.${toBase64Url(hash(secret, 16, utf8('contextsync/v1/pair-room')))}`
}

/** The key that seals pairing messages. */
export function pairingKey(secret: Uint8Array): Uint8Array {
  return hash(secret, 32, utf8('contextsync/v1/pair-key'))
}

/** What the short authentication string covers: everything either side could be lied to about. */
export interface PairingTranscript {
  rootPublicKey: Uint8Array
  signPublicKey: Uint8Array
  boxPublicKey: Uint8Array
  ownerNonce: Uint8Array
  joinerNonce: Uint8Array
}

/** The joiner's commitment to its nonce, sent before it sees the owner's. */
export function pairingCommitment(joinerNonce: Uint8Array): Uint8Array {
  return hash(joinerNonce, 32, utf8('contextsync/v1/pair-commit'))
}

/**
 * The short authentication string both devices show: six digits of a keyed hash of the whole
 * transcript, so a device that reached the wrong account — or an owner handed someone else's
 * keys — shows different digits.
 */
export function pairingSas(key: Uint8Array, transcript: PairingTranscript): string {
  const enc = encoding.createEncoder()
  encoding.writeVarString(enc, 'contextsync/v1/pair-sas')
  for (const part of [transcript.rootPublicKey, transcript.signPublicKey, transcript.boxPublicKey, transcript.ownerNonce, transcript.joinerNonce]) {
    encoding.writeVarUint8Array(enc, part)
  }
  const digest = hash(encoding.toUint8Array(enc), 8, key)
  const n = ((digest[0]! << 24) | (digest[1]! << 16) | (digest[2]! << 8) | digest[3]!) >>> 0
  const digits = String(n % 1_000_000).padStart(6, '0')
  return `${digits.slice(0, 3)} ${digits.slice(3)}`
}

function aad(roomId: string, type: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarString(enc, 'contextsync/v1/pair')
  encoding.writeVarString(enc, roomId)
  encoding.writeUint8(enc, PAIR_VERSION)
  encoding.writeUint8(enc, type)
  return encoding.toUint8Array(enc)
}

/** Seal a pairing message. */
export function sealPairingMessage(key: Uint8Array, roomId: string, type: PairingMessageType, body: Uint8Array): Uint8Array {
  const { nonce, ciphertext } = aeadEncrypt(body, aad(roomId, type), key)
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, PAIR_VERSION)
  encoding.writeUint8(enc, type)
  encoding.writeUint8Array(enc, nonce)
  encoding.writeVarUint8Array(enc, ciphertext)
  return encoding.toUint8Array(enc)
}

/** Open a pairing message. Never throws. */
export function openPairingMessage(key: Uint8Array, roomId: string, bytes: unknown): Checked<{ type: PairingMessageType; body: Uint8Array }> {
  if (!(bytes instanceof Uint8Array) || bytes.length < 2 + NONCE_BYTES + 17) return reject(RejectCode.Malformed, 'pairing message too short')
  try {
    const dec = decoding.createDecoder(bytes)
    const version = decoding.readUint8(dec)
    if (version !== PAIR_VERSION) return reject(RejectCode.UnsupportedVersion, `pairing version ${version}`)
    const type = decoding.readUint8(dec)
    if (type < 1 || type > MAX_TYPE) return reject(RejectCode.UnknownType, `pairing message type ${type}`)
    const nonce = decoding.readUint8Array(dec, NONCE_BYTES)
    const ciphertext = decoding.readVarUint8Array(dec)
    if (decoding.hasContent(dec)) return reject(RejectCode.Malformed, 'pairing message has trailing bytes')
    const body = aeadDecrypt(ciphertext, aad(roomId, type), nonce, key)
    if (!body) return reject(RejectCode.BadCiphertext, 'pairing message does not decrypt')
    return { ok: true, value: { type: type as PairingMessageType, body } }
  } catch {
    return reject(RejectCode.Malformed, 'pairing message truncated')
  }
}
