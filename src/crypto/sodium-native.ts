/**
 * The native libsodium build (`sodium-native`, an optional peer dependency with prebuilt binaries)
 * behind {@link SodiumBackend}. Node only; loaded lazily so browser bundles never see it.
 *
 * @module
 */
import type { SodiumBackend } from './sodium-backend.js'

/** The part of sodium-native's API used here (it ships no types). Outputs are caller-allocated. */
export interface SodiumNative {
  crypto_generichash(out: Uint8Array, data: Uint8Array, key?: Uint8Array): void
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
  crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void
  crypto_box_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void
  crypto_aead_xchacha20poly1305_ietf_encrypt(
    out: Uint8Array, message: Uint8Array, additionalData: Uint8Array | null, nsec: null, nonce: Uint8Array, key: Uint8Array,
  ): number
  crypto_aead_xchacha20poly1305_ietf_decrypt(
    out: Uint8Array, nsec: null, ciphertext: Uint8Array, additionalData: Uint8Array | null, nonce: Uint8Array, key: Uint8Array,
  ): number
  crypto_box_seal(out: Uint8Array, message: Uint8Array, publicKey: Uint8Array): void
  crypto_box_seal_open(out: Uint8Array, sealed: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array): boolean
  sodium_memcmp(a: Uint8Array, b: Uint8Array): boolean
  sodium_memzero(bytes: Uint8Array): void
  randombytes_buf(out: Uint8Array): void
}

const SIGNATURE_BYTES = 64
const SIGN_PUBLIC_KEY_BYTES = 32
const SIGN_SECRET_KEY_BYTES = 64
const BOX_KEY_BYTES = 32
const AEAD_TAG_BYTES = 16
const SEAL_OVERHEAD_BYTES = 48

/**
 * The module name is held in a variable so that bundlers (esbuild, Vite, webpack) leave the
 * import alone: browser builds must not try to resolve a Node addon.
 */
const MODULE_NAME = 'sodium-native'

/**
 * sodium-native's JavaScript layer refuses BLAKE2b outputs and keys shorter than 16 bytes, which
 * libsodium itself (and libsodium-wrappers) accept; recovery-code checksums and pairing SAS
 * need them. Those rare calls go to the WebAssembly build — the same function, the same bytes.
 */
const GENERICHASH_MIN_BYTES = 16

/**
 * Load sodium-native if it is installed and its binary runs here; otherwise say why not.
 * `fallback` (the wasm build) serves the few calls sodium-native's bindings refuse.
 */
export async function loadNativeBackend(fallback: SodiumBackend): Promise<{ backend?: SodiumBackend; reason?: string }> {
  try {
    const loaded = (await import(/* @vite-ignore */ MODULE_NAME)) as { default?: unknown }
    const lib = (loaded.default ?? loaded) as Partial<SodiumNative>
    if (typeof lib.crypto_sign_verify_detached !== 'function' || typeof lib.crypto_aead_xchacha20poly1305_ietf_encrypt !== 'function') {
      return { reason: 'the installed sodium-native lacks the functions contextsync needs' }
    }
    return { backend: nativeBackend(lib as SodiumNative, fallback) }
  } catch (error) {
    return { reason: error instanceof Error ? error.message : String(error) }
  }
}

/** Adapt a loaded `sodium-native` module; `fallback` serves BLAKE2b calls it refuses. */
export function nativeBackend(lib: SodiumNative, fallback: SodiumBackend): SodiumBackend {
  return {
    name: 'native',
    generichash(length, data, key) {
      if (length < GENERICHASH_MIN_BYTES || (key !== undefined && key.length < GENERICHASH_MIN_BYTES)) {
        return fallback.generichash(length, data, key)
      }
      const out = new Uint8Array(length)
      if (key === undefined) lib.crypto_generichash(out, data)
      else lib.crypto_generichash(out, data, key)
      return out
    },
    signDetached(message, secretKey) {
      const signature = new Uint8Array(SIGNATURE_BYTES)
      lib.crypto_sign_detached(signature, message, secretKey)
      return signature
    },
    verifyDetached(signature, message, publicKey) {
      // The binding asserts minimum lengths; libsodium-wrappers refuses other lengths too.
      if (signature.length !== SIGNATURE_BYTES || publicKey.length !== SIGN_PUBLIC_KEY_BYTES) return false
      try {
        return lib.crypto_sign_verify_detached(signature, message, publicKey)
      } catch {
        return false
      }
    },
    signSeedKeypair(seed) {
      const publicKey = new Uint8Array(SIGN_PUBLIC_KEY_BYTES)
      const secretKey = new Uint8Array(SIGN_SECRET_KEY_BYTES)
      lib.crypto_sign_seed_keypair(publicKey, secretKey, seed)
      return { publicKey, secretKey }
    },
    boxSeedKeypair(seed) {
      const publicKey = new Uint8Array(BOX_KEY_BYTES)
      const secretKey = new Uint8Array(BOX_KEY_BYTES)
      lib.crypto_box_seed_keypair(publicKey, secretKey, seed)
      return { publicKey, secretKey }
    },
    aeadEncrypt(plaintext, additionalData, nonce, key) {
      const out = new Uint8Array(plaintext.length + AEAD_TAG_BYTES)
      lib.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, additionalData, null, nonce, key)
      return out
    },
    aeadDecrypt(ciphertext, additionalData, nonce, key) {
      if (ciphertext.length < AEAD_TAG_BYTES) return undefined
      const out = new Uint8Array(ciphertext.length - AEAD_TAG_BYTES)
      try {
        lib.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, ciphertext, additionalData, nonce, key)
        return out
      } catch {
        return undefined
      }
    },
    boxSeal(message, publicKey) {
      const out = new Uint8Array(message.length + SEAL_OVERHEAD_BYTES)
      lib.crypto_box_seal(out, message, publicKey)
      return out
    },
    boxSealOpen(sealed, publicKey, secretKey) {
      if (sealed.length < SEAL_OVERHEAD_BYTES) return undefined
      const out = new Uint8Array(sealed.length - SEAL_OVERHEAD_BYTES)
      try {
        return lib.crypto_box_seal_open(out, sealed, publicKey, secretKey) ? out : undefined
      } catch {
        return undefined
      }
    },
    memcmp: (a, b) => a.length === b.length && lib.sodium_memcmp(a, b),
    memzero: (bytes) => lib.sodium_memzero(bytes),
    randomBytes(length) {
      const out = new Uint8Array(length)
      lib.randombytes_buf(out)
      return out
    },
  }
}
