/**
 * The crypto layer: the only place libsodium is used. Pure functions over bytes.
 *
 * @module
 */
export { ready, useCryptoBackend, cryptoBackend, CRYPTO_BACKEND_ENV, type CryptoBackendName, type CryptoBackendChoice } from './sodium.js'
export { RejectCode, rejectCodeName, type Checked } from './codes.js'
export * from './keys.js'
export * from './key-protector.js'
export * from './passphrase-keys.js'
export * from './wrapping-key-keys.js'
export * from './keyring.js'
export * from './statement.js'
export * from './certificate.js'
export * from './envelope.js'
export * from './token.js'
export { hash, randomBytes, publicRandomBytes, constantTimeEqual } from './primitives.js'
export * from './grants.js'
export * from './end-cutoff.js'
export * from './lockbox.js'
export * from './pairing.js'
export * from './recovery.js'
