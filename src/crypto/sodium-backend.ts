/**
 * The shape both libsodium builds are adapted to (src/crypto/sodium-wasm.ts,
 * src/crypto/sodium-native.ts); src/crypto/sodium.ts picks one.
 *
 * @module
 */

/** Which libsodium build does the work. */
export type CryptoBackendName = 'native' | 'wasm'

/** A backend, or `auto`: native on Node when `sodium-native` loads, else wasm. */
export type CryptoBackendChoice = CryptoBackendName | 'auto'

/**
 * The libsodium operations the design uses, with one calling convention for both builds. Inputs
 * of the wrong length throw (a caller bug); `verifyDetached`, `aeadDecrypt` and `boxSealOpen`
 * never throw on untrusted input — they answer `false` / `undefined`.
 */
export interface SodiumBackend {
  /** Which build this is. */
  readonly name: CryptoBackendName
  /** BLAKE2b, `length` bytes, keyed when `key` is given. */
  generichash(length: number, data: Uint8Array, key: Uint8Array | undefined): Uint8Array
  /** Ed25519 detached signature (64 bytes) with a 64-byte secret key. */
  signDetached(message: Uint8Array, secretKey: Uint8Array): Uint8Array
  /** Ed25519 verification with libsodium's strict rules. */
  verifyDetached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
  /** Ed25519 key pair from a 32-byte seed. */
  signSeedKeypair(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array }
  /** X25519 key pair from a 32-byte seed. */
  boxSeedKeypair(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array }
  /** XChaCha20-Poly1305-IETF encryption: ciphertext ‖ 16-byte tag. */
  aeadEncrypt(plaintext: Uint8Array, additionalData: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array
  /** XChaCha20-Poly1305-IETF decryption; `undefined` when authentication fails. */
  aeadDecrypt(ciphertext: Uint8Array, additionalData: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array | undefined
  /** Anonymous-sender sealed box to an X25519 public key. */
  boxSeal(message: Uint8Array, publicKey: Uint8Array): Uint8Array
  /** Open a sealed box; `undefined` when it was not sealed to this key pair or was altered. */
  boxSealOpen(sealed: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | undefined
  /** Constant-time equality of two equal-length byte strings. */
  memcmp(a: Uint8Array, b: Uint8Array): boolean
  /** Overwrite `bytes` with zeros. */
  memzero(bytes: Uint8Array): void
  /** libsodium's CSPRNG (used where the platform has no `crypto.getRandomValues`). */
  randomBytes(length: number): Uint8Array
}
