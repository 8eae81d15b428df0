/**
 * Signed statements: the only content of the account registry (device certificates, and later
 * revocations, scope definitions, grants, lockboxes). Each is signed by the account root and
 * verified on read, so a member device that can write to the registry still cannot forge an
 * owner's action.
 *
 * Wire format (lib0 encoding):
 * ```
 * u8 version(1) · u8 type · varbytes body · 64B signature
 * signature = Ed25519(root, "contextsync/v1/statement" ‖ varstring accountId ‖ all preceding bytes)
 * ```
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { reject, RejectCode, type Checked } from './codes.js'
import type { AccountKeys } from './keys.js'
import { SIGNATURE_BYTES, signDetached, verifyDetached } from './primitives.js'
import { ContextSyncError, PermissionError } from '../errors.js'

const STATEMENT_VERSION = 1
const STATEMENT_DOMAIN = 'contextsync/v1/statement'

/** Statement types. Stable numbers. */
export const StatementType = {
  DeviceCertificate: 1,
  /** A minimal certificate for the relay: device id + signing key + rooms, no kind or name. */
  RelayPass: 2,
  /**
   * A device is revoked — the legacy form, whose `maxSeq` cutoffs could not say which seqs the
   * owner applied: still verified (the device stays revoked), but nothing of the device is
   * accepted on its strength.
   */
  Revocation: 3,
  /** A scope's policy: which device kinds hold it, its room, its retention. */
  ScopeDefinition: 4,
  /** One device is granted one scope beyond its kind's policy. */
  Grant: 5,
  /** An epoch key sealed to one device's X25519 key. */
  Lockbox: 6,
  /** A scope moved to a new key epoch — the legacy form, without salt or recipients. */
  EpochStart: 7,
  /** A device is revoked, with the exact seqs of it that stay valid, per room. */
  RevocationV2: 8,
  /** A scope moved to a new key epoch: its salt (the key's derivation input) and recipients. */
  EpochStartV2: 9,
  /** An epoch key sealed to one device, naming the epoch start (salt) the key belongs to. */
  LockboxV2: 10,
  /** One device is granted one scope beyond its kind's policy, until a time. */
  GrantV2: 11,
  /** A member device's membership ends at a time (a rental car); the newest term is in force. */
  DeviceTerm: 12,
  /** A relay pass whose admission ends at a time, for the whole pass or per room. */
  RelayPassV2: 13,
  /** The seqs of a device whose temporary access ended that stay valid in one room. */
  EndCutoff: 14,
} as const
/** One of the {@link StatementType} numbers. */
export type StatementType = (typeof StatementType)[keyof typeof StatementType]

/** A statement whose root signature has been verified. */
export interface VerifiedStatement {
  type: StatementType
  body: Uint8Array
}

function signedMessage(accountId: string, unsigned: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarString(enc, accountId)
  encoding.writeUint8Array(enc, unsigned)
  return encoding.toUint8Array(enc)
}

/** Sign a statement body with the account root. Throws when `account` holds no root secret. */
export function signStatement(account: AccountKeys, type: StatementType, body: Uint8Array): Uint8Array {
  if (!account.rootSecretKey) throw new PermissionError('signing a statement needs the account root (owner device)')
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, STATEMENT_VERSION)
  encoding.writeUint8(enc, type)
  encoding.writeVarUint8Array(enc, body)
  const unsigned = encoding.toUint8Array(enc)
  const signature = signDetached(STATEMENT_DOMAIN, signedMessage(account.accountId, unsigned), account.rootSecretKey)
  const out = new Uint8Array(unsigned.length + SIGNATURE_BYTES)
  out.set(unsigned)
  out.set(signature, unsigned.length)
  return out
}

/** Parse and verify a statement against the account root. Never throws. */
export function verifyStatement(account: AccountKeys, bytes: Uint8Array): Checked<VerifiedStatement> {
  let type: number
  let body: Uint8Array
  let unsignedLength: number
  if (!(bytes instanceof Uint8Array) || bytes.length < 3 + SIGNATURE_BYTES) return reject(RejectCode.Malformed, 'statement too short')
  try {
    const dec = decoding.createDecoder(bytes)
    const version = decoding.readUint8(dec)
    if (version !== STATEMENT_VERSION) return reject(RejectCode.UnsupportedVersion, `statement version ${version}`)
    type = decoding.readUint8(dec)
    body = decoding.readVarUint8Array(dec)
    unsignedLength = dec.pos
    if (bytes.length - unsignedLength !== SIGNATURE_BYTES) return reject(RejectCode.Malformed, 'statement length')
  } catch {
    return reject(RejectCode.Malformed, 'statement truncated')
  }
  if (!Object.values(StatementType).includes(type as StatementType)) {
    return reject(RejectCode.UnknownType, `statement type ${type}`)
  }
  const unsigned = bytes.subarray(0, unsignedLength)
  const signature = bytes.subarray(unsignedLength)
  if (!verifyDetached(STATEMENT_DOMAIN, signedMessage(account.accountId, unsigned), signature, account.rootPublicKey)) {
    return reject(RejectCode.BadSignature, 'statement signature')
  }
  return { ok: true, value: { type: type as StatementType, body: body.slice() } }
}

/**
 * Thrown by a body reader when a decoded count or size is past its bound; the message becomes the
 * rejection's reason (a bound is a decision worth naming, unlike a truncation). Code
 * `invalid-argument`; it never leaves {@link readStatementBody}.
 */
export class StatementBoundError extends ContextSyncError {
  override readonly name = 'StatementBoundError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-argument', message, options)
  }
}

/**
 * Parse a verified statement's body with `read`; a reader that throws (truncated input, a count
 * past its bound) or leaves bytes unread yields a `Malformed` rejection. Never throws.
 */
export function readStatementBody<T>(
  statement: VerifiedStatement,
  type: StatementType,
  read: (dec: decoding.Decoder) => T,
): Checked<T> {
  if (statement.type !== type) return reject(RejectCode.UnknownType, `expected statement type ${type}, got ${statement.type}`)
  try {
    const dec = decoding.createDecoder(statement.body)
    const value = read(dec)
    if (decoding.hasContent(dec)) return reject(RejectCode.Malformed, 'statement body has trailing bytes')
    return { ok: true, value }
  } catch (error) {
    return reject(RejectCode.Malformed, error instanceof StatementBoundError ? error.message : 'statement body truncated')
  }
}

/** Verify a statement and parse its body in one step. Never throws. */
export function verifyTypedStatement<T>(
  account: AccountKeys,
  bytes: Uint8Array,
  type: StatementType,
  read: (dec: decoding.Decoder) => T,
): Checked<T> {
  const statement = verifyStatement(account, bytes)
  if (!statement.ok) return statement
  return readStatementBody(statement.value, type, read)
}

/**
 * Verify a statement that may come in several types — a legacy form and its successor — and parse
 * its body with the reader registered for its type. Never throws.
 */
export function verifyStatementOf<T>(
  account: AccountKeys,
  bytes: Uint8Array,
  readers: Partial<Record<StatementType, (dec: decoding.Decoder) => T>>,
  what: string,
): Checked<T> {
  const statement = verifyStatement(account, bytes)
  if (!statement.ok) return statement
  const read = readers[statement.value.type]
  if (!read) return reject(RejectCode.UnknownType, `expected ${what}, got statement type ${statement.value.type}`)
  return readStatementBody(statement.value, statement.value.type, read)
}

/** Build a statement body with lib0 encoding and sign it. */
export function signTypedStatement(account: AccountKeys, type: StatementType, write: (enc: encoding.Encoder) => void): Uint8Array {
  const enc = encoding.createEncoder()
  write(enc)
  return signStatement(account, type, encoding.toUint8Array(enc))
}
