/**
 * Device and account key material: creation, ids, and the byte format used to persist it under
 * the storage prefix `['keys', …]` (kept apart from sealed logs so it can be wiped on its own).
 *
 * - A device has an Ed25519 signing key and an X25519 box key, never rotated;
 *   `deviceId = hex(BLAKE2b-128(signPublicKey))`.
 * - An account has an Ed25519 root key; `accountId = hex(BLAKE2b-128(rootPublicKey))`, so an
 *   account id is self-certifying. Owner devices hold the root secret; member devices hold only
 *   the public key.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { toHex } from '../util/bytes.js'
import { boxKeyPairFromSeed, hash, randomBytes, signKeyPairFromSeed } from './primitives.js'
import { reject, RejectCode, type Checked } from './codes.js'

/** Length of device and account ids in bytes (they travel as 32 hex characters). */
export const ID_BYTES = 16

/** A device's long-term keys. Secret parts never leave the device. */
export interface DeviceKeys {
  /** `hex(BLAKE2b-128(signPublicKey))`. */
  deviceId: string
  /** Raw 16-byte id as carried in envelopes. */
  deviceIdBytes: Uint8Array
  signPublicKey: Uint8Array
  signSecretKey: Uint8Array
  boxPublicKey: Uint8Array
  boxSecretKey: Uint8Array
  /** The seeds the keys derive from; this is what is persisted. */
  seeds: { sign: Uint8Array; box: Uint8Array }
}

/** An account's root keys. `rootSecretKey` is present only on owner devices. */
export interface AccountKeys {
  /** `hex(BLAKE2b-128(rootPublicKey))`. */
  accountId: string
  rootPublicKey: Uint8Array
  /** Ed25519 secret key (owners only). */
  rootSecretKey?: Uint8Array
  /** The 32-byte root seed (owners only); the recovery code encodes it. */
  rootSeed?: Uint8Array
}

/** The 16-byte id of a public key (device or account root). */
export function keyId(publicKey: Uint8Array): Uint8Array {
  return hash(publicKey, ID_BYTES)
}

/** Create fresh device keys. */
export function createDeviceKeys(): DeviceKeys {
  return deviceKeysFromSeeds(randomBytes(32), randomBytes(32))
}

/** Rebuild device keys from their persisted seeds. */
export function deviceKeysFromSeeds(signSeed: Uint8Array, boxSeed: Uint8Array): DeviceKeys {
  const sign = signKeyPairFromSeed(signSeed)
  const box = boxKeyPairFromSeed(boxSeed)
  const idBytes = keyId(sign.publicKey)
  return {
    deviceId: toHex(idBytes),
    deviceIdBytes: idBytes,
    signPublicKey: sign.publicKey,
    signSecretKey: sign.secretKey,
    boxPublicKey: box.publicKey,
    boxSecretKey: box.secretKey,
    seeds: { sign: signSeed, box: boxSeed },
  }
}

/** Create a fresh account root (the caller becomes its first owner). */
export function createAccountKeys(): AccountKeys {
  return accountKeysFromSeed(randomBytes(32))
}

/** Rebuild owner account keys from the root seed. */
export function accountKeysFromSeed(seed: Uint8Array): AccountKeys {
  const root = signKeyPairFromSeed(seed)
  return {
    accountId: toHex(keyId(root.publicKey)),
    rootPublicKey: root.publicKey,
    rootSecretKey: root.secretKey,
    rootSeed: seed,
  }
}

/** Member view of an account: the public root only. */
export function accountKeysFromPublicKey(rootPublicKey: Uint8Array): AccountKeys {
  return { accountId: toHex(keyId(rootPublicKey)), rootPublicKey }
}

const DEVICE_KEYS_VERSION = 1
const ACCOUNT_KEYS_VERSION = 1

/** Persisted form of device keys: `u8 version · 32B signSeed · 32B boxSeed`. */
export function encodeDeviceKeys(keys: DeviceKeys): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, DEVICE_KEYS_VERSION)
  encoding.writeUint8Array(enc, keys.seeds.sign)
  encoding.writeUint8Array(enc, keys.seeds.box)
  return encoding.toUint8Array(enc)
}

/** Parse {@link encodeDeviceKeys} output. */
export function decodeDeviceKeys(bytes: Uint8Array): Checked<DeviceKeys> {
  if (bytes.length !== 65) return reject(RejectCode.Malformed, 'device keys must be 65 bytes')
  if (bytes[0] !== DEVICE_KEYS_VERSION) return reject(RejectCode.UnsupportedVersion, `device keys version ${bytes[0]}`)
  return { ok: true, value: deviceKeysFromSeeds(bytes.slice(1, 33), bytes.slice(33, 65)) }
}

/**
 * Persisted form of account keys: `u8 version · u8 hasSeed · (32B seed | 32B rootPublicKey)`.
 */
export function encodeAccountKeys(keys: AccountKeys): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, ACCOUNT_KEYS_VERSION)
  if (keys.rootSeed) {
    encoding.writeUint8(enc, 1)
    encoding.writeUint8Array(enc, keys.rootSeed)
  } else {
    encoding.writeUint8(enc, 0)
    encoding.writeUint8Array(enc, keys.rootPublicKey)
  }
  return encoding.toUint8Array(enc)
}

/** Parse {@link encodeAccountKeys} output. */
export function decodeAccountKeys(bytes: Uint8Array): Checked<AccountKeys> {
  if (bytes.length !== 34) return reject(RejectCode.Malformed, 'account keys must be 34 bytes')
  const dec = decoding.createDecoder(bytes)
  const version = decoding.readUint8(dec)
  if (version !== ACCOUNT_KEYS_VERSION) return reject(RejectCode.UnsupportedVersion, `account keys version ${version}`)
  const hasSeed = decoding.readUint8(dec)
  const key = decoding.readUint8Array(dec, 32).slice()
  if (hasSeed === 1) return { ok: true, value: accountKeysFromSeed(key) }
  if (hasSeed === 0) return { ok: true, value: accountKeysFromPublicKey(key) }
  return reject(RejectCode.Malformed, 'account keys flag must be 0 or 1')
}
