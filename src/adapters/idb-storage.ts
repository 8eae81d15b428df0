/**
 * A durable {@link StorageAdapter} on IndexedDB (through the `idb` package), for browsers and
 * webviews: the phone app's webview, a PC browser tab, glasses runtimes built on web tech.
 * Published as `contextsync/idb`. No Node built-ins.
 *
 * Layout: one object store whose out-of-line keys are the storage keys themselves, as arrays.
 * IndexedDB compares arrays element by element and strings by UTF-16 code unit, which is exactly
 * {@link compareStorageKeys}; and since every array sorts after every string, the keys under a
 * prefix `p` are precisely the range `[p, [...p, []])`.
 *
 * @module
 */
import { unwrap, wrap, type DBSchema, type IDBPDatabase } from 'idb'
import {
  StorageError,
  assertStorageKey,
  assertStorageValue,
  type StorageAdapter,
  type StorageChunk,
  type StorageKey,
} from './storage.js'
import { ConfigError, ValidationError } from '../errors.js'

/** Options of {@link indexedDbStorage}. */
export interface IndexedDbStorageOptions {
  /** Database name; one store per name (e.g. `'contextsync'`, or one per account). */
  name: string
  /**
   * The factory to open the database with; default `globalThis.indexedDB`. `idb` recognises
   * requests and transactions through the global IndexedDB classes, so the factory must come from
   * the implementation installed as those globals — in Node tests, import `fake-indexeddb/auto`
   * and pass `new IDBFactory()` for an isolated instance.
   */
  indexedDB?: IDBFactory
}

/** The adapter returned by {@link indexedDbStorage}: a {@link StorageAdapter} plus open status. */
export interface IndexedDbStorage extends StorageAdapter {
  /**
   * Resolves once the database is open and holds a contextsync store; rejects with the error
   * every other call would reject with (`not-a-store`, `io`, …). Calling it is optional.
   */
  ready(): Promise<void>
  /** Lets pending writes commit, then closes the connection. Idempotent. */
  close(): Promise<void>
}

const STORE = 'contextsync-chunks'
/** Schema version; a database at a higher version was written by a newer contextsync. */
const VERSION = 1

interface Schema extends DBSchema {
  [STORE]: { key: StorageKey; value: Uint8Array }
}
type DB = IDBPDatabase<Schema>

type Write =
  | { kind: 'save'; key: StorageKey; data: Uint8Array }
  | { kind: 'remove'; key: StorageKey }
  | { kind: 'removeRange'; prefix: StorageKey }

type PendingWrite = Write & { resolve: () => void; reject: (error: StorageError) => void }

/**
 * Opens (or creates) an IndexedDB-backed store.
 *
 * - A write resolves when its transaction fires `complete`, requested with
 *   `durability: 'strict'` (flushed to disk before `complete` where the browser supports it;
 *   older engines ignore the hint and use their default).
 * - Writes issued in the same tick share one transaction: each promise resolves after it
 *   commits; if it aborts, every write of the batch rejects and none is applied.
 * - `QuotaExceededError` → `quota-exceeded`. A connection the browser closed (the user cleared
 *   site data, another tab deleted or upgraded the database) → `closed`: the adapter closes
 *   itself so it never blocks that other tab, and the app should open a new adapter. A database
 *   of the same name without the contextsync object store, or at a newer version →
 *   `not-a-store`. Anything else → `io`.
 *
 * Recovering from `corrupt` or `not-a-store`: the store holds only sealed logs (also held by the
 * relay and the device's peers) plus this device's keys, so use a new database name (or delete
 * this one) and let the replicas re-sync; lost keys are restored by re-pairing the device.
 *
 * @example
 * ```ts
 * import { indexedDbStorage } from 'contextsync/idb'
 * const storage = indexedDbStorage({ name: 'contextsync' })
 * ```
 */
export function indexedDbStorage(options: IndexedDbStorageOptions): IndexedDbStorage {
  const { name } = options
  if (typeof name !== 'string' || name.length === 0) throw new ValidationError('indexedDbStorage: name must be a non-empty string')
  const factory = options.indexedDB ?? globalThis.indexedDB
  if (!factory) throw new ConfigError('indexedDbStorage: no IndexedDB available; pass options.indexedDB')

  let db: DB | undefined
  let openError: StorageError | undefined
  let closed = false
  let closedReason = 'after close()'
  // Work that arrived before the open finished, run in arrival order once it does.
  const waiting: Array<{ run: (db: DB) => void; fail: (error: StorageError) => void }> = []
  let pending: PendingWrite[] = []
  let flushScheduled = false
  const inflight = new Set<Promise<void>>()

  const markClosed = (reason: string): void => {
    closed = true
    closedReason = reason
  }

  openStore(factory, name, markClosed).then(
    (opened) => {
      db = opened
      for (const w of waiting.splice(0)) w.run(opened)
    },
    (error: unknown) => {
      openError = toStorageError(error, `open ${name}`)
      for (const w of waiting.splice(0)) w.fail(openError)
    },
  )

  /**
   * Runs `fn` with the open database: synchronously when already open (so transactions are
   * created in call order, which IndexedDB then preserves), otherwise in order once open.
   */
  const withDb = <T>(fn: (db: DB) => Promise<T>): Promise<T> => {
    if (openError) return Promise.reject(openError)
    const run = (d: DB): Promise<T> => {
      try {
        return fn(d)
      } catch (error) {
        return Promise.reject(toStorageError(error, name))
      }
    }
    if (db) return run(db)
    return new Promise<T>((resolve, reject) => {
      waiting.push({ run: (d) => run(d).then(resolve, reject), fail: reject })
    })
  }

  const check = (op: string): void => {
    if (closed) throw new StorageError('closed', `indexedDbStorage(${name}): ${op} ${closedReason}`)
  }

  // Puts every queued write into one readwrite transaction. Reads call this first, so a read
  // issued after a write gets a later transaction and sees it.
  const flush = (d: DB): void => {
    if (pending.length === 0) return
    const batch = pending
    pending = []
    let done: Promise<void>
    let abort: (() => void) | undefined
    try {
      const tx = d.transaction(STORE, 'readwrite', { durability: 'strict' })
      abort = () => tx.abort()
      // Failures are reported once, through `done`; the per-request promises (and `tx.done` if
      // we end up not using it) must not become unhandled rejections.
      done = tx.done
      done.catch(ignore)
      const store = tx.objectStore(STORE)
      for (const w of batch) {
        if (w.kind === 'save') store.put(w.data, w.key).catch(ignore)
        else if (w.kind === 'remove') store.delete(w.key).catch(ignore)
        else store.delete(prefixRange(w.prefix)).catch(ignore)
      }
    } catch (error) {
      // A request that throws synchronously does not abort the transaction by itself: abort it
      // so the writes already placed in it are not committed (a batch is all or nothing).
      try {
        abort?.()
      } catch {
        // Already finished or never started; nothing was committed by this batch then.
      }
      done = Promise.reject(error)
    }
    const settled = done.then(
      () => {
        for (const w of batch) w.resolve()
      },
      (error: unknown) => {
        const storageError = toStorageError(error, `write ${batch.length} chunk(s) to ${name}`)
        for (const w of batch) w.reject(storageError)
      },
    )
    inflight.add(settled)
    void settled.then(() => inflight.delete(settled))
  }

  const enqueue = (write: Write): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      pending.push({ ...write, resolve, reject })
      if (!flushScheduled) {
        flushScheduled = true
        queueMicrotask(() => {
          flushScheduled = false
          withDb(async (d) => flush(d)).catch((error: unknown) => {
            // The open failed: the writes still queued share its error.
            for (const w of pending.splice(0)) w.reject(toStorageError(error, name))
          })
        })
      }
    })

  const read = <T>(fn: (d: DB) => Promise<T>): Promise<T> =>
    withDb((d) => {
      flush(d)
      return fn(d)
    }).catch((error: unknown) => {
      throw toStorageError(error, `read from ${name}`)
    })

  return {
    durable: true,

    async ready() {
      check('ready')
      await withDb(async () => undefined)
    },

    async load(key) {
      check('load')
      assertStorageKey(key)
      const copy = [...key]
      return read(async (d) => {
        const value: unknown = await d.transaction(STORE, 'readonly').objectStore(STORE).get(copy)
        return value === undefined ? undefined : asBytes(value)
      })
    },

    async save(key, data) {
      check('save')
      assertStorageKey(key)
      assertStorageValue(data)
      // slice(): an own copy of exactly the view's bytes — structured clone would otherwise
      // persist the whole underlying buffer of a subarray.
      return enqueue({ kind: 'save', key: [...key], data: data.slice() })
    },

    async remove(key) {
      check('remove')
      assertStorageKey(key)
      return enqueue({ kind: 'remove', key: [...key] })
    },

    async loadRange(prefix) {
      check('loadRange')
      assertStorageKey(prefix, true)
      const range = prefixRange(prefix)
      return read(async (d) => {
        const store = d.transaction(STORE, 'readonly').objectStore(STORE)
        // Both requests run in one transaction, so they see the same snapshot in the same order.
        const [keys, values] = await Promise.all([store.getAllKeys(range), store.getAll(range)])
        if (keys.length !== values.length) throw new StorageError('corrupt', `indexedDbStorage(${name}): key/value count mismatch`)
        return keys.map((key, i): StorageChunk => ({ key: asKey(key), data: asBytes(values[i]) }))
      })
    },

    async removeRange(prefix) {
      check('removeRange')
      assertStorageKey(prefix, true)
      return enqueue({ kind: 'removeRange', prefix: [...prefix] })
    },

    async close() {
      if (closed && closedReason === 'after close()') return
      markClosed('after close()')
      // Commit what was issued before close(); those promises report their own outcome.
      await withDb(async (d) => {
        flush(d)
        d.close() // IndexedDB lets already-created transactions finish before closing
      }).catch(() => {})
      await Promise.allSettled([...inflight])
    },
  }
}

async function openStore(factory: IDBFactory, name: string, onLost: (reason: string) => void): Promise<DB> {
  const request = factory.open(name, VERSION)
  request.addEventListener('upgradeneeded', (event) => {
    // Only a brand-new database gets our schema; an existing one is never altered.
    if (event.oldVersion === 0) request.result.createObjectStore(STORE)
  })
  const db = (await wrap(request)) as unknown as DB
  const raw = unwrap(db)
  if (!raw.objectStoreNames.contains(STORE)) {
    raw.close()
    throw new StorageError('not-a-store', `indexedDbStorage: database ${name} exists but is not a contextsync store`)
  }
  raw.addEventListener('versionchange', () => {
    // Another context wants to delete or upgrade the database: step aside instead of blocking it.
    raw.close()
    onLost('after the database was deleted or upgraded elsewhere')
  })
  raw.addEventListener('close', () => onLost('after the browser closed the database'))
  return db
}

function ignore(): void {}

function prefixRange(prefix: StorageKey): IDBKeyRange {
  // [] sorts before every key and [[]] after every array of strings, so the empty prefix works too.
  return IDBKeyRange.bound(prefix, [...prefix, []])
}

/** Values come from disk: anything but bytes means another writer or damage. */
function asBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new StorageError('corrupt', 'indexedDbStorage: a stored value is not a Uint8Array')
  return value // structured clone already gave us our own copy
}

function asKey(key: unknown): StorageKey {
  if (!Array.isArray(key) || key.length === 0 || !key.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new StorageError('corrupt', 'indexedDbStorage: a stored key is not a storage key')
  }
  return key as StorageKey
}

function toStorageError(error: unknown, what: string): StorageError {
  if (error instanceof StorageError) return error
  const errorName = typeof error === 'object' && error !== null && 'name' in error ? String(error.name) : ''
  const message = error instanceof Error ? error.message : String(error)
  const make = (code: StorageError['code']): StorageError =>
    new StorageError(code, `indexedDbStorage: ${what} failed: ${errorName ? `${errorName}: ` : ''}${message}`, { cause: error })
  switch (errorName) {
    case 'QuotaExceededError':
      return make('quota-exceeded')
    case 'InvalidStateError':
      return make('closed')
    case 'VersionError':
      return make('not-a-store')
    default:
      return make('io')
  }
}
