/**
 * The WebAssembly libsodium build (`libsodium-wrappers`) behind {@link SodiumBackend}. Runs in
 * every JavaScript runtime; the only build in browsers.
 *
 * @module
 */
import type libsodium from 'libsodium-wrappers'
import type { SodiumBackend } from './sodium-backend.js'

/** Adapt an initialised `libsodium-wrappers` module. */
export function wasmBackend(lib: typeof libsodium): SodiumBackend {
  return {
    name: 'wasm',
    generichash: (length, data, key) => lib.crypto_generichash(length, data, key ?? null),
    signDetached: (message, secretKey) => lib.crypto_sign_detached(message, secretKey),
    verifyDetached(signature, message, publicKey) {
      try {
        return lib.crypto_sign_verify_detached(signature, message, publicKey)
      } catch {
        return false
      }
    },
    signSeedKeypair(seed) {
      const kp = lib.crypto_sign_seed_keypair(seed)
      return { publicKey: kp.publicKey, secretKey: kp.privateKey }
    },
    boxSeedKeypair(seed) {
      const kp = lib.crypto_box_seed_keypair(seed)
      return { publicKey: kp.publicKey, secretKey: kp.privateKey }
    },
    aeadEncrypt: (plaintext, additionalData, nonce, key) =>
      lib.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, additionalData, null, nonce, key),
    aeadDecrypt(ciphertext, additionalData, nonce, key) {
      try {
        return lib.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, additionalData, nonce, key)
      } catch {
        return undefined
      }
    },
    boxSeal: (message, publicKey) => lib.crypto_box_seal(message, publicKey),
    boxSealOpen(sealed, publicKey, secretKey) {
      try {
        return lib.crypto_box_seal_open(sealed, publicKey, secretKey)
      } catch {
        return undefined
      }
    },
    memcmp: (a, b) => a.length === b.length && lib.memcmp(a, b),
    memzero: (bytes) => lib.memzero(bytes),
    randomBytes: (length) => lib.randombytes_buf(length),
  }
}
