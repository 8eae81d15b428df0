/**
 * The relay's storage interface (ARCHITECTURE.md, relay storage): what a relay node needs from
 * the place it keeps rooms, revocations and spent token nonces. Three implementations: memory and
 * SQLite (`persistence.ts`, one relay process) and PostgreSQL (`postgres-store.ts`, any number of
 * relay nodes sharing one database). Every implementation runs the shared suite in
 * `store-conformance.ts`.
 *
 * What each implementation must make atomic:
 * - **Dense per-room sequence numbers.** Every appended update gets the room's next `seq`
 *   (1, 2, 3, … with no hole), taken so that two writers — two nodes — never get the same one and
 *   a reader that sees `seq` n committed has every `seq` below n committed too.
 * - **Append and quota in one step.** The update row and the account's counted bytes change
 *   together; an append that would take the account past `maxAccountSize` writes nothing. So do
 *   the room caps: the append that gives a room its first row is refused when the account (or
 *   the store) already holds as many rooms with rows as the quota allows.
 * - **Group commit.** `appendBatch` writes a room's queued updates in one step under consecutive
 *   seqs; each is refused or stored, in order, and nothing after the first refused one is written.
 * - **A retried write is not written twice.** A write retried after its connection was lost (its
 *   commit may have gone through) is recognized and answered with its first result.
 * - **Compaction replaces what it covers.** `compact(room, through, merged)` deletes every row
 *   with `seq <= through` and writes `merged` as one row with `seq = through`, in one step; rows
 *   above `through` are untouched. Two compactions of one room never interleave: one of them
 *   reports `busy` (or `stale` when another already covered its rows).
 * - **Revocations** are durable once `saveRevocation` resolves, one per account and device.
 * - **Newest relay passes**: `savePass` keeps one pass per account and device and replaces it
 *   only by one issued later, in one step (two nodes saving passes of one device at once keep the
 *   newer), durable once it resolves.
 * - **Spent token nonces**: `claimNonce` succeeds for exactly one caller until the nonce's
 *   keep-until time passes, across every node sharing the store.
 *
 * Everything stored is ciphertext or public statements; no implementation can read a room.
 *
 * @module
 */

/** A revocation the relay verified, as it keeps it: the statement and the key it verifies under. */
export interface StoredRevocation {
  accountId: string
  deviceId: string
  /** The account root public key the statement was verified with. */
  rootPublicKey: Uint8Array
  /** The root-signed revocation statement (WIRE.md "Signed statements"). */
  statement: Uint8Array
}

/**
 * The newest relay pass the relay verified for a device, as it keeps it: the relay refuses every
 * older pass of that device even after the registry room's `pass/<id>` was deleted or the relay
 * restarted (THREAT_MODEL.md, a device whose temporary access ended).
 */
export interface StoredPass {
  accountId: string
  deviceId: string
  /** The pass's `issuedAt` (ms): what "newer" compares. */
  issuedAt: number
  /** The account root public key the statement was verified with. */
  rootPublicKey: Uint8Array
  /** The root-signed relay pass (WIRE.md "Signed statements"). */
  statement: Uint8Array
}

/** Result of {@link RelayStore.savePass}. */
export type SavePassResult =
  /** The pass replaced an older one (or was the first): the account's counted size changed by `growth`. */
  | { kept: true; growth: number }
  /** A pass issued at the same time or later is already kept; nothing changed. */
  | { kept: false }

/** One stored row of a room. */
export interface StoredUpdate {
  /** The room's sequence number of this row (a merged row carries the highest seq it covers). */
  readonly seq: number
  /** A Yjs update of the room's sealed log (ciphertext the relay cannot read). */
  readonly data: Uint8Array
}

/** What {@link RelayStore.summary} reports per stored room. */
export interface StoredRoomSummary {
  roomId: string
  /** Rows stored. */
  rows: number
  /** Bytes of the stored rows. */
  bytes: number
  /** The room's highest seq so far (0 when nothing was ever appended). */
  head: number
}

/** The quota an append is checked against, atomically with the write. */
export interface AppendQuota {
  /**
   * How much the append grows the account's counted size: the update's bytes minus the live
   * content its deletions remove (README "The relay", storage quotas). May be negative.
   */
  growth: number
  /** Refuse the append when `growth > 0` and the account's counted size would pass this. */
  maxAccountSize: number
  /**
   * Refuse the append that gives a room its first row when the account already has this many
   * rooms with rows (`roomsPerAccount`). Unset: not checked.
   */
  maxRoomsPerAccount?: number
  /** Like `maxRoomsPerAccount`, over every account in the store (`rooms`). Unset: not checked. */
  maxRooms?: number
}

/**
 * Result of {@link RelayStore.append}: the seq, or which quota refused it — `quota` the account's
 * stored bytes, `roomsPerAccount` / `rooms` the room caps (see {@link AppendQuota}).
 */
export type AppendResult = { ok: true; seq: number } | { ok: false; reason: 'quota' | 'roomsPerAccount' | 'rooms' }

/** One update of {@link RelayStore.appendBatch}. */
export interface AppendEntry {
  readonly update: Uint8Array
  readonly quota?: AppendQuota
}

/** Figures over everything in the store (every node's rooms), for the relay-wide caps. */
export interface StoreUsage {
  /** Rooms with stored rows. */
  rooms: number
  /** Summed counted size of every account (see {@link RelayStore.accountSize}). */
  size: number
}

/** Result of {@link RelayStore.compact}. */
export type CompactResult =
  /** The merged row replaced `rows` rows (`bytes` of them). */
  | { status: 'merged'; rows: number; bytes: number }
  /** Another writer holds the room's compaction lock; nothing changed. */
  | { status: 'busy' }
  /** At most one row is at or below `through` (nothing to merge, or merged already); nothing changed. */
  | { status: 'stale' }

/** A spent token nonce and the time (ms) it may be forgotten. */
export interface SpentNonce {
  nonce: string
  keepUntil: number
}

/** Where a relay node keeps its rooms. Every method may reject (I/O, connection loss). */
export interface RelayStore {
  /** `memory`, `sqlite`, `postgres` (logs, health). */
  readonly kind: string
  /**
   * True when other relay nodes may write the same store at once (PostgreSQL). The relay then
   * takes quota decisions from the store and spent nonces from {@link claimNonce} at every upgrade.
   */
  readonly shared: boolean
  /** Every stored room with its row count, bytes and head seq. */
  summary(): Promise<StoredRoomSummary[]>
  /**
   * The head seq of each of `roomIds` that the store knows (rooms never appended to are left out):
   * one round trip for a node comparing all its open rooms with the store.
   */
  heads(roomIds: readonly string[]): Promise<Map<string, number>>
  /** Rows of a room with `seq > afterSeq` (default 0: all), in seq order. */
  load(roomId: string, afterSeq?: number): Promise<StoredUpdate[]>
  /**
   * Append one update under the room's next seq, adding its bytes to the account (the room id's
   * prefix before the first `.`) in the same step; refused, writing nothing, when `quota` says so.
   * Resolves once the row is durable. A row whose append rejected may or may not be stored (a
   * connection lost after the commit was sent): Yjs updates are idempotent, so a retry is safe.
   */
  append(roomId: string, update: Uint8Array, quota?: AppendQuota): Promise<AppendResult>
  /**
   * Append several updates of one room in one step (one transaction, one commit): `entries[i]`
   * gets the seq after `entries[i - 1]`'s, each checked against its quota as if appended alone, in
   * order (the entries of one room share their quota's limits; each has its own growth). The
   * first refused entry and every one after it are refused (same reason) and not written. Resolves once every written row is durable; a rejection may follow a commit, and the
   * store's own retry of it is recognized (see the module comment).
   */
  appendBatch(roomId: string, entries: readonly AppendEntry[]): Promise<AppendResult[]>
  /** Replace every row with `seq <= through` by `merged` (see the module comment). */
  compact(roomId: string, through: number, merged: Uint8Array): Promise<CompactResult>
  /** Delete a room's rows (a pairing rendezvous room once it is done). */
  remove(roomId: string): Promise<void>
  /** The account's counted size: estimated merged bytes of its rooms plus its kept revocations and passes. */
  accountSize(accountId: string): Promise<number>
  /** Rooms and counted size over every account (what relay-wide caps compare with). */
  usage(): Promise<StoreUsage>
  /** Every kept revocation. */
  revocations(): Promise<StoredRevocation[]>
  /** Keep a verified revocation (durable once resolved); a second one for the same device is ignored. */
  saveRevocation(revocation: StoredRevocation): Promise<void>
  /** Kept newest passes: of one account, or of every account when `accountId` is left out. */
  passes(accountId?: string): Promise<StoredPass[]>
  /**
   * Keep a verified pass when it was issued later than the one kept for its device (durable once
   * resolved). Its bytes count against its account like a revocation's, replacing the older pass's.
   */
  savePass(pass: StoredPass): Promise<SavePassResult>
  /**
   * Spend a token nonce: true for the first caller, false while an earlier claim is still kept
   * (`keepUntil` in ms, compared with `now`).
   */
  claimNonce(nonce: string, keepUntil: number, now: number): Promise<boolean>
  /** Nonces spent and still kept at `now` (read at start so a restart forgets none). */
  spentNonces(now: number): Promise<SpentNonce[]>
  /** Drop expired nonces and superseded bytes from disk where the engine allows it. */
  checkpoint(): Promise<void>
  /** Resolves when the store answers (health checks); rejects otherwise. */
  ping(): Promise<void>
  /** Flush and release the store. Idempotent. */
  close(): Promise<void>
}

/** The account a room counts against: the room id's prefix before the first `.`. */
export function accountOfRoom(roomId: string): string {
  const dot = roomId.indexOf('.')
  return dot > 0 ? roomId.slice(0, dot) : 'anonymous'
}

/** Bytes a kept pass counts against its account (see {@link RelayStore.accountSize}). */
export function passBytes({ accountId, deviceId, rootPublicKey, statement }: StoredPass): number {
  return accountId.length + deviceId.length + 8 + rootPublicKey.length + statement.length
}

/** Bytes a kept revocation counts against its account (see {@link RelayStore.accountSize}). */
export function revocationBytes({ accountId, deviceId, rootPublicKey, statement }: StoredRevocation): number {
  return accountId.length + deviceId.length + rootPublicKey.length + statement.length
}
