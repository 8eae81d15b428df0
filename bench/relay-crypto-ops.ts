/**
 * The crypto-floor table of bench/relay.ts: sign, verify and AEAD on a 300-byte envelope body,
 * timed on the WebAssembly libsodium build and on sodium-native side by side.
 *
 * @module
 */
import libsodium from 'libsodium-wrappers'
import { randomBytes as cryptoRandomBytes } from '../src/crypto/primitives.js'
import type { SodiumBackend } from '../src/crypto/sodium.js'
import { wasmBackend } from '../src/crypto/sodium-wasm.js'
import { median } from './table.js'

/** The timed operations, in table order. */
export const CRYPTO_OPS = ['sign', 'verify', 'aead encrypt', 'aead decrypt'] as const
/** One of {@link CRYPTO_OPS}. */
export type CryptoOp = (typeof CRYPTO_OPS)[number]
/** Timed runs of each operation. */
export const CRYPTO_OP_RUNS = 2000

/**
 * Median ms of each operation, per libsodium build (`native` undefined when it did not load).
 * `nativeSodium`: sodium-native when it loads here (the devices use whatever `ready()` chose);
 * `libsodium.ready` must have resolved.
 */
export function cryptoOperationMedians(nativeSodium: SodiumBackend | undefined): { wasm: Record<CryptoOp, number>; native: Record<CryptoOp, number> | undefined } {
  const message = cryptoRandomBytes(300)
  const additionalData = cryptoRandomBytes(40)
  const nonce = cryptoRandomBytes(24)
  const key = cryptoRandomBytes(32)
  const measure = (build: SodiumBackend): Record<CryptoOp, number> => {
    const keys = build.signSeedKeypair(cryptoRandomBytes(32))
    const signature = build.signDetached(message, keys.secretKey)
    const ciphertext = build.aeadEncrypt(message, additionalData, nonce, key)
    const run: Record<CryptoOp, () => unknown> = {
      sign: () => build.signDetached(message, keys.secretKey),
      verify: () => {
        if (!build.verifyDetached(signature, message, keys.publicKey)) throw new Error('bench: signature did not verify')
      },
      'aead encrypt': () => build.aeadEncrypt(message, additionalData, nonce, key),
      'aead decrypt': () => {
        if (!build.aeadDecrypt(ciphertext, additionalData, nonce, key)) throw new Error('bench: ciphertext did not open')
      },
    }
    const out = {} as Record<CryptoOp, number>
    for (const op of CRYPTO_OPS) {
      const times: number[] = []
      for (let i = 0; i < CRYPTO_OP_RUNS; i++) {
        const start = performance.now()
        run[op]()
        times.push(performance.now() - start)
      }
      out[op] = median(times)
    }
    return out
  }
  return { wasm: measure(wasmBackend(libsodium)), native: nativeSodium && measure(nativeSodium) }
}
