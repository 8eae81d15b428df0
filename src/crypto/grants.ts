/**
 * Registry statements about who may hold what (DESIGN §4): revocations, scope definitions,
 * grants and epoch starts. Each is root-signed ({@link signTypedStatement}) and verified on read,
 * so a member device that can write to the registry cannot forge an owner's decision.
 *
 * Bodies (lib0):
 * - Revocation: `16B deviceId · varuint revokedAt(ms) · varuint n · (varstring roomId · varuint epoch · varuint maxSeq) × n`
 * - ScopeDefinition: `varstring name · varstring roomId · varuint n · varstring kind × n ·
 *   varuint retentionMs (0 = keep) · varuint definedAt(ms)`
 * - Grant: `varstring scope · 16B deviceId · varuint grantedAt(ms)`
 * - EpochStart: `varstring roomId · varuint epoch · varuint startedAt(ms)` (public: names the room, not the scope)
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { fromHex, toHex } from '../util/bytes.js'
import type { Checked } from './codes.js'
import { ID_BYTES, type AccountKeys } from './keys.js'
import { signTypedStatement, StatementType, verifyTypedStatement } from './statement.js'

/** A device was revoked. */
export interface Revocation {
  deviceId: string
  revokedAt: number
  /**
   * Per room the device could write: the key epoch that starts with this revocation, and the
   * highest seq of the device's envelopes the revoking owner had applied (0 when it does not
   * hold that room). The device's envelopes under an earlier epoch and (where known) up to that
   * seq are history and stay valid; anything else from it is refused.
   */
  cutoffs: Map<string, { epoch: number; maxSeq: number }>
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
}

/** A room's move to a new key epoch. */
export interface EpochStart {
  roomId: string
  epoch: number
  startedAt: number
}

function idBytes(deviceId: string): Uint8Array {
  const bytes = fromHex(deviceId)
  if (!bytes || bytes.length !== ID_BYTES) throw new Error(`not a device id: ${deviceId}`)
  return bytes
}

/** Sign a revocation (owner only). */
export function signRevocation(account: AccountKeys, value: Revocation): Uint8Array {
  return signTypedStatement(account, StatementType.Revocation, (enc) => {
    encoding.writeUint8Array(enc, idBytes(value.deviceId))
    encoding.writeVarUint(enc, value.revokedAt)
    encoding.writeVarUint(enc, value.cutoffs.size)
    for (const [roomId, cutoff] of value.cutoffs) {
      encoding.writeVarString(enc, roomId)
      encoding.writeVarUint(enc, cutoff.epoch)
      encoding.writeVarUint(enc, cutoff.maxSeq)
    }
  })
}

/** Verify a revocation. Never throws. */
export function verifyRevocation(account: AccountKeys, bytes: Uint8Array): Checked<Revocation> {
  return verifyTypedStatement(account, bytes, StatementType.Revocation, (dec) => {
    const deviceId = toHex(decoding.readUint8Array(dec, ID_BYTES))
    const revokedAt = decoding.readVarUint(dec)
    const count = decoding.readVarUint(dec)
    if (count > 4096) throw new Error('too many cutoffs')
    const cutoffs = new Map<string, { epoch: number; maxSeq: number }>()
    for (let i = 0; i < count; i++) {
      const roomId = decoding.readVarString(dec)
      cutoffs.set(roomId, { epoch: decoding.readVarUint(dec), maxSeq: decoding.readVarUint(dec) })
    }
    return { deviceId, revokedAt, cutoffs }
  })
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
    if (count > 64) throw new Error('too many kinds')
    const kinds: string[] = []
    for (let i = 0; i < count; i++) kinds.push(decoding.readVarString(dec))
    return { name, roomId, kinds, retentionMs: decoding.readVarUint(dec), definedAt: decoding.readVarUint(dec) }
  })
}

/** Sign a grant (owner only). */
export function signGrant(account: AccountKeys, value: Grant): Uint8Array {
  return signTypedStatement(account, StatementType.Grant, (enc) => {
    encoding.writeVarString(enc, value.scope)
    encoding.writeUint8Array(enc, idBytes(value.deviceId))
    encoding.writeVarUint(enc, value.grantedAt)
  })
}

/** Verify a grant. Never throws. */
export function verifyGrant(account: AccountKeys, bytes: Uint8Array): Checked<Grant> {
  return verifyTypedStatement(account, bytes, StatementType.Grant, (dec) => ({
    scope: decoding.readVarString(dec),
    deviceId: toHex(decoding.readUint8Array(dec, ID_BYTES)),
    grantedAt: decoding.readVarUint(dec),
  }))
}

/** Sign an epoch start (owner only). */
export function signEpochStart(account: AccountKeys, value: EpochStart): Uint8Array {
  return signTypedStatement(account, StatementType.EpochStart, (enc) => {
    encoding.writeVarString(enc, value.roomId)
    encoding.writeVarUint(enc, value.epoch)
    encoding.writeVarUint(enc, value.startedAt)
  })
}

/** Verify an epoch start. Never throws. */
export function verifyEpochStart(account: AccountKeys, bytes: Uint8Array): Checked<EpochStart> {
  return verifyTypedStatement(account, bytes, StatementType.EpochStart, (dec) => ({
    roomId: decoding.readVarString(dec),
    epoch: decoding.readVarUint(dec),
    startedAt: decoding.readVarUint(dec),
  }))
}
