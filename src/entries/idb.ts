/**
 * `contextsync/idb` — durable device storage on IndexedDB, for browsers and webviews (glasses and
 * phone runtimes).
 *
 * @module
 */
export { indexedDbStorage, type IndexedDbStorage, type IndexedDbStorageOptions } from '../adapters/idb-storage.js'
