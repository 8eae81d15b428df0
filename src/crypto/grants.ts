/**
 * Registry statements about who may hold what (WIRE.md "Signed statements"): revocations, scope
 * definitions, grants and epoch starts. Each is root-signed ({@link signTypedStatement}) and
 * verified on read, so a member device that can write to the registry cannot forge an owner's
 * decision.
 *
 * Bodies (lib0):
 * - Revocation (type 8): `16B deviceId · varuint revokedAt(ms) · varuint n · (varstring roomId ·
 *   varuint epoch · seqset)ⁿ` — per room, the epoch this revocation starts there and the exact
 *   seqs of the device the revoking owner had applied. Legacy type 3 carried `varuint maxSeq`
 *   instead of the seq set; it still verifies, with no cutoffs (nothing of the device accepted).
 * - ScopeDefinition: `varstring name · varstring roomId · varuint n · varstring kind × n ·
 *   varuint retentionMs (0 = keep) · varuint definedAt(ms)`
 * - Grant (type 5): `varstring scope · 16B deviceId · varuint grantedAt(ms)`; a temporary grant
 *   (type 11) appends `varuint until(ms)`, after which the grant is over on every device.
 * - DeviceTerm (type 12): `16B deviceId · varuint until(ms) · varuint issuedAt(ms)` — the member
 *   device holds nothing of the account from `until` on; the newest term (by `issuedAt`) is in force.
 * - EpochStart (type 9): `varstring roomId · varuint epoch · varuint startedAt(ms) · 32B salt ·
 *   varuint n · 16B recipient × n` (public: names the room, not the scope). Legacy type 7 is the
 *   same without salt and recipients; its key keeps the old, salt-free derivation.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { SeqSet } from '../sync/seq-set.js'
import { fromHex, toHex } from '../util/bytes.js'
import type { Checked } from './codes.js'
import { ID_BYTES, type AccountKeys } from './keys.js'
import { signTypedStatement, StatementBoundError, StatementType, verifyStatementOf, verifyTypedStatement } from './statement.js'
import { ValidationError } from '../errors.js'

/** Bytes of an epoch start's salt. */
export const SALT_BYTES = 32
/**
 * Most rooms one revocation lists. Why: one per scope room the revoking owner held; an account
 * with more scopes than this is not a shape any owner build produces.
 */
export const MAX_CUTOFF_ROOMS = 4096
/**
 * Most seq ranges one room's cutoff lists. Why: a device leaves one gap per restart (seqs are
 * reserved in blocks), so this covers tens of thousands of restarts; more means a broken owner.
 */
export const MAX_CUTOFF_RANGES = 65_536
/** Most seq ranges in one revocation, over all its rooms: every device re-reads it on load. */
export const MAX_CUTOFF_TOTAL_RANGES = 262_144
/**
 * Most recipients one epoch start names. Why: every recipient gets a lockbox per start, so a start
 * naming more devices than this would stand for more lockboxes than a registry can carry.
 */
export const MAX_EPOCH_RECIPIENTS = 4096
/** Most device kinds one scope definition names. */
export const MAX_SCOPE_KINDS = 64

/** Where a revocation leaves a room: what of the revoked device stays valid there. */
export interface RevocationCutoff {
  /** The key epoch this revocation starts in the room; envelopes of the device must be older. */
  epoch: number
  /** Exactly the device's seqs the revoking owner had applied in the room. */
  seqs: SeqSet
}

/** A device was revoked. */
export interface Revocation {
  deviceId: string
  revokedAt: number
  /**
   * Per room the revoking owner held a replica of, the device's history there. An envelope of
   * the device is accepted only in a listed room, under an epoch below the cutoff's and with a
   * seq in its set; anything else from it is refused. Empty for a legacy (type 3) revocation.
   */
  cutoffs: Map<string, RevocationCutoff>
}

/** A scope's policy. */
export interface ScopeDefinition {
  name: string
  roomId: string
  /** Device kinds that hold the scope by default. */
  kinds: string[]
  /** Items older than this (ms) expire on every device; 0 keeps them. */
  retentionMs: number
  definedAt: number
}

/** An explicit grant of one scope to one device. */
export interface Grant {
  scope: string
  deviceId: string
  grantedAt: number
  /** When the grant ends (ms); absent: it lasts until withdrawn. */
  until?: number
}

/** The end of a member device's membership (a rental or loaner car). */
export interface DeviceTerm {
  deviceId: string
  /** From this time (ms) on, the device holds nothing of the account. */
  until: number
  /** When the owner stated it (ms): a newer term replaces an older one (`devices.extend`). */
  issuedAt: number
}

/** A room's move to a new key epoch. */
export interface EpochStart {
  roomId: string
  epoch: number
  startedAt: number
  /**
   * 32 random bytes that owners mix into the epoch key, so two owners starting the same epoch
   * concurrently never share a key. Absent in legacy starts (their key derives without one).
   */
  salt?: Uint8Array
  /** The member devices whose lockboxes this start was sealed to (absent in legacy starts). */
  recipients?: string[]
  /**
   * The devices the starting owner knowingly left out — revoked, or removed from the scope. Other
   * owners that have not heard why yet keep them out too (WIRE.md "Keys and epochs"). Optional.
   */
  excluded?: string[]
}

/**
 * The id of an epoch start: the first 8 bytes of its salt in hex, `''` for a legacy start (and
 * for epoch 0, which has no start). Registry keys carry it so concurrent starts of one epoch never
 * overwrite each other; ordering start ids orders salts.
 */
export function startIdOf(salt: Uint8Array | undefined): string {
  return salt ? toHex(salt.subarray(0, 8)) : ''
}

function idBytes(deviceId: string): Uint8Array {
  const bytes = fromHex(deviceId)
  if (!bytes || bytes.length !== ID_BYTES) throw new ValidationError(`not a device id: ${deviceId}`)
  return bytes
}

/** Sign a revocation (owner only). */
export function signRevocation(account: AccountKeys, value: Revocation): Uint8Array {
  if (value.cutoffs.size > MAX_CUTOFF_ROOMS) throw new ValidationError(`a revocation lists at most ${MAX_CUTOFF_ROOMS} rooms`)
  return signTypedStatement(account, StatementType.RevocationV2, (enc) => {
    encoding.writeUint8Array(enc, idBytes(value.deviceId))
    encoding.writeVarUint(enc, value.revokedAt)
    encoding.writeVarUint(enc, value.cutoffs.size)
    for (const [roomId, cutoff] of value.cutoffs) {
      encoding.writeVarString(enc, roomId)
      encoding.writeVarUint(enc, cutoff.epoch)
      cutoff.seqs.encode(enc)
    }
  })
}

function readRevocationV2(dec: decoding.Decoder): Revocation {
  const deviceId = toHex(decoding.readUint8Array(dec, ID_BYTES))
  const revokedAt = decoding.readVarUint(dec)
  const count = decoding.readVarUint(dec)
  if (count > MAX_CUTOFF_ROOMS) throw new StatementBoundError(`revocation lists ${count} rooms, more than ${MAX_CUTOFF_ROOMS}`)
  const cutoffs = new Map<string, RevocationCutoff>()
  let total = 0
  for (let i = 0; i < count; i++) {
    const roomId = decoding.readVarString(dec)
    const epoch = decoding.readVarUint(dec)
    // Bounded before decoding: the range count leads the seq set.
    const ranges = decoding.peekVarUint(dec)
    if (ranges > MAX_CUTOFF_RANGES) throw new StatementBoundError(`revocation cutoff lists ${ranges} seq ranges, more than ${MAX_CUTOFF_RANGES}`)
    total += ranges
    if (total > MAX_CUTOFF_TOTAL_RANGES) throw new StatementBoundError(`revocation lists more than ${MAX_CUTOFF_TOTAL_RANGES} seq ranges in all`)
    if (cutoffs.has(roomId)) throw new StatementBoundError(`revocation lists room ${roomId} twice`)
    cutoffs.set(roomId, { epoch, seqs: SeqSet.decode(dec) })
  }
  return { deviceId, revokedAt, cutoffs }
}

function readLegacyRevocation(dec: decoding.Decoder): Revocation {
  const deviceId = toHex(decoding.readUint8Array(dec, ID_BYTES))
  const revokedAt = decoding.readVarUint(dec)
  const count = decoding.readVarUint(dec)
  if (count > MAX_CUTOFF_ROOMS) throw new StatementBoundError(`revocation lists ${count} rooms, more than ${MAX_CUTOFF_ROOMS}`)
  for (let i = 0; i < count; i++) {
    decoding.readVarString(dec) // roomId
    decoding.readVarUint(dec) // epoch
    decoding.readVarUint(dec) // maxSeq: says nothing about gaps, so it vouches for no seq
  }
  return { deviceId, revokedAt, cutoffs: new Map() }
}

/** Verify a revocation (type 8, or legacy type 3 — then with no cutoffs). Never throws. */
export function verifyRevocation(account: AccountKeys, bytes: Uint8Array): Checked<Revocation> {
  return verifyStatementOf(
    account,
    bytes,
    { [StatementType.RevocationV2]: readRevocationV2, [StatementType.Revocation]: readLegacyRevocation },
    'a revocation',
  )
}

/** Sign a scope definition (owner only). */
export function signScopeDefinition(account: AccountKeys, value: ScopeDefinition): Uint8Array {
  return signTypedStatement(account, StatementType.ScopeDefinition, (enc) => {
    encoding.writeVarString(enc, value.name)
    encoding.writeVarString(enc, value.roomId)
    encoding.writeVarUint(enc, value.kinds.length)
    for (const kind of value.kinds) encoding.writeVarString(enc, kind)
    encoding.writeVarUint(enc, value.retentionMs)
    encoding.writeVarUint(enc, value.definedAt)
  })
}

/** Verify a scope definition. Never throws. */
export function verifyScopeDefinition(account: AccountKeys, bytes: Uint8Array): Checked<ScopeDefinition> {
  return verifyTypedStatement(account, bytes, StatementType.ScopeDefinition, (dec) => {
    const name = decoding.readVarString(dec)
    const roomId = decoding.readVarString(dec)
    const count = decoding.readVarUint(dec)
    if (count > MAX_SCOPE_KINDS) throw new StatementBoundError(`scope definition names ${count} kinds, more than ${MAX_SCOPE_KINDS}`)
    const kinds: string[] = []
    for (let i = 0; i < count; i++) kinds.push(decoding.readVarString(dec))
    return { name, roomId, kinds, retentionMs: decoding.readVarUint(dec), definedAt: decoding.readVarUint(dec) }
  })
}

/** Sign a grant (owner only): type 11 when it ends (`until`), type 5 when it does not. */
export function signGrant(account: AccountKeys, value: Grant): Uint8Array {
  if (value.until !== undefined && !(Number.isSafeInteger(value.until) && value.until > 0)) throw new ValidationError('a grant ends at a positive time in ms')
  return signTypedStatement(account, value.until === undefined ? StatementType.Grant : StatementType.GrantV2, (enc) => {
    encoding.writeVarString(enc, value.scope)
    encoding.writeUint8Array(enc, idBytes(value.deviceId))
    encoding.writeVarUint(enc, value.grantedAt)
    if (value.until !== undefined) encoding.writeVarUint(enc, value.until)
  })
}

function readGrant(dec: decoding.Decoder): Grant {
  return { scope: decoding.readVarString(dec), deviceId: toHex(decoding.readUint8Array(dec, ID_BYTES)), grantedAt: decoding.readVarUint(dec) }
}

/** Verify a grant (type 5, or a temporary one, type 11). Never throws. */
export function verifyGrant(account: AccountKeys, bytes: Uint8Array): Checked<Grant> {
  return verifyStatementOf(
    account,
    bytes,
    {
      [StatementType.Grant]: readGrant,
      [StatementType.GrantV2]: (dec) => ({ ...readGrant(dec), until: decoding.readVarUint(dec) }),
    },
    'a grant',
  )
}

/** Sign a device term (owner only). */
export function signDeviceTerm(account: AccountKeys, value: DeviceTerm): Uint8Array {
  if (!(Number.isSafeInteger(value.until) && value.until > 0)) throw new ValidationError('a device term ends at a positive time in ms')
  return signTypedStatement(account, StatementType.DeviceTerm, (enc) => {
    encoding.writeUint8Array(enc, idBytes(value.deviceId))
    encoding.writeVarUint(enc, value.until)
    encoding.writeVarUint(enc, value.issuedAt)
  })
}

/** Verify a device term. Never throws. */
export function verifyDeviceTerm(account: AccountKeys, bytes: Uint8Array): Checked<DeviceTerm> {
  return verifyTypedStatement(account, bytes, StatementType.DeviceTerm, (dec) => ({
    deviceId: toHex(decoding.readUint8Array(dec, ID_BYTES)),
    until: decoding.readVarUint(dec),
    issuedAt: decoding.readVarUint(dec),
  }))
}

/**
 * Sign an epoch start (owner only): type 9 when it has a salt (every start this build makes),
 * type 7 — the legacy form — without.
 */
export function signEpochStart(account: AccountKeys, value: EpochStart): Uint8Array {
  if (!value.salt) {
    return signTypedStatement(account, StatementType.EpochStart, (enc) => {
      encoding.writeVarString(enc, value.roomId)
      encoding.writeVarUint(enc, value.epoch)
      encoding.writeVarUint(enc, value.startedAt)
    })
  }
  const salt = value.salt
  if (salt.length !== SALT_BYTES) throw new ValidationError(`an epoch start's salt is ${SALT_BYTES} bytes`)
  const recipients = [...new Set(value.recipients ?? [])].sort()
  if (recipients.length > MAX_EPOCH_RECIPIENTS) throw new ValidationError(`an epoch start names at most ${MAX_EPOCH_RECIPIENTS} recipients`)
  return signTypedStatement(account, StatementType.EpochStartV2, (enc) => {
    encoding.writeVarString(enc, value.roomId)
    encoding.writeVarUint(enc, value.epoch)
    encoding.writeVarUint(enc, value.startedAt)
    encoding.writeUint8Array(enc, salt)
    encoding.writeVarUint(enc, recipients.length)
    for (const id of recipients) encoding.writeUint8Array(enc, idBytes(id))
    const excluded = [...new Set(value.excluded ?? [])].sort()
    if (excluded.length > MAX_EPOCH_RECIPIENTS) throw new ValidationError(`an epoch start names at most ${MAX_EPOCH_RECIPIENTS} excluded devices`)
    encoding.writeVarUint(enc, excluded.length)
    for (const id of excluded) encoding.writeUint8Array(enc, idBytes(id))
  })
}

function readEpochStartV2(dec: decoding.Decoder): EpochStart {
  const roomId = decoding.readVarString(dec)
  const epoch = decoding.readVarUint(dec)
  const startedAt = decoding.readVarUint(dec)
  const salt = decoding.readUint8Array(dec, SALT_BYTES).slice()
  const count = decoding.readVarUint(dec)
  if (count > MAX_EPOCH_RECIPIENTS) throw new StatementBoundError(`epoch start names ${count} recipients, more than ${MAX_EPOCH_RECIPIENTS}`)
  const recipients: string[] = []
  for (let i = 0; i < count; i++) recipients.push(toHex(decoding.readUint8Array(dec, ID_BYTES)))
  const excludedCount = decoding.readVarUint(dec)
  if (excludedCount > MAX_EPOCH_RECIPIENTS) throw new StatementBoundError(`epoch start names ${excludedCount} excluded devices, more than ${MAX_EPOCH_RECIPIENTS}`)
  const excluded: string[] = []
  for (let i = 0; i < excludedCount; i++) excluded.push(toHex(decoding.readUint8Array(dec, ID_BYTES)))
  return { roomId, epoch, startedAt, salt, recipients, excluded }
}

function readLegacyEpochStart(dec: decoding.Decoder): EpochStart {
  return { roomId: decoding.readVarString(dec), epoch: decoding.readVarUint(dec), startedAt: decoding.readVarUint(dec) }
}

/** Verify an epoch start (type 9, or legacy type 7 without salt and recipients). Never throws. */
export function verifyEpochStart(account: AccountKeys, bytes: Uint8Array): Checked<EpochStart> {
  return verifyStatementOf(
    account,
    bytes,
    { [StatementType.EpochStartV2]: readEpochStartV2, [StatementType.EpochStart]: readLegacyEpochStart },
    'an epoch start',
  )
}
