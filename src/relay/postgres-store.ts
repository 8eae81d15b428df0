/**
 * The relay store on PostgreSQL (`pg`): the one source of truth for any number of relay nodes
 * (ARCHITECTURE.md, relay storage; README "Running several relay nodes").
 *
 * Schema (in its own PostgreSQL schema, `contextsync` by default), created and migrated by the
 * relay on start under an advisory lock, so nodes starting together migrate once; the applied
 * version is kept in `schema_version`:
 * - `rooms (room, account, head, rows, bytes, size)` — one row per room: its head seq and counts.
 * - `updates (room, seq, data)` — the stored rows, primary key `(room, seq)`.
 * - `accounts (account, size)` — each account's counted size (the stored-bytes quota).
 * - `revocations (account, device, root, statement)`, `nonces (nonce, keep_until)`.
 * - `passes (account, device, issued_at, root, statement, bytes)` — the newest relay pass of each
 *   device (schema version 2; a version 1 database gains the table on start).
 *
 * Writes run as single statements calling functions the migration installs, so each is one
 * transaction and one round trip:
 * - `append` locks the account's row, checks the quota, then locks the room's row (`FOR UPDATE`),
 *   takes `head + 1` as the seq and inserts the update. The room's lock is held until commit, so
 *   rows of a room commit in seq order: a reader that sees seq n sees every seq below it.
 * - `compact` takes `pg_try_advisory_xact_lock` on the room (another node compacting it makes it
 *   answer `busy` at once), then replaces the rows with `seq <= through` by one merged row.
 * - `save_pass` locks the account's row, keeps the pass only when it is newer than the kept one
 *   and moves the account's size by the difference of their bytes.
 * Locks are always taken account first, room second, so writers never deadlock.
 *
 * A write that loses its connection is retried on a fresh one (a few times, with backoff), then
 * rejected: the relay never forwards an update the store did not confirm. A retry after a commit
 * whose reply was lost stores the update twice, under two seqs — harmless, Yjs updates are
 * idempotent, and the next compaction folds them.
 *
 * PostgreSQL has no `secure_delete`: rows a compaction deleted stay in the table's pages until
 * VACUUM reuses them, and in the WAL and backups for as long as those are kept. They hold only
 * ciphertext (THREAT_MODEL.md, the relay's store).
 *
 * @module
 */
import type { Pool, PoolClient, PoolConfig } from 'pg'
import { requireOptional } from '../adapters/optional-module.js'
import { ClosedError, ConfigError } from '../errors.js'
import {
  accountOfRoom,
  passBytes,
  revocationBytes,
  type AppendResult,
  type CompactResult,
  type RelayStore,
  type SavePassResult,
  type StoredPass,
  type StoredRevocation,
  type StoredRoomSummary,
  type StoredUpdate,
} from './store.js'

/** Options of {@link postgresStore}. */
export interface PostgresStoreOptions {
  /** PostgreSQL schema holding the relay's tables; default `contextsync`. Lowercase letters, digits, `_`. */
  schema?: string
  /** Connections in the pool; default 10. */
  maxConnections?: number
  /** Attempts of a write or read that lost its connection; default 4. */
  attempts?: number
  /** Extra `pg` pool settings (TLS, timeouts). */
  pool?: PoolConfig
  /** Told about errors of idle pooled connections (the pool replaces them). */
  onError?: (error: unknown) => void
  /** Told about each retry of a statement that lost its connection (`attempt` is the one that failed). */
  onRetry?: (error: unknown, attempt: number) => void
}

/** Schema version this code writes; older schemas are migrated on start. */
export const POSTGRES_SCHEMA_VERSION = 2

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/

/** Advisory lock key (first half) under which nodes migrate the schema one at a time. */
const MIGRATION_LOCK = 0x63737931

/** Migrations, each taking the schema from version `i` to `i + 1`. */
function migrations(s: string): string[] {
  return [
    `
    CREATE TABLE ${s}.accounts (account text PRIMARY KEY, size bigint NOT NULL DEFAULT 0);
    CREATE TABLE ${s}.rooms (
      room text PRIMARY KEY,
      account text NOT NULL,
      head bigint NOT NULL DEFAULT 0,
      rows integer NOT NULL DEFAULT 0,
      bytes bigint NOT NULL DEFAULT 0,
      size bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE ${s}.updates (room text NOT NULL, seq bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY (room, seq));
    CREATE TABLE ${s}.revocations (
      account text NOT NULL, device text NOT NULL, root bytea NOT NULL, statement bytea NOT NULL,
      PRIMARY KEY (account, device)
    );
    CREATE TABLE ${s}.nonces (nonce text PRIMARY KEY, keep_until bigint NOT NULL);

    CREATE FUNCTION ${s}.append(p_room text, p_account text, p_data bytea, p_growth bigint, p_max bigint)
    RETURNS bigint LANGUAGE plpgsql AS $fn$
    DECLARE a_size bigint; r_head bigint; r_size bigint; n_size bigint;
    BEGIN
      INSERT INTO ${s}.accounts (account) VALUES (p_account) ON CONFLICT (account) DO NOTHING;
      SELECT size INTO a_size FROM ${s}.accounts WHERE account = p_account FOR UPDATE;
      IF p_max IS NOT NULL AND p_growth > 0 AND a_size + p_growth > p_max THEN
        RETURN -1;
      END IF;
      INSERT INTO ${s}.rooms (room, account) VALUES (p_room, p_account) ON CONFLICT (room) DO NOTHING;
      SELECT head, size INTO r_head, r_size FROM ${s}.rooms WHERE room = p_room FOR UPDATE;
      n_size := GREATEST(0, r_size + p_growth);
      UPDATE ${s}.rooms SET head = r_head + 1, rows = rows + 1, bytes = bytes + length(p_data), size = n_size WHERE room = p_room;
      INSERT INTO ${s}.updates (room, seq, data) VALUES (p_room, r_head + 1, p_data);
      UPDATE ${s}.accounts SET size = a_size + n_size - r_size WHERE account = p_account;
      RETURN r_head + 1;
    END $fn$;

    CREATE FUNCTION ${s}.compact(p_room text, p_through bigint, p_data bytea)
    RETURNS TABLE (status text, covered integer, covered_bytes bigint) LANGUAGE plpgsql AS $fn$
    DECLARE r_account text; r_size bigint; r_bytes bigint; c integer; b bigint; n_bytes bigint;
    BEGIN
      IF NOT pg_try_advisory_xact_lock(hashtext('contextsync.compact'), hashtext(p_room)) THEN
        RETURN QUERY SELECT 'busy'::text, 0, 0::bigint; RETURN;
      END IF;
      SELECT account INTO r_account FROM ${s}.rooms WHERE room = p_room;
      IF r_account IS NULL THEN
        RETURN QUERY SELECT 'stale'::text, 0, 0::bigint; RETURN;
      END IF;
      PERFORM 1 FROM ${s}.accounts WHERE account = r_account FOR UPDATE;
      SELECT size, bytes INTO r_size, r_bytes FROM ${s}.rooms WHERE room = p_room FOR UPDATE;
      SELECT count(*), COALESCE(sum(length(data)), 0) INTO c, b FROM ${s}.updates WHERE room = p_room AND seq <= p_through;
      IF c <= 1 THEN
        RETURN QUERY SELECT 'stale'::text, 0, 0::bigint; RETURN;
      END IF;
      DELETE FROM ${s}.updates WHERE room = p_room AND seq <= p_through;
      INSERT INTO ${s}.updates (room, seq, data) VALUES (p_room, p_through, p_data);
      n_bytes := r_bytes - b + length(p_data);
      UPDATE ${s}.rooms SET rows = rows - c + 1, bytes = n_bytes, size = n_bytes WHERE room = p_room;
      UPDATE ${s}.accounts SET size = GREATEST(0, size + n_bytes - r_size) WHERE account = r_account;
      RETURN QUERY SELECT 'merged'::text, c, b;
    END $fn$;
    `,
    `
    CREATE TABLE ${s}.passes (
      account text NOT NULL, device text NOT NULL, issued_at bigint NOT NULL, root bytea NOT NULL,
      statement bytea NOT NULL, bytes bigint NOT NULL,
      PRIMARY KEY (account, device)
    );

    CREATE FUNCTION ${s}.save_pass(p_account text, p_device text, p_issued bigint, p_root bytea, p_statement bytea, p_bytes bigint)
    RETURNS bigint LANGUAGE plpgsql AS $fn$
    DECLARE k_issued bigint; k_bytes bigint;
    BEGIN
      INSERT INTO ${s}.accounts (account) VALUES (p_account) ON CONFLICT (account) DO NOTHING;
      PERFORM 1 FROM ${s}.accounts WHERE account = p_account FOR UPDATE;
      SELECT issued_at, bytes INTO k_issued, k_bytes FROM ${s}.passes WHERE account = p_account AND device = p_device;
      IF k_issued IS NOT NULL AND k_issued >= p_issued THEN
        RETURN NULL;
      END IF;
      INSERT INTO ${s}.passes (account, device, issued_at, root, statement, bytes) VALUES (p_account, p_device, p_issued, p_root, p_statement, p_bytes)
      ON CONFLICT (account, device) DO UPDATE SET issued_at = EXCLUDED.issued_at, root = EXCLUDED.root, statement = EXCLUDED.statement, bytes = EXCLUDED.bytes;
      UPDATE ${s}.accounts SET size = size + p_bytes - COALESCE(k_bytes, 0) WHERE account = p_account;
      RETURN p_bytes - COALESCE(k_bytes, 0);
    END $fn$;
    `,
  ]
}

/** Connection-level failures worth a retry on a fresh connection (not SQL errors). */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string') {
    // 08xxx connection exceptions, 57P01-57P03 admin shutdown / crash shutdown / cannot connect now.
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true
    if (['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(code)) return true
  }
  const message = error instanceof Error ? error.message : ''
  return /Connection terminated|connection ended|Client has encountered a connection error/i.test(message)
}

const toBytes = (data: Buffer): Uint8Array => new Uint8Array(data.buffer, data.byteOffset, data.byteLength)

/**
 * A {@link RelayStore} on PostgreSQL at `url` (`postgres://user@host:port/db`). Creates or
 * migrates its schema before resolving. Several relay nodes may share it (`shared: true`).
 *
 * @example
 * ```ts
 * import { createRelay, postgresStore } from 'contextsync/relay'
 * const relay = await createRelay({ store: await postgresStore(process.env.DATABASE_URL!) })
 * ```
 */
export async function postgresStore(url: string, options: PostgresStoreOptions = {}): Promise<RelayStore> {
  const schema = options.schema ?? 'contextsync'
  if (!SCHEMA_PATTERN.test(schema)) throw new ConfigError(`invalid PostgreSQL schema name for the relay: ${JSON.stringify(schema)}`)
  const pg = requireOptional<{ Pool: typeof Pool }>('pg', 'the relay on PostgreSQL')
  const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10, ...options.pool })
  // An idle client whose backend died emits 'error' on the pool; unhandled it would end the process.
  pool.on('error', (error) => options.onError?.(error))
  const attempts = options.attempts ?? 4
  const s = schema
  let closed = false

  const withRetry = async <T>(work: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      if (closed) throw new ClosedError('relay storage is closed')
      try {
        return await work()
      } catch (error) {
        if (attempt >= attempts || !isConnectionError(error)) throw error
        options.onRetry?.(error, attempt)
        await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt))
      }
    }
  }
  const query = <R extends object>(text: string, values: unknown[] = []) => withRetry(() => pool.query<R>(text, values))

  const migrate = async (client: PoolClient): Promise<void> => {
    await client.query('BEGIN')
    try {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATION_LOCK, schema])
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_version (version integer NOT NULL)`)
      const found = await client.query<{ version: number }>(`SELECT version FROM ${s}.schema_version`)
      let version = found.rows[0]?.version ?? 0
      if (version > POSTGRES_SCHEMA_VERSION) {
        throw new ConfigError(`the relay's PostgreSQL schema ${schema} is at version ${version}, newer than this relay (${POSTGRES_SCHEMA_VERSION}): upgrade the relay`)
      }
      const steps = migrations(s)
      for (; version < POSTGRES_SCHEMA_VERSION; version++) await client.query(steps[version]!)
      await client.query(`DELETE FROM ${s}.schema_version`)
      await client.query(`INSERT INTO ${s}.schema_version (version) VALUES ($1)`, [version])
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    }
  }
  try {
    const client = await pool.connect()
    try {
      await migrate(client)
    } finally {
      client.release()
    }
  } catch (error) {
    await pool.end().catch(() => {})
    throw error
  }

  return {
    kind: 'postgres',
    shared: true,
    async summary() {
      const { rows } = await query<{ room: string; rows: number; bytes: string; head: string }>(
        `SELECT room, rows, bytes, head FROM ${s}.rooms WHERE rows > 0`,
      )
      return rows.map((r): StoredRoomSummary => ({ roomId: r.room, rows: r.rows, bytes: Number(r.bytes), head: Number(r.head) }))
    },
    async heads(roomIds) {
      const { rows } = await query<{ room: string; head: string }>(`SELECT room, head FROM ${s}.rooms WHERE room = ANY($1) AND head > 0`, [[...roomIds]])
      return new Map(rows.map((r) => [r.room, Number(r.head)]))
    },
    async load(roomId, afterSeq = 0) {
      const { rows } = await query<{ seq: string; data: Buffer }>(
        `SELECT seq, data FROM ${s}.updates WHERE room = $1 AND seq > $2 ORDER BY seq`,
        [roomId, afterSeq],
      )
      return rows.map((r): StoredUpdate => ({ seq: Number(r.seq), data: toBytes(r.data) }))
    },
    async append(roomId, update, quota): Promise<AppendResult> {
      const { rows } = await query<{ seq: string }>(`SELECT ${s}.append($1, $2, $3, $4, $5) AS seq`, [
        roomId,
        accountOfRoom(roomId),
        Buffer.from(update.buffer, update.byteOffset, update.byteLength),
        quota?.growth ?? update.length,
        quota?.maxAccountSize ?? null,
      ])
      const seq = Number(rows[0]!.seq)
      return seq < 0 ? { ok: false, reason: 'quota' } : { ok: true, seq }
    },
    async compact(roomId, through, merged): Promise<CompactResult> {
      const { rows } = await query<{ status: string; covered: number; covered_bytes: string }>(`SELECT * FROM ${s}.compact($1, $2, $3)`, [
        roomId,
        through,
        Buffer.from(merged.buffer, merged.byteOffset, merged.byteLength),
      ])
      const row = rows[0]!
      if (row.status === 'merged') return { status: 'merged', rows: row.covered, bytes: Number(row.covered_bytes) }
      return { status: row.status === 'busy' ? 'busy' : 'stale' }
    },
    async remove(roomId) {
      // The room's row (and head) stays, so seqs never repeat for nodes that still hold the room.
      await withRetry(async () => {
        const client = await pool.connect()
        try {
          await client.query('BEGIN')
          const account = accountOfRoom(roomId)
          await client.query(`SELECT 1 FROM ${s}.accounts WHERE account = $1 FOR UPDATE`, [account])
          const { rows } = await client.query<{ size: string }>(`SELECT size FROM ${s}.rooms WHERE room = $1 FOR UPDATE`, [roomId])
          await client.query(`DELETE FROM ${s}.updates WHERE room = $1`, [roomId])
          await client.query(`UPDATE ${s}.rooms SET rows = 0, bytes = 0, size = 0 WHERE room = $1`, [roomId])
          await client.query(`UPDATE ${s}.accounts SET size = GREATEST(0, size - $2) WHERE account = $1`, [account, Number(rows[0]?.size ?? 0)])
          await client.query('COMMIT')
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {})
          throw error
        } finally {
          client.release()
        }
      })
    },
    async accountSize(accountId) {
      const { rows } = await query<{ size: string }>(`SELECT size FROM ${s}.accounts WHERE account = $1`, [accountId])
      return Number(rows[0]?.size ?? 0)
    },
    async revocations() {
      const { rows } = await query<{ account: string; device: string; root: Buffer; statement: Buffer }>(
        `SELECT account, device, root, statement FROM ${s}.revocations`,
      )
      return rows.map(
        (r): StoredRevocation => ({ accountId: r.account, deviceId: r.device, rootPublicKey: new Uint8Array(r.root), statement: new Uint8Array(r.statement) }),
      )
    },
    async saveRevocation(revocation) {
      await query(
        `WITH kept AS (
           INSERT INTO ${s}.revocations (account, device, root, statement) VALUES ($1, $2, $3, $4)
           ON CONFLICT (account, device) DO NOTHING RETURNING account
         )
         INSERT INTO ${s}.accounts (account, size) SELECT account, $5 FROM kept
         ON CONFLICT (account) DO UPDATE SET size = ${s}.accounts.size + EXCLUDED.size`,
        [revocation.accountId, revocation.deviceId, Buffer.from(revocation.rootPublicKey), Buffer.from(revocation.statement), revocationBytes(revocation)],
      )
    },
    async passes(accountId) {
      const { rows } = await query<{ account: string; device: string; issued_at: string; root: Buffer; statement: Buffer }>(
        `SELECT account, device, issued_at, root, statement FROM ${s}.passes${accountId === undefined ? '' : ' WHERE account = $1'}`,
        accountId === undefined ? [] : [accountId],
      )
      return rows.map(
        (r): StoredPass => ({
          accountId: r.account,
          deviceId: r.device,
          issuedAt: Number(r.issued_at),
          rootPublicKey: new Uint8Array(r.root),
          statement: new Uint8Array(r.statement),
        }),
      )
    },
    async savePass(pass): Promise<SavePassResult> {
      const { rows } = await query<{ growth: string | null }>(`SELECT ${s}.save_pass($1, $2, $3, $4, $5, $6) AS growth`, [
        pass.accountId,
        pass.deviceId,
        pass.issuedAt,
        Buffer.from(pass.rootPublicKey),
        Buffer.from(pass.statement),
        passBytes(pass),
      ])
      const growth = rows[0]?.growth
      return growth === null || growth === undefined ? { kept: false } : { kept: true, growth: Number(growth) }
    },
    async claimNonce(nonce, keepUntil, now) {
      const { rowCount } = await query(
        `INSERT INTO ${s}.nonces (nonce, keep_until) VALUES ($1, $2)
         ON CONFLICT (nonce) DO UPDATE SET keep_until = EXCLUDED.keep_until WHERE ${s}.nonces.keep_until <= $3`,
        [nonce, keepUntil, now],
      )
      return rowCount === 1
    },
    async spentNonces(now) {
      const { rows } = await query<{ nonce: string; keep_until: string }>(`SELECT nonce, keep_until FROM ${s}.nonces WHERE keep_until > $1`, [now])
      return rows.map((r) => ({ nonce: r.nonce, keepUntil: Number(r.keep_until) }))
    },
    async checkpoint() {
      await query(`DELETE FROM ${s}.nonces WHERE keep_until <= $1`, [Date.now()])
    },
    async ping() {
      await pool.query('SELECT 1')
    },
    async close() {
      if (closed) return
      closed = true
      await pool.end()
    },
  }
}
