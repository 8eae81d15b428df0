/**
 * A {@link KeyProtector} for browsers and webviews (glasses, phone apps): a WebCrypto AES-GCM key
 * created non-extractable and kept in its own IndexedDB database, which wraps the device's key
 * records (README "Keys at rest").
 *
 * ```
 * wrapped = u8 1 · 12B iv · AES-256-GCM ciphertext+tag      additionalData = "contextsync/v1/keys/" + label
 * ```
 *
 * What it protects against: script running in the page (an XSS payload, a compromised
 * dependency) can use the key while the page runs but never read it out, and a dump of the
 * store's records yields no seed. What it does not: the browser keeps the key material in its
 * profile on disk, so whoever copies the whole profile can rebuild it — use a platform keystore
 * (through the host app) or `passphraseKeys` where that matters.
 *
 * @module
 */
import { openDB, type IDBPDatabase } from 'idb'
import { ConfigError } from '../errors.js'
import type { KeyProtector } from '../crypto/key-protector.js'
import { randomBytes } from '../crypto/primitives.js'

/** Options of {@link webCryptoKeys}. */
export interface WebCryptoKeysOptions {
  /** IndexedDB database holding the wrapping key; default `contextsync-keys`. One per device store. */
  name?: string
}

/** The kind a WebCrypto-protected record names. */
export const WEBCRYPTO_KIND = 'webcrypto'

const STORE = 'keys'
const KEY_ID = 'wrapping-key'
const FORMAT = 1
const IV_BYTES = 12

/**
 * Protect the device's keys with a non-extractable WebCrypto key kept in IndexedDB.
 *
 * @example
 * ```ts
 * import { indexedDbStorage, webCryptoKeys } from 'contextsync/idb'
 * const dev = await ContextSync.open({ storage: indexedDbStorage({ name: 'glasses' }), keys: webCryptoKeys({ name: 'glasses-keys' }) })
 * ```
 */
export function webCryptoKeys(options: WebCryptoKeysOptions = {}): KeyProtector {
  const name = options.name ?? 'contextsync-keys'
  let key: Promise<CryptoKey> | undefined
  const wrappingKey = (): Promise<CryptoKey> => {
    key ??= (async () => {
      const subtle = globalThis.crypto?.subtle
      if (!subtle || typeof indexedDB === 'undefined') throw new ConfigError('webCryptoKeys needs WebCrypto and IndexedDB (a browser or webview)')
      const db: IDBPDatabase = await openDB(name, 1, { upgrade: (d) => void d.createObjectStore(STORE) })
      try {
        const stored = (await db.get(STORE, KEY_ID)) as CryptoKey | undefined
        if (stored) return stored
        const created = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
        // `add`, not `put`: two tabs racing to create it keep the first, and the loser reads it.
        try {
          await db.add(STORE, created, KEY_ID)
          return created
        } catch {
          return (await db.get(STORE, KEY_ID)) as CryptoKey
        }
      } finally {
        db.close()
      }
    })()
    return key
  }
  const additionalData = (label: string): Uint8Array<ArrayBuffer> => fresh(new TextEncoder().encode(`contextsync/v1/keys/${label}`))
  return {
    kind: WEBCRYPTO_KIND,
    async wrap(record, label) {
      const iv = fresh(randomBytes(IV_BYTES))
      const sealed = new Uint8Array(await globalThis.crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: additionalData(label) }, await wrappingKey(), fresh(record)))
      const out = new Uint8Array(1 + IV_BYTES + sealed.length)
      out[0] = FORMAT
      out.set(iv, 1)
      out.set(sealed, 1 + IV_BYTES)
      return out
    },
    async unwrap(wrapped, label) {
      if (wrapped.length < 1 + IV_BYTES + 16 || wrapped[0] !== FORMAT) throw new ConfigError(`the ${label} key record is damaged`)
      try {
        const opened = await globalThis.crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: fresh(wrapped.subarray(1, 1 + IV_BYTES)), additionalData: additionalData(label) },
          await wrappingKey(),
          fresh(wrapped.subarray(1 + IV_BYTES)),
        )
        return new Uint8Array(opened)
      } catch (error) {
        if (error instanceof ConfigError) throw error
        throw new ConfigError(`the WebCrypto key in '${name}' does not unlock this device's ${label} keys (was that database cleared?)`)
      }
    },
  }
}

/** A copy on its own ArrayBuffer, as WebCrypto's `BufferSource` wants. */
function fresh(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes)
}
