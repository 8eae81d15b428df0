/**
 * The storage contract: a small key-value store of binary chunks.
 *
 * Keys are string arrays so that related chunks share a prefix (`['replica', roomId, 'log', …]`)
 * and can be listed or removed together. Values are opaque bytes: contextsync only ever hands a
 * storage adapter sealed-log bytes (ciphertext) and key material under the `['keys', …]` prefix.
 *
 * Modelled on automerge-repo's `StorageAdapterInterface`: an interface, not a base class, so a new
 * backend is one file plus a three-line test that calls {@link runStorageAdapterTests}.
 *
 * @module
 */
import { ContextSyncError, ValidationError, type StorageErrorCode } from '../errors.js'

/**
 * A storage key: a path of non-empty string segments, e.g. `['replica', 'room-id', 'log', '0001']`.
 *
 * Valid keys (enforced by {@link assertStorageKey}, checked by `runStorageAdapterTests`):
 * - at least one segment, and every segment a non-empty string;
 * - any UTF-16 content inside a segment: `/`, `:`, `.`, `%`, `\u0000`, any Unicode, even unpaired
 *   surrogates. Adapters store segments verbatim and never split, join or normalise them, so
 *   `['a/b']`, `['a', 'b']` and `['a:b']` are three different keys, and so are an NFC and an NFD
 *   spelling of the same text.
 *
 * Everything else (an empty array, an empty segment, a non-string segment) is rejected with a
 * {@link StorageError} of code `invalid-key`. As a *prefix* for `loadRange`/`removeRange` the empty
 * array is allowed and means "every key".
 */
export type StorageKey = string[]

/** One stored chunk as returned by {@link StorageAdapter.loadRange}. */
export interface StorageChunk {
  /** The full key under which the chunk is stored. */
  key: StorageKey
  /** The stored bytes. `undefined` never occurs for an entry that `loadRange` returns. */
  data: Uint8Array
}

/**
 * A durable (or in-memory) key-value store of binary chunks.
 *
 * Contract (checked by {@link runStorageAdapterTests}):
 * - `save` resolves only once the bytes are durable for that backend; a later `load` returns them.
 * - `loadRange(prefix)` returns every chunk whose key starts with `prefix` (segment-wise, so
 *   `['a']` matches `['a']` and `['a', 'b']` but not `['ab']`), ordered by
 *   {@link compareStorageKeys} (segment-wise, UTF-16 code-unit order, a key before its extensions).
 * - `removeRange(prefix)` removes exactly those chunks.
 * - Calls take effect in the order they are issued, even when not awaited: `save(k, a)` then
 *   `remove(k)` leaves no chunk, two saves to one key leave the later one, and a `load` sees every
 *   write issued before it.
 * - Returned arrays are copies: mutating them does not change what is stored, and mutating a
 *   saved array after `save` resolves does not change the stored value.
 * - Errors reject the returned promise with a {@link StorageError}; nothing is partially written.
 *
 * @example
 * ```ts
 * const storage = memoryStorage()
 * await storage.save(['replica', 'r1', 'log', '0001'], bytes)
 * const chunks = await storage.loadRange(['replica', 'r1', 'log'])
 * ```
 */
export interface StorageAdapter {
  /** Load one chunk, or `undefined` when there is none. */
  load(key: StorageKey): Promise<Uint8Array | undefined>
  /** Store one chunk, replacing any chunk at the same key. */
  save(key: StorageKey, data: Uint8Array): Promise<void>
  /** Remove one chunk; removing a missing key is not an error. */
  remove(key: StorageKey): Promise<void>
  /** Every chunk under `prefix`, ordered by key. */
  loadRange(prefix: StorageKey): Promise<StorageChunk[]>
  /** Remove every chunk under `prefix`. */
  removeRange(prefix: StorageKey): Promise<void>
  /**
   * Make the previous contents of overwritten and removed chunks unrecoverable from the files
   * (SQLite: fold the WAL into the database and truncate it, so no old page image is left on
   * disk), once writes issued before it are committed. Optional: adapters whose medium cannot do
   * it (IndexedDB) leave it out. Called after key records are rewritten (`keys/…`).
   */
  scrub?(): Promise<void>
  /**
   * Release resources once writes issued before the call are settled (they are not dropped).
   * Further calls reject with a {@link StorageError} of code `closed`; calling `close` again
   * resolves, so teardown code may close twice.
   */
  close?(): Promise<void>
  /**
   * `false` when the adapter keeps chunks only in this process's memory (`memoryStorage`), so
   * nothing it holds outlives the process. Anything else — `true` or left out, as for an adapter
   * written elsewhere — counts as durable, and a device opened on it must say how its key records
   * are protected: `ContextSync.open/join({ keys })` (README "Keys at rest").
   */
  readonly durable?: boolean
}

export type { StorageErrorCode } from '../errors.js'

/**
 * The one error type storage adapters reject with. `code` says what went wrong so callers can
 * react (retry on `quota-exceeded`/`io`, tell the user on `corrupt`).
 */
export class StorageError extends ContextSyncError {
  override readonly name = 'StorageError'
  /** What went wrong. */
  declare readonly code: StorageErrorCode
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

/**
 * Throws a {@link StorageError} (`invalid-key`) unless `key` is a non-empty array of non-empty
 * strings. Adapters call this at their boundary so a bad key never reaches the backend.
 */
export function assertStorageKey(key: unknown, allowEmpty = false): asserts key is StorageKey {
  if (!Array.isArray(key) || (!allowEmpty && key.length === 0)) {
    throw new StorageError('invalid-key', `storage key must be a non-empty string array, got ${describe(key)}`)
  }
  for (const part of key) {
    if (typeof part !== 'string' || part.length === 0) {
      throw new StorageError('invalid-key', `storage key segments must be non-empty strings, got ${describe(key)}`)
    }
  }
}

/**
 * Throws a `ValidationError` unless `data` is a `Uint8Array` (a Node `Buffer` is one). A wrong value
 * type is programmer misuse rather than a storage failure, hence not a {@link StorageError}; adapters
 * call this in `save` so the promise rejects before anything is written.
 */
export function assertStorageValue(data: unknown): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new ValidationError(`storage values must be Uint8Array, got ${Object.prototype.toString.call(data)}`)
  }
}

/** Segment-wise comparison used to order `loadRange` results the same way in every adapter. */
export function compareStorageKeys(a: StorageKey, b: StorageKey): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a[i]!
    const y = b[i]!
    if (x !== y) return x < y ? -1 : 1
  }
  return a.length - b.length
}

/** True when `key` starts with every segment of `prefix`. */
export function keyHasPrefix(key: StorageKey, prefix: StorageKey): boolean {
  if (prefix.length > key.length) return false
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false
  return true
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
