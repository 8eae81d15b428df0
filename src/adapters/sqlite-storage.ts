/**
 * A durable {@link StorageAdapter} on SQLite (better-sqlite3), for Node: the PC app, the car, the
 * relay's own tools. Published as `contextsync/sqlite`.
 *
 * Layout: one table `chunks(key BLOB PRIMARY KEY, data BLOB)` plus `contextsync_meta` holding a
 * magic string and the format version. Keys are encoded into BLOBs whose byte order equals
 * {@link compareStorageKeys} order, so prefix queries are index range scans.
 *
 * @module
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import type Database from 'better-sqlite3'
import { ValidationError } from '../errors.js'
import { requireOptional } from './optional-module.js'
import {
  StorageError,
  assertStorageKey,
  assertStorageValue,
  type StorageAdapter,
  type StorageChunk,
  type StorageKey,
} from './storage.js'

/** Options of {@link sqliteStorage}. */
export interface SqliteStorageOptions {
  /**
   * Path of the database file. Its folder must exist (a typo in a path should not silently make
   * a new tree of folders): otherwise `ready()` and every call reject with `io`, unless
   * `createDirectory` is set.
   */
  path: string
  /** Create the missing folders of `path`. Default `false`. */
  createDirectory?: boolean
  /**
   * `'full'` (default): a resolved save survives a process crash *and* power loss (the WAL is
   * fsynced on every commit). `'normal'`: survives a process crash, but the last commits may be
   * lost on power loss — faster on slow flash; the store stays consistent either way.
   */
  synchronous?: 'full' | 'normal'
  /**
   * Run `PRAGMA quick_check` when opening (about 1 ms per MiB), so a damaged file is reported as
   * `corrupt` by {@link SqliteStorage.ready} instead of by the first read that touches the damage.
   * Default `false`.
   */
  integrityCheck?: boolean
  /**
   * Upper bound on the database size in bytes; a save that would grow the file beyond it rejects
   * with code `quota-exceeded` and writes nothing. Default: unbounded (until the disk is full,
   * which is reported the same way).
   */
  maxSizeBytes?: number
}

/** The adapter returned by {@link sqliteStorage}: a {@link StorageAdapter} plus open status. */
export interface SqliteStorage extends StorageAdapter {
  /** The database file path. */
  readonly path: string
  /**
   * Resolves once the file is open and verified as a contextsync store; rejects with the same
   * {@link StorageError} every other call would reject with (`not-a-store`, `corrupt`, `io`).
   * Calling it is optional — every method waits for (and reports) the open itself.
   */
  ready(): Promise<void>
  /** Commits pending writes, checkpoints the WAL and closes the file. Idempotent. */
  close(): Promise<void>
}

/** Value of the `magic` row in `contextsync_meta`; identifies a contextsync store. */
const MAGIC = 'contextsync/storage'
/** Format version written into new stores; stores with a newer version are refused. */
const FORMAT_VERSION = 1

/**
 * Opens (or creates) a SQLite-backed store at `options.path`.
 *
 * - Writes go through a WAL with `synchronous=FULL` by default: when `save` resolves, the bytes
 *   are on disk and survive `kill -9` and power loss (a crash test with real SIGKILLs checks the
 *   first).
 * - Writes issued in the same tick (e.g. `Promise.all` of many saves) are committed as one
 *   transaction; each promise resolves only after that commit, and if the commit fails every
 *   write of the batch rejects and none is applied.
 * - Opening never throws: problems are reported by {@link SqliteStorage.ready} and by every call.
 *   `not-a-store`: the file is not SQLite, or is SQLite without the contextsync meta table, or
 *   has a newer format; the file is left untouched. `corrupt`: the file is damaged.
 *   `quota-exceeded`: the disk or `maxSizeBytes` is full. `io`: anything else the OS reports
 *   (permissions, a locked file, a failing disk).
 *
 * **Recovering from `corrupt`.** A device's store holds only sealed logs (ciphertext that the
 * relay and the device's peers also hold) plus this device's keys. Close the adapter, move the
 * file and its `-wal`/`-shm` siblings aside (keep them for diagnosis, do not delete them), open a
 * fresh store at the same path and let the replicas re-sync from the relay or a paired device.
 * Key material lost with the file is restored by re-pairing the device (or from the recovery
 * code on an owner device), exactly as on a new device.
 *
 * @example
 * ```ts
 * import { sqliteStorage } from 'contextsync/sqlite'
 * const storage = sqliteStorage({ path: join(dataDir, 'contextsync.db') })
 * await storage.ready() // optional: surfaces not-a-store / corrupt at start-up
 * ```
 */
export function sqliteStorage(options: SqliteStorageOptions): SqliteStorage {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError(`sqliteStorage(options): options must be an object with a path, e.g. sqliteStorage({ path: 'contextsync.db' }); got ${options === null ? 'null' : typeof options}`)
  }
  const { path, synchronous = 'full', integrityCheck = false, maxSizeBytes, createDirectory = false } = options
  if (typeof path !== 'string' || path.length === 0) throw new ValidationError('sqliteStorage: path must be a non-empty string')
  if (synchronous !== 'full' && synchronous !== 'normal') {
    throw new ValidationError(`sqliteStorage: synchronous must be 'full' or 'normal', got ${String(synchronous)}`)
  }
  if (maxSizeBytes !== undefined && !(Number.isSafeInteger(maxSizeBytes) && maxSizeBytes > 0)) {
    throw new ValidationError(`sqliteStorage: maxSizeBytes must be a positive integer, got ${maxSizeBytes}`)
  }
  if (typeof createDirectory !== 'boolean') throw new ValidationError(`sqliteStorage: createDirectory must be a boolean, got ${typeof createDirectory}`)
  // A missing optional dependency is a set-up mistake: said at once, not on the first read.
  const SqliteDatabase = requireOptional<typeof Database>('better-sqlite3', 'contextsync/sqlite')

  let store: OpenStore | undefined
  let openError: StorageError | undefined
  try {
    store = openStore(SqliteDatabase, path, { synchronous, integrityCheck, maxSizeBytes, createDirectory })
  } catch (error) {
    openError = toStorageError(error, `open ${path}`, 'open')
  }

  let closed = false
  let pending: PendingWrite[] = []
  let flushScheduled = false

  /** The open store, or a throw that the calling async method turns into its rejection. */
  const use = (op: string): OpenStore => {
    if (closed) throw new StorageError('closed', `sqliteStorage: ${op} after close()`)
    if (openError) throw openError
    return store!
  }

  // Commits every queued write in one transaction. Reads call this first, so a read issued after
  // a write (even in the same tick) sees it.
  const flush = (): void => {
    if (pending.length === 0 || !store) return
    const batch = pending
    pending = []
    try {
      store.applyBatch(batch)
    } catch (error) {
      const storageError = toStorageError(error, `write ${batch.length} chunk(s) to ${path}`, 'use')
      for (const w of batch) w.reject(storageError)
      return
    }
    for (const w of batch) w.resolve()
  }

  const enqueue = (write: Write): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      pending.push({ ...write, resolve, reject })
      if (!flushScheduled) {
        flushScheduled = true
        queueMicrotask(() => {
          flushScheduled = false
          flush()
        })
      }
    })

  const read = <T>(op: string, fn: (s: OpenStore) => T): T => {
    const s = use(op)
    flush()
    try {
      return fn(s)
    } catch (error) {
      throw toStorageError(error, `${op} from ${path}`, 'use')
    }
  }

  return {
    path,
    durable: true,

    async ready() {
      use('ready')
    },

    async load(key) {
      use('load')
      assertStorageKey(key)
      const encoded = encodeKey(key)
      return read('load', (s) => s.load(encoded))
    },

    async save(key, data) {
      use('save')
      assertStorageKey(key)
      assertStorageValue(data)
      // Copy now: the caller may reuse its buffer before the batch commits.
      return enqueue({ kind: 'save', key: encodeKey(key), data: Buffer.from(data) })
    },

    async remove(key) {
      use('remove')
      assertStorageKey(key)
      return enqueue({ kind: 'remove', key: encodeKey(key) })
    },

    async loadRange(prefix) {
      use('loadRange')
      assertStorageKey(prefix, true)
      const range = prefixRange(prefix)
      return read('loadRange', (s) => s.loadRange(range))
    },

    async removeRange(prefix) {
      use('removeRange')
      assertStorageKey(prefix, true)
      return enqueue({ kind: 'removeRange', range: prefixRange(prefix) })
    },

    async scrub() {
      const s = use('scrub')
      flush()
      try {
        s.scrub()
      } catch (error) {
        throw toStorageError(error, `scrub ${path}`, 'use')
      }
    },

    async close() {
      if (closed) return
      // Settle writes issued before close(); their promises report their own failures.
      flush()
      closed = true
      if (!store) return
      const s = store
      store = undefined
      try {
        s.close()
      } catch (error) {
        throw toStorageError(error, `close ${path}`, 'use')
      }
    },
  }
}

type Write =
  | { kind: 'save'; key: Buffer; data: Buffer }
  | { kind: 'remove'; key: Buffer }
  | { kind: 'removeRange'; range: KeyRange }

type PendingWrite = Write & { resolve: () => void; reject: (error: StorageError) => void }

/** Half-open BLOB range `[lo, hi)`, or `undefined` for "every key". */
type KeyRange = { lo: Buffer; hi: Buffer } | undefined

interface OpenStore {
  load(key: Buffer): Uint8Array | undefined
  loadRange(range: KeyRange): StorageChunk[]
  applyBatch(batch: readonly Write[]): void
  scrub(): void
  close(): void
}

function openStore(
  SqliteDatabase: typeof Database,
  path: string,
  options: { synchronous: 'full' | 'normal'; integrityCheck: boolean; maxSizeBytes: number | undefined; createDirectory: boolean },
): OpenStore {
  const { synchronous, integrityCheck, maxSizeBytes } = options
  if (path !== ':memory:') {
    const folder = dirname(path)
    if (options.createDirectory) mkdirSync(folder, { recursive: true, mode: 0o700 })
    else if (!existsSync(folder)) {
      throw new StorageError('io', `sqliteStorage: the folder of ${path} does not exist; create it, or pass createDirectory: true`)
    }
    ownerOnly(path)
  }
  const db = new SqliteDatabase(path)
  try {
    verifyOrInitialise(db, path)
    if (integrityCheck) {
      const result = db.pragma('quick_check', { simple: true })
      if (result !== 'ok') throw new StorageError('corrupt', `sqliteStorage: ${path} failed quick_check: ${String(result)}`)
    }
    // Only now that the file is known to be ours may we change its journal mode.
    enableIncrementalVacuum(db)
    db.pragma('journal_mode = WAL')
    // Removed chunks (wiped keys, compacted-away envelopes) are overwritten, not left in free pages.
    db.pragma('secure_delete = ON')
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
    if (maxSizeBytes !== undefined) {
      const pageSize = Number(db.pragma('page_size', { simple: true }))
      db.pragma(`max_page_count = ${Math.max(1, Math.floor(maxSizeBytes / pageSize))}`)
    }
    return prepare(db)
  } catch (error) {
    db.close()
    throw error
  }
}

/**
 * Creates the schema in an empty file, or checks that a non-empty one is a contextsync store.
 * Reads `sqlite_master` first: for a file that is not SQLite at all that read fails with
 * SQLITE_NOTADB before anything is written.
 */
function verifyOrInitialise(db: Database.Database, path: string): void {
  const tables = (): Set<string> =>
    new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name),
    )
  let names = tables()
  if (names.size === 0) {
    // Must precede the first table: free pages can then be returned to the file system.
    db.pragma('auto_vacuum = INCREMENTAL')
    // IMMEDIATE takes the write lock, so two processes creating the same store cannot both do it.
    db.transaction(() => {
      if (tables().size !== 0) return
      db.exec(`
        CREATE TABLE contextsync_meta (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
        CREATE TABLE chunks (key BLOB PRIMARY KEY NOT NULL, data BLOB NOT NULL);
      `)
      const insert = db.prepare('INSERT INTO contextsync_meta (name, value) VALUES (?, ?)')
      insert.run('magic', MAGIC)
      insert.run('format', String(FORMAT_VERSION))
    }).immediate()
    names = tables()
  }
  if (!names.has('contextsync_meta')) {
    throw new StorageError('not-a-store', `sqliteStorage: ${path} is an SQLite database of another application`)
  }
  const meta = new Map(
    (db.prepare('SELECT name, value FROM contextsync_meta').all() as Array<{ name: unknown; value: unknown }>).map(
      (r) => [String(r.name), r.value] as const,
    ),
  )
  if (meta.get('magic') !== MAGIC) {
    throw new StorageError('not-a-store', `sqliteStorage: ${path} has no contextsync magic in contextsync_meta`)
  }
  const format = Number(meta.get('format'))
  if (!Number.isInteger(format) || format < 1) {
    throw new StorageError('corrupt', `sqliteStorage: ${path} has an unreadable format version ${String(meta.get('format'))}`)
  }
  if (format > FORMAT_VERSION) {
    throw new StorageError(
      'not-a-store',
      `sqliteStorage: ${path} has format ${format}, this version of contextsync reads up to ${FORMAT_VERSION}`,
    )
  }
  if (!names.has('chunks')) throw new StorageError('corrupt', `sqliteStorage: ${path} lacks its chunks table`)
}

/**
 * Stores created before incremental auto-vacuum was enabled are converted once (a VACUUM, which
 * rewrites the file); afterwards compactions can hand their free pages back (see {@link releaseFreePages}).
 * Best effort: VACUUM needs about twice the file's size free, and a store that cannot be converted
 * (full disk, another process writing) still opens — it is tried again on a later open.
 */
function enableIncrementalVacuum(db: Database.Database): void {
  if (Number(db.pragma('auto_vacuum', { simple: true })) === AUTO_VACUUM_INCREMENTAL) return
  try {
    db.pragma('auto_vacuum = INCREMENTAL')
    db.exec('VACUUM')
  } catch {
    // The file keeps its old mode; nothing was changed (VACUUM is atomic).
  }
}

const AUTO_VACUUM_INCREMENTAL = 2
/** Free pages tolerated before removals trigger an incremental vacuum. */
const MAX_FREE_PAGES = 256

/**
 * Compaction replaces many chunks by one, leaving free pages behind; without this the file keeps
 * its high-water size (about 3× the live data after many compactions, measured).
 */
function releaseFreePages(db: Database.Database): void {
  try {
    if (Number(db.pragma('freelist_count', { simple: true })) > MAX_FREE_PAGES) db.pragma('incremental_vacuum')
  } catch {
    // The batch before it is committed: a busy or full database only delays giving pages back.
  }
}

function checkpointTruncate(db: Database.Database): void {
  try {
    db.pragma('wal_checkpoint(TRUNCATE)')
  } catch {
    // Another connection holding the WAL only delays the checkpoint; nothing is lost.
  }
}

function prepare(db: Database.Database): OpenStore {
  const get = db.prepare<[Buffer], { data: Buffer }>('SELECT data FROM chunks WHERE key = ?')
  const put = db.prepare<[Buffer, Buffer]>(
    'INSERT INTO chunks (key, data) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET data = excluded.data',
  )
  const del = db.prepare<[Buffer]>('DELETE FROM chunks WHERE key = ?')
  const rangeAll = db.prepare<[], { key: Buffer; data: Buffer }>('SELECT key, data FROM chunks ORDER BY key')
  const range = db.prepare<[Buffer, Buffer], { key: Buffer; data: Buffer }>(
    'SELECT key, data FROM chunks WHERE key >= ? AND key < ? ORDER BY key',
  )
  const delAll = db.prepare<[]>('DELETE FROM chunks')
  const delRange = db.prepare<[Buffer, Buffer]>('DELETE FROM chunks WHERE key >= ? AND key < ?')

  const applyBatch = db.transaction((batch: readonly Write[]) => {
    for (const w of batch) {
      if (w.kind === 'save') put.run(w.key, w.data)
      else if (w.kind === 'remove') del.run(w.key)
      else if (w.range) delRange.run(w.range.lo, w.range.hi)
      else delAll.run()
    }
  })

  return {
    load(key) {
      const row = get.get(key)
      return row ? toBytes(row.data) : undefined
    },
    loadRange(r) {
      const rows = r ? range.all(r.lo, r.hi) : rangeAll.all()
      return rows.map((row) => ({ key: decodeKey(row.key), data: toBytes(row.data) }))
    },
    applyBatch(batch) {
      applyBatch.immediate(batch)
      if (batch.some((w) => w.kind !== 'save')) releaseFreePages(db)
      // After a range removal (wiping keys, dropping a replica) the old page images in the WAL
      // would still hold the removed bytes: fold the WAL into the main file and truncate it.
      if (batch.some((w) => w.kind === 'removeRange')) checkpointTruncate(db)
    },
    scrub() {
      releaseFreePages(db)
      checkpointTruncate(db)
    },
    close() {
      checkpointTruncate(db)
      db.close()
    },
  }
}

/** Rows come from disk: anything but a BLOB means the file was tampered with or damaged. */
function toBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new StorageError('corrupt', 'sqliteStorage: a stored value is not a BLOB')
  return new Uint8Array(value) // a plain copy, not a Buffer sharing Node's pool
}

// Key encoding. Every segment is written as its UTF-16 code units, big-endian, followed by the
// terminator 00 00. Code units 0 and 1 would collide with the terminator, so they are escaped as
// 00 01 00 and 00 01 01. The code is prefix-free and each code word sorts like the code unit it
// stands for, with the terminator below all of them, so memcmp order of encoded keys equals
// compareStorageKeys order and the keys under a prefix are exactly the BLOBs that start with the
// encoded prefix. Unpaired surrogates survive, unlike in a UTF-8 TEXT column.

function encodeKey(key: StorageKey): Buffer {
  let length = 0
  for (const segment of key) {
    for (let i = 0; i < segment.length; i++) length += segment.charCodeAt(i) < 2 ? 3 : 2
    length += 2
  }
  const out = Buffer.allocUnsafe(length)
  let o = 0
  for (const segment of key) {
    for (let i = 0; i < segment.length; i++) {
      const c = segment.charCodeAt(i)
      if (c < 2) {
        out[o++] = 0
        out[o++] = 1
        out[o++] = c
      } else {
        out[o++] = c >>> 8
        out[o++] = c & 0xff
      }
    }
    out[o++] = 0
    out[o++] = 0
  }
  return out
}

function decodeKey(encoded: unknown): StorageKey {
  if (!(encoded instanceof Uint8Array)) throw new StorageError('corrupt', 'sqliteStorage: a stored key is not a BLOB')
  const key: StorageKey = []
  let units: number[] = []
  let i = 0
  const fail = (): never => {
    throw new StorageError('corrupt', 'sqliteStorage: a stored key is malformed')
  }
  while (i < encoded.length) {
    const hi = encoded[i]!
    const lo = encoded[i + 1] ?? fail()
    i += 2
    if (hi === 0 && lo === 0) {
      if (units.length === 0) fail()
      key.push(fromCodeUnits(units))
      units = []
    } else if (hi === 0 && lo === 1) {
      const c = encoded[i++] ?? fail()
      if (c > 1) fail()
      units.push(c)
    } else {
      units.push((hi << 8) | lo)
    }
  }
  if (units.length !== 0 || key.length === 0) fail()
  return key
}

function fromCodeUnits(units: readonly number[]): string {
  // Spreading a huge array into one call would exceed the engine's argument limit.
  let s = ''
  for (let i = 0; i < units.length; i += 8192) s += String.fromCharCode(...units.slice(i, i + 8192))
  return s
}

/** Keys under `prefix` are the BLOBs in `[enc, enc with its final 00 raised to 01)`. */
function prefixRange(prefix: StorageKey): KeyRange {
  if (prefix.length === 0) return undefined
  const lo = encodeKey(prefix)
  const hi = Buffer.from(lo)
  hi[hi.length - 1] = 1
  return { lo, hi }
}

/**
 * Maps better-sqlite3 / SQLite failures to storage codes. `SQLITE_NOTADB` means "not a store"
 * while opening, but "corrupt" once the file was already verified as ours.
 */
/**
 * The store holds sealed data, and key records whose protection is only as good as the app's
 * protector: readable by its owner alone. The file is made (or tightened to) 0600 before SQLite
 * opens it; SQLite gives its -wal and -shm files the database file's mode. No-op on Windows.
 */
function ownerOnly(path: string): void {
  if (process.platform === 'win32') return
  closeSync(openSync(path, 'a', 0o600))
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600)
}

function toStorageError(error: unknown, what: string, phase: 'open' | 'use'): StorageError {
  if (error instanceof StorageError) return error
  const sqliteCode = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : ''
  const message = error instanceof Error ? error.message : String(error)
  const make = (code: StorageError['code']): StorageError =>
    new StorageError(code, `sqliteStorage: ${what} failed: ${message}${sqliteCode ? ` (${sqliteCode})` : ''}`, { cause: error })
  if (sqliteCode === 'SQLITE_NOTADB') return make(phase === 'open' ? 'not-a-store' : 'corrupt')
  if (sqliteCode.startsWith('SQLITE_CORRUPT')) return make('corrupt')
  if (sqliteCode === 'SQLITE_FULL') return make('quota-exceeded')
  return make('io')
}
