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
 * - `totals (rooms)` — rooms with rows over every account; `batches (id, seqs, at)` — the answer
 *   to each recent append batch, by its id (schema version 3).
 *
 * Writes run as single statements calling functions the migration installs, so each is one
 * transaction and one round trip:
 * - `append_batch` (every append; a room's queued updates go together, group commit) first
 *   claims the batch's id in `batches` — a retry of a batch that committed finds it and returns
 *   its first answer — then locks the account's row, locks the room's row (`FOR UPDATE`) and, per
 *   update in order, checks the account quota (and, for a room's first row, the room caps: rooms
 *   with rows of the account, and `totals`), takes the next seq; the rows go in with one INSERT.
 *   The room's lock is held until commit, so rows of a room commit in seq order: a reader that
 *   sees seq n sees every seq below it.
 * - `compact` takes `pg_try_advisory_xact_lock` on the room (another node compacting it makes it
 *   answer `busy` at once), then replaces the rows with `seq <= through` by one merged row.
 * - `save_pass` locks the account's row, keeps the pass only when it is newer than the kept one
 *   and moves the account's size by the difference of their bytes.
 * Locks are always taken account first, room second, `totals` last, so writers never deadlock.
 *
 * A write that loses its connection is retried on a fresh one (a few times, with backoff), then
 * rejected: the relay never forwards an update the store did not confirm. A retry after a commit
 * whose reply was lost is answered from `batches`, so it neither stores the updates again nor
 * counts them twice against the account's quota.
 *
 * PostgreSQL has no `secure_delete`: rows a compaction deleted stay in the table's pages until
 * VACUUM reuses them, and in the WAL and backups for as long as those are kept. They hold only
 * ciphertext (THREAT_MODEL.md, the relay's store).
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { Pool, PoolClient, PoolConfig } from 'pg'
import { requireOptional } from '../adapters/optional-module.js'
import { ClosedError, ConfigError } from '../errors.js'
import {
  accountOfRoom,
  passBytes,
  revocationBytes,
  type AppendEntry,
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
export const POSTGRES_SCHEMA_VERSION = 3

/** How long (ms) a committed batch's id is kept for recognizing a retry of it. */
const BATCH_ID_KEPT_MS = 10 * 60_000

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
    // 3: group commit (append_batch), retried writes recognized (batches), room caps over every
    // node (rooms with rows counted per account through rooms_account, in total in totals).
    `
    CREATE INDEX rooms_account ON ${s}.rooms (account) WHERE rows > 0;
    CREATE TABLE ${s}.totals (one boolean PRIMARY KEY DEFAULT true CHECK (one), rooms bigint NOT NULL);
    INSERT INTO ${s}.totals (rooms) SELECT count(*) FROM ${s}.rooms WHERE rows > 0;
    CREATE TABLE ${s}.batches (id bytea PRIMARY KEY, seqs bigint[] NOT NULL, at bigint NOT NULL);
    CREATE INDEX batches_at ON ${s}.batches (at);

    CREATE FUNCTION ${s}.append_batch(
      p_id bytea, p_room text, p_account text, p_data bytea[], p_growth bigint[],
      p_max bigint, p_max_rooms bigint, p_max_total bigint, p_now bigint
    ) RETURNS bigint[] LANGUAGE plpgsql AS $fn$
    DECLARE
      a_size bigint; r_head bigint; r_size bigint; r_rows integer; n_size bigint; c bigint;
      n integer := COALESCE(array_length(p_data, 1), 0); i integer; written integer := 0;
      v_seqs bigint[] := '{}'; refused bigint := 0; added bigint := 0;
    BEGIN
      -- A retry of a batch whose commit went through (its reply was lost) gets the first answer.
      -- The key is taken first: a retry racing a still-running first attempt waits for it here.
      INSERT INTO ${s}.batches (id, seqs, at) VALUES (p_id, '{}', p_now) ON CONFLICT (id) DO NOTHING;
      IF NOT FOUND THEN
        RETURN (SELECT b.seqs FROM ${s}.batches b WHERE b.id = p_id);
      END IF;
      INSERT INTO ${s}.accounts (account) VALUES (p_account) ON CONFLICT (account) DO NOTHING;
      SELECT size INTO a_size FROM ${s}.accounts WHERE account = p_account FOR UPDATE;
      INSERT INTO ${s}.rooms (room, account) VALUES (p_room, p_account) ON CONFLICT (room) DO NOTHING;
      SELECT head, size, rows INTO r_head, r_size, r_rows FROM ${s}.rooms WHERE room = p_room FOR UPDATE;
      n_size := r_size;
      FOR i IN 1..n LOOP
        IF p_max IS NOT NULL AND p_growth[i] > 0 AND a_size + n_size - r_size + p_growth[i] > p_max THEN
          refused := -1; EXIT;
        END IF;
        IF r_rows = 0 AND written = 0 THEN
          IF p_max_rooms IS NOT NULL THEN
            SELECT count(*) INTO c FROM ${s}.rooms WHERE account = p_account AND rows > 0;
            IF c >= p_max_rooms THEN refused := -2; EXIT; END IF;
          END IF;
          SELECT rooms INTO c FROM ${s}.totals FOR UPDATE;
          IF p_max_total IS NOT NULL AND c >= p_max_total THEN refused := -3; EXIT; END IF;
          added := 1;
        END IF;
        n_size := GREATEST(0, n_size + p_growth[i]);
        written := written + 1;
        v_seqs := v_seqs || (r_head + written);
      END LOOP;
      IF written > 0 THEN
        INSERT INTO ${s}.updates (room, seq, data)
          SELECT p_room, r_head + k, p_data[k] FROM generate_series(1, written) AS k;
        UPDATE ${s}.rooms SET head = r_head + written, rows = rows + written,
          bytes = bytes + (SELECT sum(length(p_data[k])) FROM generate_series(1, written) AS k), size = n_size
          WHERE room = p_room;
        UPDATE ${s}.accounts SET size = a_size + n_size - r_size WHERE account = p_account;
        IF added > 0 THEN UPDATE ${s}.totals SET rooms = rooms + 1; END IF;
      END IF;
      IF written < n THEN v_seqs := v_seqs || array_fill(refused, ARRAY[n - written]); END IF;
      UPDATE ${s}.batches SET seqs = v_seqs WHERE id = p_id;
      RETURN v_seqs;
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

  const appendBatch = async (roomId: string, entries: readonly AppendEntry[]): Promise<AppendResult[]> => {
    if (entries.length === 0) return []
    // One id per batch, kept across the retries of it: a retry after a commit whose reply was
    // lost finds it in `batches` and gets the first answer instead of writing again.
    const id = randomBytes(16)
    const quota = entries[0]!.quota
    const { rows } = await query<{ seqs: string[] }>(`SELECT ${s}.append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9) AS seqs`, [
      id,
      roomId,
      accountOfRoom(roomId),
      entries.map(({ update }) => Buffer.from(update.buffer, update.byteOffset, update.byteLength)),
      entries.map(({ update, quota }) => quota?.growth ?? update.length),
      quota?.maxAccountSize ?? null,
      quota?.maxRoomsPerAccount ?? null,
      quota?.maxRooms ?? null,
      Date.now(),
    ])
    return rows[0]!.seqs.map((text): AppendResult => {
      const seq = Number(text)
      if (seq > 0) return { ok: true, seq }
      return { ok: false, reason: seq === -1 ? 'quota' : seq === -2 ? 'roomsPerAccount' : 'rooms' }
    })
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
      return (await appendBatch(roomId, [{ update, ...(quota && { quota }) }]))[0]!
    },
    appendBatch,
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
          const { rows } = await client.query<{ size: string; rows: number }>(`SELECT size, rows FROM ${s}.rooms WHERE room = $1 FOR UPDATE`, [roomId])
          if ((rows[0]?.rows ?? 0) > 0) await client.query(`UPDATE ${s}.totals SET rooms = GREATEST(0, rooms - 1)`)
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
    async usage() {
      const { rows } = await query<{ rooms: string; size: string }>(
        `SELECT (SELECT rooms FROM ${s}.totals) AS rooms, (SELECT COALESCE(sum(size), 0) FROM ${s}.accounts) AS size`,
      )
      return { rooms: Number(rows[0]?.rooms ?? 0), size: Number(rows[0]?.size ?? 0) }
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
      const now = Date.now()
      await query(`DELETE FROM ${s}.nonces WHERE keep_until <= $1`, [now])
      // A batch's id only has to outlive the retries of it (seconds).
      await query(`DELETE FROM ${s}.batches WHERE at < $1`, [now - BATCH_ID_KEPT_MS])
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
