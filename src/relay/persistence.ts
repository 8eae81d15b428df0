/**
 * Relay persistence: per-room Yjs updates in SQLite (better-sqlite3, WAL) or in memory, with
 * per-account accounting for the quotas.
 *
 * Each update the relay applies is appended as one row. The room layer periodically *merges* a
 * room: all its rows are replaced, in one transaction, by `Y.encodeStateAsUpdate(doc)`. Because
 * the room doc garbage-collects deleted items, a merged row no longer holds the ciphertext of
 * envelopes that devices compacted away, so storage tracks the compacted log, not its history.
 *
 * Deleted bytes must not linger on disk either: `secure_delete` zeroes freed cells and pages, and
 * every checkpoint truncates the WAL (old page images live there until then).
 *
 * The relay only stores ciphertext; nothing here can read it. Besides rooms, it keeps the
 * root-signed revocations it verified (`revocations`), so a device stays refused after a restart
 * even when someone deleted its revocation from the registry room's public map (THREAT_MODEL.md,
 * anyone who can reach the relay), and the newest relay pass of each device (`passes`), so an
 * older pass of a device stays refused after the same deletion and a restart.
 *
 * Quotas count a room by its *merged size*: what a merge would store. Stored rows overstate it
 * between merges (an update's deletions only shrink storage when merged), so each room keeps an
 * estimate, updated per update without touching the rest of the room — plus the update's bytes,
 * minus the live content its deletions remove (`room-size.ts`) — and set exactly at every merge.
 * The estimate never undercounts (deleted items' own ids are not subtracted); when it reaches a
 * quota, the connection merges the room for an exact figure, but only once at least an eighth of
 * the room was appended since the last merge — so merge work stays proportional to bytes written —
 * or when the overcount could be the whole excess, once a 64th of the room was appended or twenty
 * times the last merge's encoding time passed (`Room.mayMergeForExactSize`), so a room that fits
 * is not refused.
 *
 * @module
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { requireOptional } from '../adapters/optional-module.js'
import { ClosedError } from '../errors.js'
import {
  accountOfRoom,
  passBytes,
  revocationBytes,
  type AppendQuota,
  type AppendResult,
  type CompactResult,
  type RelayStore,
  type SavePassResult,
  type SpentNonce,
  type StoredPass,
  type StoredRevocation,
  type StoredRoomSummary,
  type StoredUpdate,
} from './store.js'

export { accountOfRoom, type StoredRevocation } from './store.js'

/** Raw storage of per-room update rows, verified revocations and passes. Two implementations: SQLite and memory. */
export interface RelayStorageBackend {
  /** Per-room row count and byte size, read once at start for the quotas. */
  summary(): Iterable<{ roomId: string; rows: number; bytes: number }>
  /** Every stored update of a room, oldest first. */
  load(roomId: string): Uint8Array[]
  /** Append one update row. */
  append(roomId: string, update: Uint8Array): void
  /**
   * Atomically replace every row of a room by `state` followed by the rows `rest` (newer rows a
   * compaction does not cover), or delete the room when `state` is null.
   */
  replace(roomId: string, state: Uint8Array | null, rest?: readonly Uint8Array[]): void
  /** Every stored revocation (read once at start). */
  revocations(): Iterable<StoredRevocation>
  /** Keep a verified revocation durably (committed before it returns); one per account and device. */
  saveRevocation(revocation: StoredRevocation): void
  /** Kept passes of one account, or of every account when `accountId` is left out. */
  passes(accountId?: string): Iterable<StoredPass>
  /**
   * Keep `pass` as its device's pass (committed before it returns), replacing the one kept; the
   * caller ({@link backendStore}) only calls it with a newer pass.
   */
  savePass(pass: StoredPass): void
  /**
   * Token nonces admitted earlier that may not be forgotten yet (`keepUntil` in ms after `now`),
   * read once at start so a token spent before a restart stays spent. Optional: a backend that
   * keeps nothing across restarts leaves it out.
   */
  savedNonces?(now: number): Iterable<{ nonce: string; keepUntil: number }>
  /** Keep an admitted token nonce until `keepUntil` (ms); written with the next batch. */
  saveNonce?(nonce: string, keepUntil: number): void
  /** Make writes durable and drop superseded bytes from disk (WAL checkpoint). */
  checkpoint(): void
  /** Checkpoint and release the backend. */
  close(): void
}

/** File name of the relay database inside `--data DIR`. */
export const DATABASE_FILE = 'relay.sqlite'

/** Options of {@link sqliteBackend}. */
export interface SqliteBackendOptions {
  /**
   * Called when a batch of appended updates could not be written (disk full, I/O error). The
   * updates stay in the rooms' memory and reach disk with the room's next merge.
   */
  onAppendError?: (error: unknown, rows: number) => void
}

/**
 * SQLite backend under `dir` (created if missing): one table of `(id, room, data)` rows, WAL
 * journal, `synchronous=NORMAL` (a committed update survives a process crash), and
 * `secure_delete=ON` so merged-away ciphertext is overwritten rather than left in free pages.
 *
 * Appends are committed in batches: every update appended during one turn of the event loop is
 * written in one transaction right after it (`setImmediate`), instead of one commit — one WAL
 * append — per update. The relay forwards an update before it is committed; a crash in that
 * sub-millisecond window loses nothing the devices need, since Yjs peers resend what a server
 * lacks on reconnect. Every other operation commits pending appends first, so order holds.
 */
export function sqliteBackend(dir: string, options: SqliteBackendOptions = {}): RelayStorageBackend {
  const SqliteDatabase = requireOptional<typeof Database>('better-sqlite3', 'the relay with a data folder')
  mkdirSync(dir, { recursive: true })
  const db = new SqliteDatabase(join(dir, DATABASE_FILE))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('secure_delete = ON')
  db.exec(`
    CREATE TABLE IF NOT EXISTS updates (
      id INTEGER PRIMARY KEY,
      room TEXT NOT NULL,
      data BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS updates_room ON updates (room, id);
    CREATE TABLE IF NOT EXISTS nonces (
      nonce TEXT PRIMARY KEY,
      keep_until INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS revocations (
      account TEXT NOT NULL,
      device TEXT NOT NULL,
      root BLOB NOT NULL,
      statement BLOB NOT NULL,
      PRIMARY KEY (account, device)
    );
    CREATE TABLE IF NOT EXISTS passes (
      account TEXT NOT NULL,
      device TEXT NOT NULL,
      issued_at INTEGER NOT NULL,
      root BLOB NOT NULL,
      statement BLOB NOT NULL,
      PRIMARY KEY (account, device)
    );
  `)
  type PassRow = { account: string; device: string; issued_at: number; root: Uint8Array; statement: Uint8Array }
  const passesStmt = db.prepare<[], PassRow>('SELECT account, device, issued_at, root, statement FROM passes')
  const accountPassesStmt = db.prepare<[string], PassRow>('SELECT account, device, issued_at, root, statement FROM passes WHERE account = ?')
  const savePassStmt = db.prepare<[string, string, number, Uint8Array, Uint8Array]>(
    'INSERT OR REPLACE INTO passes (account, device, issued_at, root, statement) VALUES (?, ?, ?, ?, ?)',
  )
  const passOfRow = ({ account, device, issued_at, root, statement }: PassRow): StoredPass => ({
    accountId: account,
    deviceId: device,
    issuedAt: issued_at,
    rootPublicKey: new Uint8Array(root),
    statement: new Uint8Array(statement),
  })
  const revocationsStmt = db.prepare<[], { account: string; device: string; root: Uint8Array; statement: Uint8Array }>(
    'SELECT account, device, root, statement FROM revocations',
  )
  const saveRevocationStmt = db.prepare<[string, string, Uint8Array, Uint8Array]>(
    'INSERT OR IGNORE INTO revocations (account, device, root, statement) VALUES (?, ?, ?, ?)',
  )
  const summaryStmt = db.prepare<[], { room: string; rows: number; bytes: number }>(
    'SELECT room, COUNT(*) AS rows, SUM(LENGTH(data)) AS bytes FROM updates GROUP BY room',
  )
  const loadStmt = db.prepare<[string], { data: Uint8Array }>('SELECT data FROM updates WHERE room = ? ORDER BY id')
  const insertStmt = db.prepare<[string, Uint8Array]>('INSERT INTO updates (room, data) VALUES (?, ?)')
  const deleteStmt = db.prepare<[string]>('DELETE FROM updates WHERE room = ?')
  const replaceTx = db.transaction((roomId: string, state: Uint8Array | null, rest: readonly Uint8Array[]) => {
    deleteStmt.run(roomId)
    if (state) {
      insertStmt.run(roomId, state)
      for (const row of rest) insertStmt.run(roomId, row)
    }
  })
  const insertNonceStmt = db.prepare<[string, number]>('INSERT OR REPLACE INTO nonces (nonce, keep_until) VALUES (?, ?)')
  const pruneNoncesStmt = db.prepare<[number]>('DELETE FROM nonces WHERE keep_until <= ?')
  const noncesStmt = db.prepare<[], { nonce: string; keep_until: number }>('SELECT nonce, keep_until FROM nonces')
  const insertBatchTx = db.transaction((rows: Array<[string, Uint8Array]>, nonceRows: Array<[string, number]>) => {
    for (const [roomId, update] of rows) insertStmt.run(roomId, update)
    for (const [nonce, keepUntil] of nonceRows) insertNonceStmt.run(nonce, keepUntil)
  })
  let pending: Array<[string, Uint8Array]> = []
  let pendingNonces: Array<[string, number]> = []
  let commitScheduled = false
  /**
   * Commit pending appends now. A failed batch is reported, not thrown: it must not fail the
   * unrelated read or merge that triggered the commit (its rows are still in the rooms' docs).
   */
  const commitPending = (): void => {
    if (pending.length === 0 && pendingNonces.length === 0) return
    const rows = pending
    const nonceRows = pendingNonces
    pending = []
    pendingNonces = []
    try {
      insertBatchTx(rows, nonceRows)
    } catch (error) {
      options.onAppendError?.(error, rows.length)
    }
  }
  const scheduleCommit = (): void => {
    if (!commitScheduled) {
      commitScheduled = true
      setImmediate(commitSoon)
    }
  }
  const commitSoon = (): void => {
    commitScheduled = false
    if (!closed) commitPending()
  }
  let closed = false
  const checkpoint = (): void => {
    commitPending()
    // Spent nonces are kept only while their tokens could still verify.
    pruneNoncesStmt.run(Date.now())
    // TRUNCATE resets the WAL file to zero bytes, so page images holding deleted ciphertext go.
    db.pragma('wal_checkpoint(TRUNCATE)')
  }
  return {
    summary: () => {
      commitPending()
      return summaryStmt.all().map(({ room, rows, bytes }) => ({ roomId: room, rows, bytes }))
    },
    load: (roomId) => {
      commitPending()
      return loadStmt.all(roomId).map(({ data }) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    },
    append(roomId, update) {
      if (closed) throw new ClosedError('relay storage is closed')
      pending.push([roomId, update])
      scheduleCommit()
    },
    savedNonces(now) {
      pruneNoncesStmt.run(now)
      return noncesStmt.all().map(({ nonce, keep_until }) => ({ nonce, keepUntil: keep_until }))
    },
    saveNonce(nonce, keepUntil) {
      if (closed) return
      pendingNonces.push([nonce, keepUntil])
      scheduleCommit()
    },
    replace: (roomId, state, rest = []) => {
      commitPending()
      replaceTx(roomId, state, rest)
    },
    revocations: () =>
      revocationsStmt.all().map(({ account, device, root, statement }) => ({
        accountId: account,
        deviceId: device,
        rootPublicKey: new Uint8Array(root),
        statement: new Uint8Array(statement),
      })),
    saveRevocation({ accountId, deviceId, rootPublicKey, statement }) {
      if (closed) throw new ClosedError('relay storage is closed')
      // Written at once, not batched: it must survive a crash right after the device was cut off.
      saveRevocationStmt.run(accountId, deviceId, rootPublicKey, statement)
    },
    passes: (accountId) => (accountId === undefined ? passesStmt.all() : accountPassesStmt.all(accountId)).map(passOfRow),
    savePass({ accountId, deviceId, issuedAt, rootPublicKey, statement }) {
      if (closed) throw new ClosedError('relay storage is closed')
      // Written at once like a revocation: the older pass must stay refused after a crash.
      savePassStmt.run(accountId, deviceId, issuedAt, rootPublicKey, statement)
    },
    checkpoint,
    close() {
      if (closed) return
      try {
        checkpoint()
      } finally {
        closed = true
        db.close()
      }
    },
  }
}

/** In-memory backend: the relay keeps rooms for its lifetime only (tests, the embedded demo). */
export function memoryBackend(): RelayStorageBackend {
  const rooms = new Map<string, Uint8Array[]>()
  const revoked = new Map<string, StoredRevocation>()
  const passes = new Map<string, StoredPass>()
  return {
    summary: () =>
      [...rooms].map(([roomId, rows]) => ({ roomId, rows: rows.length, bytes: rows.reduce((n, r) => n + r.length, 0) })),
    load: (roomId) => [...(rooms.get(roomId) ?? [])],
    append(roomId, update) {
      let rows = rooms.get(roomId)
      if (!rows) rooms.set(roomId, (rows = []))
      rows.push(update.slice())
    },
    replace(roomId, state, rest = []) {
      if (state) rooms.set(roomId, [state.slice(), ...rest.map((row) => row.slice())])
      else rooms.delete(roomId)
    },
    revocations: () => [...revoked.values()],
    saveRevocation(revocation) {
      const key = `${revocation.accountId}/${revocation.deviceId}`
      if (!revoked.has(key)) {
        revoked.set(key, { ...revocation, rootPublicKey: revocation.rootPublicKey.slice(), statement: revocation.statement.slice() })
      }
    },
    passes: (accountId) => [...passes.values()].filter((pass) => accountId === undefined || pass.accountId === accountId),
    savePass(pass) {
      passes.set(`${pass.accountId}/${pass.deviceId}`, { ...pass, rootPublicKey: pass.rootPublicKey.slice(), statement: pass.statement.slice() })
    },
    checkpoint() {},
    close() {
      rooms.clear()
    },
  }
}


/** Per-room state the single-process stores keep beside their backend. */
interface BackendRoom {
  /** Seq of each stored row, oldest first (parallel to the backend's rows). */
  seqs: number[]
  bytes: number
  size: number
  head: number
}

/**
 * A {@link RelayStore} over a single-process {@link RelayStorageBackend} (memory or SQLite). The
 * backend keeps rows in order; sequence numbers, counted sizes and spent nonces live beside it in
 * this process, which is the only writer — so every step is atomic by running to completion
 * before any other. Sequence numbers restart from the row count when the process does: nothing
 * outside this process ever holds one.
 *
 * Appends are the backend's: SQLite commits every append of one event-loop turn together right
 * after it (see {@link sqliteBackend}), so `append` resolves when the row is queued.
 */
export function backendStore(backend: RelayStorageBackend, kind: string): RelayStore {
  const rooms = new Map<string, BackendRoom>()
  const accounts = new Map<string, number>()
  const nonces = new Map<string, number>()
  let closed = false
  const addAccount = (account: string, delta: number): void => {
    accounts.set(account, Math.max(0, (accounts.get(account) ?? 0) + delta))
  }
  for (const { roomId, rows, bytes } of backend.summary()) {
    rooms.set(roomId, { seqs: Array.from({ length: rows }, (_, i) => i + 1), bytes, size: bytes, head: rows })
    addAccount(accountOfRoom(roomId), bytes)
  }
  for (const revocation of backend.revocations()) addAccount(revocation.accountId, revocationBytes(revocation))
  for (const pass of backend.passes()) addAccount(pass.accountId, passBytes(pass))
  for (const { nonce, keepUntil } of backend.savedNonces?.(Date.now()) ?? []) nonces.set(nonce, keepUntil)
  const open = (): void => {
    if (closed) throw new ClosedError('relay storage is closed')
  }
  const room = (roomId: string): BackendRoom => {
    let r = rooms.get(roomId)
    if (!r) rooms.set(roomId, (r = { seqs: [], bytes: 0, size: 0, head: 0 }))
    return r
  }
  /** Rooms with rows, of one account or (undefined) of all. */
  const roomsWithRows = (account: string | undefined): number => {
    let n = 0
    for (const [id, r] of rooms) if (r.seqs.length > 0 && (account === undefined || accountOfRoom(id) === account)) n++
    return n
  }
  const appendOne = (roomId: string, update: Uint8Array, quota: AppendQuota | undefined): AppendResult => {
    const account = accountOfRoom(roomId)
    if (quota && quota.growth > 0 && (accounts.get(account) ?? 0) + quota.growth > quota.maxAccountSize) return { ok: false, reason: 'quota' }
    if (quota && !(rooms.get(roomId)?.seqs.length ?? 0)) {
      if (quota.maxRoomsPerAccount !== undefined && roomsWithRows(account) >= quota.maxRoomsPerAccount) return { ok: false, reason: 'roomsPerAccount' }
      if (quota.maxRooms !== undefined && roomsWithRows(undefined) >= quota.maxRooms) return { ok: false, reason: 'rooms' }
    }
    backend.append(roomId, update)
    const r = room(roomId)
    r.head += 1
    r.seqs.push(r.head)
    r.bytes += update.length
    const before = r.size
    r.size = Math.max(0, r.size + (quota?.growth ?? update.length))
    addAccount(account, r.size - before)
    return { ok: true, seq: r.head }
  }
  const run = async <T>(step: () => T): Promise<T> => {
    open()
    return step()
  }
  return {
    kind,
    shared: false,
    summary: () =>
      run((): StoredRoomSummary[] =>
        [...rooms].filter(([, r]) => r.seqs.length > 0).map(([roomId, r]) => ({ roomId, rows: r.seqs.length, bytes: r.bytes, head: r.head })),
      ),
    heads: (roomIds) =>
      run(() => {
        const out = new Map<string, number>()
        for (const roomId of roomIds) {
          const head = rooms.get(roomId)?.head
          if (head) out.set(roomId, head)
        }
        return out
      }),
    load: (roomId, afterSeq = 0) =>
      run((): StoredUpdate[] => {
        const seqs = rooms.get(roomId)?.seqs ?? []
        const rows = seqs.length === 0 ? [] : backend.load(roomId)
        const out: StoredUpdate[] = []
        for (let i = 0; i < rows.length && i < seqs.length; i++) if (seqs[i]! > afterSeq) out.push({ seq: seqs[i]!, data: rows[i]! })
        return out
      }),
    append: (roomId, update, quota?: AppendQuota) => run(() => appendOne(roomId, update, quota)),
    appendBatch: (roomId, entries) =>
      run((): AppendResult[] => {
        const out: AppendResult[] = []
        for (const { update, quota } of entries) {
          const last = out[out.length - 1]
          out.push(last && !last.ok ? last : appendOne(roomId, update, quota))
        }
        return out
      }),
    compact: (roomId, through, merged) =>
      run((): CompactResult => {
        const r = rooms.get(roomId)
        if (!r) return { status: 'stale' }
        const covered = r.seqs.filter((seq) => seq <= through).length
        if (covered <= 1) return { status: 'stale' }
        const rows = backend.load(roomId)
        const rest = rows.slice(covered)
        const coveredBytes = rows.slice(0, covered).reduce((n, row) => n + row.length, 0)
        backend.replace(roomId, merged, rest)
        r.seqs = [through, ...r.seqs.slice(covered)]
        r.bytes += merged.length - coveredBytes
        const before = r.size
        r.size = r.bytes
        addAccount(accountOfRoom(roomId), r.size - before)
        return { status: 'merged', rows: covered, bytes: coveredBytes }
      }),
    remove: (roomId) =>
      run(() => {
        const r = rooms.get(roomId)
        backend.replace(roomId, null)
        if (r) addAccount(accountOfRoom(roomId), -r.size)
        rooms.delete(roomId)
      }),
    accountSize: (accountId) => run(() => accounts.get(accountId) ?? 0),
    usage: () => run(() => ({ rooms: roomsWithRows(undefined), size: [...accounts.values()].reduce((n, size) => n + size, 0) })),
    revocations: () => run(() => [...backend.revocations()]),
    saveRevocation: (revocation) =>
      run(() => {
        const known = [...backend.revocations()].some((r) => r.accountId === revocation.accountId && r.deviceId === revocation.deviceId)
        backend.saveRevocation(revocation)
        if (!known) addAccount(revocation.accountId, revocationBytes(revocation))
      }),
    passes: (accountId) => run(() => [...backend.passes(accountId)]),
    savePass: (pass) =>
      run((): SavePassResult => {
        const kept = [...backend.passes(pass.accountId)].find((p) => p.deviceId === pass.deviceId)
        if (kept && kept.issuedAt >= pass.issuedAt) return { kept: false }
        backend.savePass(pass)
        const growth = passBytes(pass) - (kept ? passBytes(kept) : 0)
        addAccount(pass.accountId, growth)
        return { kept: true, growth }
      }),
    claimNonce: (nonce, keepUntil, now) =>
      run(() => {
        const until = nonces.get(nonce)
        if (until !== undefined && until > now) return false
        nonces.set(nonce, keepUntil)
        backend.saveNonce?.(nonce, keepUntil)
        return true
      }),
    spentNonces: (now) =>
      run((): SpentNonce[] => [...nonces].filter(([, keepUntil]) => keepUntil > now).map(([nonce, keepUntil]) => ({ nonce, keepUntil }))),
    checkpoint: () =>
      run(() => {
        const now = Date.now()
        for (const [nonce, keepUntil] of nonces) if (keepUntil <= now) nonces.delete(nonce)
        backend.checkpoint()
      }),
    ping: () => run(() => undefined),
    close: async () => {
      if (closed) return
      closed = true
      backend.close()
    },
  }
}

/** A {@link RelayStore} in memory: rooms live as long as the relay process (tests, the embedded demo). */
export function memoryStore(): RelayStore {
  return backendStore(memoryBackend(), 'memory')
}

/** A {@link RelayStore} in the SQLite database under `dir` (see {@link sqliteBackend}). */
export function sqliteStore(dir: string, options: SqliteBackendOptions = {}): RelayStore {
  return backendStore(sqliteBackend(dir, options), 'sqlite')
}
