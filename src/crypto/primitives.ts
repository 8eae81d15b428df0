/**
 * Thin, pure wrappers over the libsodium primitives the design uses: BLAKE2b hashing and keyed
 * derivation, Ed25519 signatures with a domain-separation string, XChaCha20-Poly1305 AEAD, and
 * X25519 sealed boxes. Higher modules compose these; none of them touches libsodium directly.
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import { sodium } from './sodium.js'
import { utf8 } from '../util/bytes.js'

/** Ed25519 signature length in bytes. */
export const SIGNATURE_BYTES = 64
/** XChaCha20-Poly1305 nonce length in bytes. */
export const NONCE_BYTES = 24
/** Symmetric key length in bytes. */
export const KEY_BYTES = 32

/** BLAKE2b of `data`, `length` bytes long, optionally keyed (a PRF when keyed). */
export function hash(data: Uint8Array, length = 32, key?: Uint8Array): Uint8Array {
  return sodium().generichash(length, data, key)
}

/**
 * Derive a 32-byte subkey from `master` for a labelled purpose (keyed BLAKE2b as a PRF).
 * Distinct labels give independent keys.
 */
export function deriveKey(master: Uint8Array, label: string): Uint8Array {
  return hash(utf8(`contextsync/v1/kdf/${label}`), KEY_BYTES, master)
}

/**
 * Cryptographically random bytes, straight from the platform CSPRNG (`crypto.getRandomValues`, in
 * browsers and Node ≥ 19) when present, else libsodium's. Use this for key material.
 */
export function randomBytes(length: number): Uint8Array {
  const webCrypto = platformCrypto()
  if (webCrypto && length <= 65536) return webCrypto.getRandomValues(new Uint8Array(length))
  return sodium().randomBytes(length)
}

/** Pooled requests are cut from a 4 KiB buffer: one CSPRNG call per 4 KiB. */
const POOL_BYTES = 4096
const POOLED_MAX = 64
let pool: Uint8Array | undefined
let poolOffset = POOL_BYTES

/**
 * Random bytes for values that are public once used — nonces and ids — cut from a pooled buffer,
 * since the per-call overhead of `getRandomValues` dominates at that size (each byte is handed out
 * once and wiped from the pool). Never for key material: the pool holds future output in the heap.
 */
export function publicRandomBytes(length: number): Uint8Array {
  const webCrypto = platformCrypto()
  if (!webCrypto || length > POOLED_MAX) return randomBytes(length)
  if (pool === undefined || poolOffset + length > POOL_BYTES) {
    pool = webCrypto.getRandomValues(new Uint8Array(POOL_BYTES))
    poolOffset = 0
  }
  const out = pool.slice(poolOffset, poolOffset + length)
  pool.fill(0, poolOffset, poolOffset + length)
  poolOffset += length
  return out
}

function platformCrypto(): { getRandomValues: (a: Uint8Array) => Uint8Array } | undefined {
  const webCrypto = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto
  return webCrypto?.getRandomValues ? (webCrypto as { getRandomValues: (a: Uint8Array) => Uint8Array }) : undefined
}

/**
 * Prefix a message with a length-delimited domain string, so a signature made for one purpose
 * never verifies for another.
 */
function domainMessage(domain: string, message: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarString(enc, domain)
  encoding.writeUint8Array(enc, message)
  return encoding.toUint8Array(enc)
}

/** Ed25519-sign `message` under `domain`. */
export function signDetached(domain: string, message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return sodium().signDetached(domainMessage(domain, message), secretKey)
}

/** Verify an Ed25519 signature made with {@link signDetached}; never throws. */
export function verifyDetached(
  domain: string,
  message: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== 32) return false
  return sodium().verifyDetached(signature, domainMessage(domain, message), publicKey)
}

/** Ed25519 key pair from a 32-byte seed. */
export function signKeyPairFromSeed(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  return sodium().signSeedKeypair(seed)
}

/** X25519 key pair from a 32-byte seed. */
export function boxKeyPairFromSeed(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  return sodium().boxSeedKeypair(seed)
}

/** XChaCha20-Poly1305-IETF encrypt with a fresh random nonce. */
export function aeadEncrypt(
  plaintext: Uint8Array,
  additionalData: Uint8Array,
  key: Uint8Array,
): { nonce: Uint8Array; ciphertext: Uint8Array } {
  const nonce = publicRandomBytes(NONCE_BYTES)
  const ciphertext = sodium().aeadEncrypt(plaintext, additionalData, nonce, key)
  return { nonce, ciphertext }
}

/** XChaCha20-Poly1305-IETF decrypt; `undefined` when authentication fails. Never throws. */
export function aeadDecrypt(
  ciphertext: Uint8Array,
  additionalData: Uint8Array,
  nonce: Uint8Array,
  key: Uint8Array,
): Uint8Array | undefined {
  return sodium().aeadDecrypt(ciphertext, additionalData, nonce, key)
}

/** Seal `message` to an X25519 public key (anonymous sender). */
export function sealToPublicKey(message: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return sodium().boxSeal(message, publicKey)
}

/** Open a sealed box; `undefined` when it was not sealed to this key pair or was altered. */
export function openSealed(sealed: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | undefined {
  return sodium().boxSealOpen(sealed, publicKey, secretKey)
}

/** Compare secrets in constant time. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  return sodium().memcmp(a, b)
}

/** Best-effort overwrite of secret bytes that are no longer needed. */
export function wipe(bytes: Uint8Array): void {
  sodium().memzero(bytes)
}
