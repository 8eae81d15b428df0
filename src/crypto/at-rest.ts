/**
 * Sealing for data a device keeps only for itself (its replica checkpoints, WIRE.md "Device store
 * layout"): XChaCha20-Poly1305 under a key derived from the device's own secret, with the purpose
 * and the room bound as AAD, so a blob cannot be moved between rooms or purposes and a store
 * holds only ciphertext.
 *
 * ```
 * u8 version = 1 · 24B nonce · ciphertext (plaintext + 16B tag)
 * AAD = varstring "contextsync/v1/at-rest" ‖ varstring purpose ‖ varstring roomId
 * ```
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import { aeadDecrypt, aeadEncrypt, NONCE_BYTES } from './primitives.js'

const AT_REST_VERSION = 1
const AT_REST_DOMAIN = 'contextsync/v1/at-rest'
const TAG_BYTES = 16

function additionalData(purpose: string, roomId: string): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarString(enc, AT_REST_DOMAIN)
  encoding.writeVarString(enc, purpose)
  encoding.writeVarString(enc, roomId)
  return encoding.toUint8Array(enc)
}

/** Seal `plaintext` for this device's own store. */
export function sealAtRest(key: Uint8Array, purpose: string, roomId: string, plaintext: Uint8Array): Uint8Array {
  const { nonce, ciphertext } = aeadEncrypt(plaintext, additionalData(purpose, roomId), key)
  const out = new Uint8Array(1 + NONCE_BYTES + ciphertext.length)
  out[0] = AT_REST_VERSION
  out.set(nonce, 1)
  out.set(ciphertext, 1 + NONCE_BYTES)
  return out
}

/** Open what {@link sealAtRest} wrote; `undefined` when it is not authentic for this key, purpose and room. */
export function openAtRest(key: Uint8Array, purpose: string, roomId: string, sealed: Uint8Array): Uint8Array | undefined {
  if (!(sealed instanceof Uint8Array) || sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== AT_REST_VERSION) return undefined
  const nonce = sealed.subarray(1, 1 + NONCE_BYTES)
  return aeadDecrypt(sealed.subarray(1 + NONCE_BYTES), additionalData(purpose, roomId), nonce, key)
}
