/**
 * Lockboxes: a scope's epoch key sealed (`crypto_box_seal`) to one device's X25519 key, inside a
 * root-signed statement so nobody but an owner can hand out keys. They live in the registry
 * room's public map (readable without the registry key — a member needs them to read the
 * registry itself); they name rooms by opaque id, never by scope name.
 *
 * Body (lib0): `varstring roomId · varuint epoch · 16B recipient deviceId · varbytes sealedKey`.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { fromHex, toHex } from '../util/bytes.js'
import type { Checked } from './codes.js'
import { ID_BYTES, type AccountKeys, type DeviceKeys } from './keys.js'
import { KEY_BYTES, openSealed, sealToPublicKey } from './primitives.js'
import { signTypedStatement, StatementType, verifyTypedStatement } from './statement.js'

/** A verified lockbox (still sealed). */
export interface Lockbox {
  roomId: string
  epoch: number
  recipient: string
  sealedKey: Uint8Array
}

/** Seal `key` (a room's key for `epoch`) to a device and sign the lockbox (owner only). */
export function issueLockbox(
  account: AccountKeys,
  recipient: { deviceId: string; boxPublicKey: Uint8Array },
  roomId: string,
  epoch: number,
  key: Uint8Array,
): Uint8Array {
  const id = fromHex(recipient.deviceId)
  if (!id || id.length !== ID_BYTES) throw new Error(`not a device id: ${recipient.deviceId}`)
  return signTypedStatement(account, StatementType.Lockbox, (enc) => {
    encoding.writeVarString(enc, roomId)
    encoding.writeVarUint(enc, epoch)
    encoding.writeUint8Array(enc, id)
    encoding.writeVarUint8Array(enc, sealToPublicKey(key, recipient.boxPublicKey))
  })
}

/** Verify a lockbox statement. Never throws. */
export function verifyLockbox(account: AccountKeys, bytes: Uint8Array): Checked<Lockbox> {
  return verifyTypedStatement(account, bytes, StatementType.Lockbox, (dec) => ({
    roomId: decoding.readVarString(dec),
    epoch: decoding.readVarUint(dec),
    recipient: toHex(decoding.readUint8Array(dec, ID_BYTES)),
    sealedKey: decoding.readVarUint8Array(dec).slice(),
  }))
}

/** Open a lockbox addressed to `device`; `undefined` when it is not for this device's key. */
export function openLockbox(lockbox: Lockbox, device: Pick<DeviceKeys, 'deviceId' | 'boxPublicKey' | 'boxSecretKey'>): Uint8Array | undefined {
  if (lockbox.recipient !== device.deviceId) return undefined
  const key = openSealed(lockbox.sealedKey, device.boxPublicKey, device.boxSecretKey)
  return key && key.length === KEY_BYTES ? key : undefined
}

/** Key of a lockbox in the registry's public map. */
export function lockboxKey(roomId: string, epoch: number, deviceId: string): string {
  return `lockbox/${roomId}/${epoch}/${deviceId}`
}

/**
 * The recipient a lockbox statement names, read without verifying it — so a device can skip the
 * signature check of every lockbox addressed to someone else. Never throws.
 */
export function lockboxRecipient(bytes: Uint8Array): string | undefined {
  try {
    const dec = decoding.createDecoder(bytes)
    decoding.readUint8(dec) // version
    decoding.readUint8(dec) // type
    const body = decoding.createDecoder(decoding.readVarUint8Array(dec))
    decoding.readVarString(body) // roomId
    decoding.readVarUint(body) // epoch
    return toHex(decoding.readUint8Array(body, ID_BYTES))
  } catch {
    return undefined
  }
}
