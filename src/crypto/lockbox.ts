/**
 * Lockboxes: a scope's epoch key sealed (`crypto_box_seal`) to one device's X25519 key, inside a
 * root-signed statement so nobody but an owner can hand out keys. They live in the registry
 * room's public map (readable without the registry key — a member needs them to read the
 * registry itself); they name rooms by opaque id, never by scope name.
 *
 * Body (lib0), type 10: `varstring roomId · varuint epoch · 16B recipient deviceId · 32B salt ·
 * varbytes sealedKey` — the salt names the epoch start the key belongs to (an epoch can have
 * several, WIRE.md "Keys and epochs"). Legacy type 6 has no salt: the key of a legacy start, or
 * of epoch 0.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { fromHex, toHex } from '../util/bytes.js'
import type { Checked } from './codes.js'
import { SALT_BYTES } from './grants.js'
import { ID_BYTES, type AccountKeys, type DeviceKeys } from './keys.js'
import { KEY_BYTES, openSealed, sealToPublicKey } from './primitives.js'
import { signTypedStatement, StatementType, verifyStatementOf } from './statement.js'
import { ValidationError } from '../errors.js'

/** A verified lockbox (still sealed). */
export interface Lockbox {
  roomId: string
  epoch: number
  recipient: string
  sealedKey: Uint8Array
  /** Salt of the epoch start the key belongs to; absent for epoch 0 and legacy starts. */
  salt?: Uint8Array
}

/**
 * Seal `key` (a room's key for `epoch`, of the start with `salt`) to a device and sign the
 * lockbox (owner only). Without `salt` it writes the legacy form (epoch 0, legacy starts).
 */
export function issueLockbox(
  account: AccountKeys,
  recipient: { deviceId: string; boxPublicKey: Uint8Array },
  roomId: string,
  epoch: number,
  key: Uint8Array,
  salt?: Uint8Array,
): Uint8Array {
  const id = fromHex(recipient.deviceId)
  if (!id || id.length !== ID_BYTES) throw new ValidationError(`not a device id: ${recipient.deviceId}`)
  if (salt && salt.length !== SALT_BYTES) throw new ValidationError(`an epoch start's salt is ${SALT_BYTES} bytes`)
  return signTypedStatement(account, salt ? StatementType.LockboxV2 : StatementType.Lockbox, (enc) => {
    encoding.writeVarString(enc, roomId)
    encoding.writeVarUint(enc, epoch)
    encoding.writeUint8Array(enc, id)
    if (salt) encoding.writeUint8Array(enc, salt)
    encoding.writeVarUint8Array(enc, sealToPublicKey(key, recipient.boxPublicKey))
  })
}

function readLockbox(withSalt: boolean): (dec: decoding.Decoder) => Lockbox {
  return (dec) => {
    const roomId = decoding.readVarString(dec)
    const epoch = decoding.readVarUint(dec)
    const recipient = toHex(decoding.readUint8Array(dec, ID_BYTES))
    const salt = withSalt ? decoding.readUint8Array(dec, SALT_BYTES).slice() : undefined
    const sealedKey = decoding.readVarUint8Array(dec).slice()
    return salt ? { roomId, epoch, recipient, sealedKey, salt } : { roomId, epoch, recipient, sealedKey }
  }
}

/** Verify a lockbox statement (type 10, or legacy type 6). Never throws. */
export function verifyLockbox(account: AccountKeys, bytes: Uint8Array): Checked<Lockbox> {
  return verifyStatementOf(
    account,
    bytes,
    { [StatementType.LockboxV2]: readLockbox(true), [StatementType.Lockbox]: readLockbox(false) },
    'a lockbox',
  )
}

/** Open a lockbox addressed to `device`; `undefined` when it is not for this device's key. */
export function openLockbox(lockbox: Lockbox, device: Pick<DeviceKeys, 'deviceId' | 'boxPublicKey' | 'boxSecretKey'>): Uint8Array | undefined {
  if (lockbox.recipient !== device.deviceId) return undefined
  const key = openSealed(lockbox.sealedKey, device.boxPublicKey, device.boxSecretKey)
  return key && key.length === KEY_BYTES ? key : undefined
}

/**
 * Key of a lockbox in the registry's public map: `lockbox/<roomId>/<epoch>/<startId>/<deviceId>`,
 * or `lockbox/<roomId>/<epoch>/<deviceId>` for the legacy start id `''`.
 */
export function lockboxKey(roomId: string, epoch: number, deviceId: string, startId = ''): string {
  return startId ? `lockbox/${roomId}/${epoch}/${startId}/${deviceId}` : `lockbox/${roomId}/${epoch}/${deviceId}`
}

/**
 * The recipient a lockbox statement names, read without verifying it — so a device can skip the
 * signature check of every lockbox addressed to someone else. Never throws.
 */
export function lockboxRecipient(bytes: Uint8Array): string | undefined {
  try {
    const dec = decoding.createDecoder(bytes)
    decoding.readUint8(dec) // version
    const type = decoding.readUint8(dec)
    if (type !== StatementType.Lockbox && type !== StatementType.LockboxV2) return undefined
    const body = decoding.createDecoder(decoding.readVarUint8Array(dec))
    decoding.readVarString(body) // roomId
    decoding.readVarUint(body) // epoch
    return toHex(decoding.readUint8Array(body, ID_BYTES))
  } catch {
    return undefined
  }
}
