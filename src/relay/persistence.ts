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
 * anyone who can reach the relay).
 *
 * Quotas count a room by its *merged size*: what a merge would store. Stored rows overstate it
 * between merges (an update's deletions only shrink storage when merged), so each room keeps an
 * estimate, updated per update without touching the rest of the room — plus the update's bytes,
 * minus the live content its deletions remove (`room-size.ts`) — and set exactly at every merge.
 * The estimate never undercounts (deleted items' own ids are not subtracted); when it reaches a
 * quota, the connection merges the room for an exact figure, but only once at least an eighth of
 * the room was appended since the last merge — so merge work stays proportional to bytes written.
 *
 * @module
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { requireOptional } from '../adapters/optional-module.js'
import { ClosedError } from '../errors.js'

/** A revocation the relay verified, as it keeps it: the statement and the key it verifies under. */
export interface StoredRevocation {
  accountId: string
  deviceId: string
  /** The account root public key the statement was verified with. */
  rootPublicKey: Uint8Array
  /** The root-signed revocation statement (WIRE.md "Signed statements"). */
  statement: Uint8Array
}

/** Raw storage of per-room update rows and verified revocations. Two implementations: SQLite and memory. */
export interface RelayStorageBackend {
  /** Per-room row count and byte size, read once at start for the quotas. */
  summary(): Iterable<{ roomId: string; rows: number; bytes: number }>
  /** Every stored update of a room, oldest first. */
  load(roomId: string): Uint8Array[]
  /** Append one update row. */
  append(roomId: string, update: Uint8Array): void
  /** Atomically replace every row of a room by `state`, or delete the room when `state` is null. */
  replace(roomId: string, state: Uint8Array | null): void
  /** Every stored revocation (read once at start). */
  revocations(): Iterable<StoredRevocation>
  /** Keep a verified revocation durably (committed before it returns); one per account and device. */
  saveRevocation(revocation: StoredRevocation): void
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
  `)
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
  const replaceTx = db.transaction((roomId: string, state: Uint8Array | null) => {
    deleteStmt.run(roomId)
    if (state) insertStmt.run(roomId, state)
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
    replace: (roomId, state) => {
      commitPending()
      replaceTx(roomId, state)
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
  return {
    summary: () =>
      [...rooms].map(([roomId, rows]) => ({ roomId, rows: rows.length, bytes: rows.reduce((n, r) => n + r.length, 0) })),
    load: (roomId) => [...(rooms.get(roomId) ?? [])],
    append(roomId, update) {
      let rows = rooms.get(roomId)
      if (!rows) rooms.set(roomId, (rows = []))
      rows.push(update.slice())
    },
    replace(roomId, state) {
      if (state) rooms.set(roomId, [state.slice()])
      else rooms.delete(roomId)
    },
    revocations: () => [...revoked.values()],
    saveRevocation(revocation) {
      const key = `${revocation.accountId}/${revocation.deviceId}`
      if (!revoked.has(key)) {
        revoked.set(key, { ...revocation, rootPublicKey: revocation.rootPublicKey.slice(), statement: revocation.statement.slice() })
      }
    },
    checkpoint() {},
    close() {
      rooms.clear()
    },
  }
}

/** The account a room counts against: the room id's prefix before the first `.`. */
export function accountOfRoom(roomId: string): string {
  const dot = roomId.indexOf('.')
  return dot > 0 ? roomId.slice(0, dot) : 'anonymous'
}

interface RoomUsage {
  rows: number
  /** Bytes of the stored rows. */
  bytes: number
  /** Estimated merged size (see the module comment). */
  size: number
  /** `bytes` right after the last merge (or at start): what was appended since is `bytes - base`. */
  base: number
}

/**
 * A storage backend plus the accounting the quotas need: rows and bytes per room, bytes and
 * rooms per account. Rooms count against their account while they hold stored bytes or are open.
 */
export class RelayStorage {
  private readonly usage = new Map<string, RoomUsage>()
  private readonly accountBytes = new Map<string, number>()
  private readonly accountSize = new Map<string, number>()
  private readonly accountRooms = new Map<string, Set<string>>()
  private readonly open = new Set<string>()
  private total = 0
  private totalEstimate = 0
  private rooms = 0

  constructor(readonly backend: RelayStorageBackend) {
    for (const { roomId, rows, bytes } of backend.summary()) {
      this.usage.set(roomId, { rows, bytes, size: bytes, base: bytes })
      this.addRoom(roomId)
      this.addBytes(roomId, bytes)
      this.addSize(roomId, bytes)
    }
    for (const revocation of backend.revocations()) this.countRevocation(revocation)
  }

  /** Stored updates of a room, oldest first. */
  load(roomId: string): Uint8Array[] {
    return this.backend.load(roomId)
  }

  /** Append an update row. */
  append(roomId: string, update: Uint8Array): void {
    this.backend.append(roomId, update)
    const u = this.roomUsage(roomId)
    u.rows += 1
    u.bytes += update.length
    u.size += update.length
    this.addRoom(roomId)
    this.addBytes(roomId, update.length)
    this.addSize(roomId, update.length)
  }

  /**
   * Lower a room's estimated merged size by `freed` bytes of content its latest update deleted
   * (they leave storage at the next merge). Never below zero.
   */
  shrink(roomId: string, freed: number): void {
    const u = this.usage.get(roomId)
    if (!u || freed <= 0) return
    const delta = Math.min(u.size, freed)
    u.size -= delta
    this.addSize(roomId, -delta)
  }

  /** Replace a room's rows by its merged state (or remove it when `state` is null). */
  replace(roomId: string, state: Uint8Array | null): void {
    this.backend.replace(roomId, state)
    const before = this.usage.get(roomId)
    const after = state?.length ?? 0
    if (state) this.usage.set(roomId, { rows: 1, bytes: after, size: after, base: after })
    else this.usage.delete(roomId)
    this.addBytes(roomId, after - (before?.bytes ?? 0))
    this.addSize(roomId, after - (before?.size ?? 0))
    if (!state && !this.open.has(roomId)) this.removeRoom(roomId)
  }

  /** Mark a room open (it counts against the room quota even before it stores anything). */
  markOpen(roomId: string): void {
    this.open.add(roomId)
    this.addRoom(roomId)
  }

  /** Mark a room closed; it stops counting when it stores nothing. */
  markClosed(roomId: string): void {
    this.open.delete(roomId)
    if (!this.usage.has(roomId)) this.removeRoom(roomId)
  }

  /** True when the room has stored rows or is open. */
  hasRoom(roomId: string): boolean {
    return this.usage.has(roomId) || this.open.has(roomId)
  }

  /** Ids of every room with stored rows. */
  storedRoomIds(): string[] {
    return [...this.usage.keys()]
  }

  /** Rows stored for a room. */
  rows(roomId: string): number {
    return this.usage.get(roomId)?.rows ?? 0
  }

  /** Bytes stored for a room. */
  roomBytes(roomId: string): number {
    return this.usage.get(roomId)?.bytes ?? 0
  }

  /** Bytes stored for an account (rows, before merging). */
  bytesOfAccount(accountId: string): number {
    return this.accountBytes.get(accountId) ?? 0
  }

  /** Estimated merged size of a room: what quotas count. */
  roomSize(roomId: string): number {
    return this.usage.get(roomId)?.size ?? 0
  }

  /** Bytes appended to a room since its last merge. */
  appendedSinceMerge(roomId: string): number {
    const u = this.usage.get(roomId)
    return u ? u.bytes - u.base : 0
  }

  /** Estimated merged size of an account's rooms. */
  sizeOfAccount(accountId: string): number {
    return this.accountSize.get(accountId) ?? 0
  }

  /** Estimated merged size over all accounts. */
  get totalSize(): number {
    return this.totalEstimate
  }

  /** Rooms (stored or open) over all accounts. */
  get roomCount(): number {
    return this.rooms
  }

  /** Every revocation kept (see {@link RelayStorageBackend.revocations}). */
  revocations(): Iterable<StoredRevocation> {
    return this.backend.revocations()
  }

  /**
   * Keep a verified revocation (see {@link RelayStorageBackend.saveRevocation}). Its bytes count
   * against its account's stored bytes — an account could otherwise publish and delete
   * revocations of made-up devices to grow the relay's store without bound — but it is always
   * kept: it arrived with an update the quota already admitted. Call once per account and device.
   */
  saveRevocation(revocation: StoredRevocation): void {
    this.backend.saveRevocation(revocation)
    this.countRevocation(revocation)
  }

  /** Rooms (stored or open) of an account. */
  roomsOfAccount(accountId: string): number {
    return this.accountRooms.get(accountId)?.size ?? 0
  }

  /** Bytes stored over all accounts. */
  get totalBytes(): number {
    return this.total
  }

  /** See {@link RelayStorageBackend.checkpoint}. */
  checkpoint(): void {
    this.backend.checkpoint()
  }

  /** See {@link RelayStorageBackend.close}. */
  close(): void {
    this.backend.close()
  }

  private roomUsage(roomId: string): RoomUsage {
    let u = this.usage.get(roomId)
    if (!u) this.usage.set(roomId, (u = { rows: 0, bytes: 0, size: 0, base: 0 }))
    return u
  }

  private addSize(roomId: string, delta: number): void {
    this.addAccountSize(accountOfRoom(roomId), delta)
  }

  private addAccountSize(account: string, delta: number): void {
    this.accountSize.set(account, (this.accountSize.get(account) ?? 0) + delta)
    this.totalEstimate += delta
  }

  private countRevocation({ accountId, deviceId, rootPublicKey, statement }: StoredRevocation): void {
    const bytes = accountId.length + deviceId.length + rootPublicKey.length + statement.length
    this.addAccountSize(accountId, bytes)
    this.accountBytes.set(accountId, (this.accountBytes.get(accountId) ?? 0) + bytes)
    this.total += bytes
  }

  private addBytes(roomId: string, delta: number): void {
    const account = accountOfRoom(roomId)
    this.accountBytes.set(account, (this.accountBytes.get(account) ?? 0) + delta)
    this.total += delta
  }

  private addRoom(roomId: string): void {
    const account = accountOfRoom(roomId)
    let set = this.accountRooms.get(account)
    if (!set) this.accountRooms.set(account, (set = new Set()))
    if (set.has(roomId)) return
    set.add(roomId)
    this.rooms += 1
  }

  private removeRoom(roomId: string): void {
    const account = accountOfRoom(roomId)
    const set = this.accountRooms.get(account)
    if (set?.delete(roomId)) this.rooms -= 1
    if (set?.size === 0) this.accountRooms.delete(account)
  }
}
