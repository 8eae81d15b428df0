/**
 * Device certificates: `{deviceId, kind, name, keys, issuedAt, role}` signed by the account root
 * as a {@link StatementType.DeviceCertificate} statement.
 *
 * Body format (lib0): `16B deviceId · varstring kind · varstring name · 32B signPublicKey ·
 * 32B boxPublicKey · varuint issuedAt (ms) · u8 role (0 member, 1 owner)`.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { bytesEqual, toHex } from '../util/bytes.js'
import { reject, RejectCode, type Checked } from './codes.js'
import { ID_BYTES, keyId, type AccountKeys, type DeviceKeys } from './keys.js'
import { signStatement, StatementType, verifyStatement } from './statement.js'

/** What a certificate says about a device. */
export interface DeviceCertificate {
  deviceId: string
  kind: string
  name: string
  signPublicKey: Uint8Array
  boxPublicKey: Uint8Array
  issuedAt: number
  role: 'owner' | 'member'
}

/** Issue (sign) a certificate for `device`. Needs the account root. */
export function issueCertificate(
  account: AccountKeys,
  device: Pick<DeviceKeys, 'deviceIdBytes' | 'signPublicKey' | 'boxPublicKey'>,
  info: { kind: string; name: string; role: 'owner' | 'member'; issuedAt?: number },
): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8Array(enc, device.deviceIdBytes)
  encoding.writeVarString(enc, info.kind)
  encoding.writeVarString(enc, info.name)
  encoding.writeUint8Array(enc, device.signPublicKey)
  encoding.writeUint8Array(enc, device.boxPublicKey)
  encoding.writeVarUint(enc, info.issuedAt ?? Date.now())
  encoding.writeUint8(enc, info.role === 'owner' ? 1 : 0)
  return signStatement(account, StatementType.DeviceCertificate, encoding.toUint8Array(enc))
}

/** Verify a certificate statement against the account root and parse it. Never throws. */
export function verifyCertificate(account: AccountKeys, bytes: Uint8Array): Checked<DeviceCertificate> {
  const statement = verifyStatement(account, bytes)
  if (!statement.ok) return statement
  if (statement.value.type !== StatementType.DeviceCertificate) {
    return reject(RejectCode.UnknownType, 'statement is not a device certificate')
  }
  try {
    const dec = decoding.createDecoder(statement.value.body)
    const idBytes = decoding.readUint8Array(dec, ID_BYTES)
    const kind = decoding.readVarString(dec)
    const name = decoding.readVarString(dec)
    const signPublicKey = decoding.readUint8Array(dec, 32).slice()
    const boxPublicKey = decoding.readUint8Array(dec, 32).slice()
    const issuedAt = decoding.readVarUint(dec)
    const role = decoding.readUint8(dec)
    if (decoding.hasContent(dec) || role > 1) return reject(RejectCode.Malformed, 'certificate body')
    if (!bytesEqual(keyId(signPublicKey), idBytes)) return reject(RejectCode.Malformed, 'certificate id/key mismatch')
    return {
      ok: true,
      value: { deviceId: toHex(idBytes), kind, name, signPublicKey, boxPublicKey, issuedAt, role: role === 1 ? 'owner' : 'member' },
    }
  } catch {
    return reject(RejectCode.Malformed, 'certificate body truncated')
  }
}
