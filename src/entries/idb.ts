/**
 * `contextsync/idb` — durable device storage on IndexedDB, for browsers and webviews (glasses and
 * phone runtimes), and the WebCrypto key protector that keeps the device's key records wrapped in
 * it (README "Keys at rest").
 *
 * @module
 */
export { indexedDbStorage, type IndexedDbStorage, type IndexedDbStorageOptions } from '../adapters/idb-storage.js'
export { webCryptoKeys, WEBCRYPTO_KIND, type WebCryptoKeysOptions } from '../adapters/webcrypto-keys.js'
