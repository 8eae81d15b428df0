/**
 * Envelope v1: the unit of the sealed log. See WIRE.md "Envelope v1".
 *
 * ```
 * u8 version(1) · u8 type(update=1 | snapshot=2 | presence=3)
 * varuint epoch · 16B senderDeviceId · varuint seq          ← header
 * 24B nonce · varbytes ciphertext · 64B signature
 * ```
 * - AEAD: XChaCha20-Poly1305-IETF under the scope's epoch key, random nonce,
 *   AAD = varstring "contextsync/v1/envelope" ‖ varstring roomId ‖ header bytes,
 *   so an envelope cannot be moved to another room, epoch, type, sender or seq.
 * - Signature: Ed25519 by the sender over
 *   varstring "contextsync/v1/envelope-signature" ‖ varstring roomId ‖ every preceding byte.
 *
 * Opening is split in two so the sync layer can decide between *holding* (sender or epoch key
 * not known yet) and *rejecting*: {@link parseEnvelope} checks structure only;
 * {@link openEnvelope} verifies and decrypts with keys the caller resolved.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { toHex } from '../util/bytes.js'
import { reject, RejectCode, type Checked } from './codes.js'
import { ID_BYTES } from './keys.js'
import { aeadDecrypt, aeadEncrypt, NONCE_BYTES, SIGNATURE_BYTES, signDetached, verifyDetached } from './primitives.js'
import { ValidationError } from '../errors.js'

/** Envelope format version written by this build. */
export const ENVELOPE_VERSION = 1
const AAD_DOMAIN = 'contextsync/v1/envelope'
const SIGNATURE_DOMAIN = 'contextsync/v1/envelope-signature'
/** version + type + epoch(≥1) + sender + seq(≥1) + nonce + ciphertext length(≥1) + MAC + signature. */
const MIN_ENVELOPE_BYTES = 1 + 1 + 1 + ID_BYTES + 1 + NONCE_BYTES + 1 + 16 + SIGNATURE_BYTES

/** Envelope types. Stable numbers. */
export const EnvelopeType = {
  /** A batch of inner-doc updates. */
  Update: 1,
  /** Full inner state plus the per-sender seqs it covers (compaction). */
  Snapshot: 2,
  /** Encrypted presence state (carried over awareness). */
  Presence: 3,
} as const
/** One of the {@link EnvelopeType} numbers. */
export type EnvelopeType = (typeof EnvelopeType)[keyof typeof EnvelopeType]

/** The structure of an envelope, before any cryptographic check. */
export interface ParsedEnvelope {
  type: EnvelopeType
  epoch: number
  /** 16-byte sender device id. */
  sender: Uint8Array
  /** Hex form of {@link sender}. */
  senderId: string
  seq: number
  /** The original bytes, kept for verification. */
  bytes: Uint8Array
  /** Where the header ends (AAD covers `[0, headerEnd)`). */
  headerEnd: number
  nonce: Uint8Array
  ciphertext: Uint8Array
  /** Where the signature starts (signature covers `[0, signatureStart)`). */
  signatureStart: number
}

/** Everything needed to seal one envelope. */
export interface SealInput {
  roomId: string
  type: EnvelopeType
  epoch: number
  seq: number
  /** Sender's 16-byte device id. */
  sender: Uint8Array
  /** Sender's Ed25519 secret key. */
  signSecretKey: Uint8Array
  /** The scope's 32-byte key for `epoch`. */
  key: Uint8Array
  plaintext: Uint8Array
}

function writeHeader(enc: encoding.Encoder, type: number, epoch: number, sender: Uint8Array, seq: number): void {
  encoding.writeUint8(enc, ENVELOPE_VERSION)
  encoding.writeUint8(enc, type)
  encoding.writeVarUint(enc, epoch)
  encoding.writeUint8Array(enc, sender)
  encoding.writeVarUint(enc, seq)
}

function boundBytes(domain: string, roomId: string, bytes: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarString(enc, domain)
  encoding.writeVarString(enc, roomId)
  encoding.writeUint8Array(enc, bytes)
  return encoding.toUint8Array(enc)
}

/** Seal `plaintext` into an envelope. */
export function sealEnvelope(input: SealInput): Uint8Array {
  if (input.sender.length !== ID_BYTES) throw new ValidationError('sender id must be 16 bytes')
  const headerEnc = encoding.createEncoder()
  writeHeader(headerEnc, input.type, input.epoch, input.sender, input.seq)
  const header = encoding.toUint8Array(headerEnc)
  const { nonce, ciphertext } = aeadEncrypt(input.plaintext, boundBytes(AAD_DOMAIN, input.roomId, header), input.key)
  const enc = encoding.createEncoder()
  encoding.writeUint8Array(enc, header)
  encoding.writeUint8Array(enc, nonce)
  encoding.writeVarUint8Array(enc, ciphertext)
  const unsigned = encoding.toUint8Array(enc)
  // The signature binds the room as well, by putting it in the signed message rather than the bytes.
  const signature = signDetached(SIGNATURE_DOMAIN, withRoom(input.roomId, unsigned), input.signSecretKey)
  const out = new Uint8Array(unsigned.length + SIGNATURE_BYTES)
  out.set(unsigned)
  out.set(signature, unsigned.length)
  return out
}

function withRoom(roomId: string, bytes: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarString(enc, roomId)
  encoding.writeUint8Array(enc, bytes)
  return encoding.toUint8Array(enc)
}

/** Check an envelope's structure (no crypto). Never throws. */
export function parseEnvelope(bytes: unknown): Checked<ParsedEnvelope> {
  if (!(bytes instanceof Uint8Array)) return reject(RejectCode.Malformed, 'envelope is not bytes')
  // lib0 readers do not all bounds-check (readUint8 past the end yields undefined), so refuse
  // anything shorter than the smallest possible envelope up front; the final length check catches the rest.
  if (bytes.length < MIN_ENVELOPE_BYTES) return reject(RejectCode.Malformed, 'envelope too short')
  try {
    const dec = decoding.createDecoder(bytes)
    const version = decoding.readUint8(dec)
    if (version !== ENVELOPE_VERSION) return reject(RejectCode.UnsupportedVersion, `envelope version ${version}`)
    const type = decoding.readUint8(dec)
    if (type !== EnvelopeType.Update && type !== EnvelopeType.Snapshot && type !== EnvelopeType.Presence) {
      return reject(RejectCode.UnknownType, `envelope type ${type}`)
    }
    const epoch = decoding.readVarUint(dec)
    const sender = decoding.readUint8Array(dec, ID_BYTES)
    const seq = decoding.readVarUint(dec)
    const headerEnd = dec.pos
    const nonce = decoding.readUint8Array(dec, NONCE_BYTES)
    const ciphertext = decoding.readVarUint8Array(dec)
    const signatureStart = dec.pos
    if (bytes.length - signatureStart !== SIGNATURE_BYTES) {
      return reject(RejectCode.Malformed, 'envelope length does not match its fields')
    }
    if (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(seq) || seq < 1) {
      return reject(RejectCode.Malformed, 'envelope epoch/seq out of range')
    }
    return {
      ok: true,
      value: { type, epoch, sender, senderId: toHex(sender), seq, bytes, headerEnd, nonce, ciphertext, signatureStart },
    }
  } catch {
    return reject(RejectCode.Malformed, 'envelope truncated')
  }
}

/** Verify the sender's Ed25519 signature over the envelope, bound to `roomId`. Never throws. */
export function verifyEnvelope(envelope: ParsedEnvelope, roomId: string, signPublicKey: Uint8Array): boolean {
  const signed = envelope.bytes.subarray(0, envelope.signatureStart)
  const signature = envelope.bytes.subarray(envelope.signatureStart)
  return verifyDetached(SIGNATURE_DOMAIN, withRoom(roomId, signed), signature, signPublicKey)
}

/** Decrypt with the epoch key; `undefined` when authentication fails. Never throws. */
export function decryptEnvelope(envelope: ParsedEnvelope, roomId: string, key: Uint8Array): Uint8Array | undefined {
  const aad = boundBytes(AAD_DOMAIN, roomId, envelope.bytes.subarray(0, envelope.headerEnd))
  return aeadDecrypt(envelope.ciphertext, aad, envelope.nonce, key)
}

/**
 * {@link verifyEnvelope} then {@link decryptEnvelope}. Never throws; returns the plaintext or a
 * {@link RejectCode}.
 */
export function openEnvelope(
  envelope: ParsedEnvelope,
  roomId: string,
  signPublicKey: Uint8Array,
  key: Uint8Array,
): Checked<Uint8Array> {
  if (!verifyEnvelope(envelope, roomId, signPublicKey)) {
    return reject(RejectCode.BadSignature, 'envelope signature does not verify')
  }
  const plaintext = decryptEnvelope(envelope, roomId, key)
  if (!plaintext) return reject(RejectCode.BadCiphertext, 'envelope does not decrypt')
  return { ok: true, value: plaintext }
}
