/**
 * What {@link ContextSync} is opened with and what it reports — its options and events — and the
 * checks an app's options pass before anything is opened (bad input is a `ValidationError` or
 * `ConfigError`, README "Errors").
 *
 * @module
 */
import { StorageError, type StorageAdapter } from '../adapters/storage.js'
import type { Transport, TransportStatus } from '../adapters/transport.js'
import { DeviceKeyring } from '../crypto/index.js'
import { ValidationError } from '../errors.js'
import { type CompactionPolicy, type RejectedEvent, type ReplicaOptions } from '../sync/replica.js'
import type { HoldLimits } from '../sync/hold.js'
import { Account } from './account.js'
import { isKeyProtector, type KeyProtector } from '../crypto/key-protector.js'
import { type DeviceKind } from './builtin-scopes.js'
import { type SyncLagEvent } from './sync-monitor.js'
import { requireObject } from './check-args.js'

/** Sync tuning; the defaults suit phones and PCs. */
export interface SyncOptions {
  /** Delay before sealing ordinary writes; 0 (default) seals on the next microtask. */
  flushDelayMs?: number
  /** Sealing window for streamed turns. Default 20 ms. */
  streamFlushDelayMs?: number
  /** When to compact a sealed log. */
  compaction?: Partial<CompactionPolicy>
  /** How often scope retention is enforced while the device runs (ms). Default 60 000. */
  retentionSweepMs?: number
  /**
   * How long a seq a peer announced (in sealed presence) may stay missing before `sync-lag`
   * reports this device as behind — a relay withholding envelopes, or a slow upload. Default 30 000 ms.
   */
  lagTimeoutMs?: number
  /**
   * Bounds of the envelopes a scope holds while their sender is not certified yet — they cannot be
   * authenticated (default 64 envelopes, 16 MiB, 10 min each); past them an envelope is refused
   * with `HoldLimit` (16). Authentic envelopes waiting for a grant or key are held unbounded.
   */
  hold?: Partial<HoldLimits>
  /**
   * How long entries this device applied may stay deleted from a sealed log without a snapshot
   * that contains them before it reports `Erased` (14) and republishes. Default 500 ms.
   */
  repairDelayMs?: number
  /**
   * How long envelopes sealed under a superseded key epoch are still accepted after a new epoch
   * started (a revocation or narrowing), by the starting owner's clock and by this device's since
   * it learned of it — past both, they are refused (code 15): a device kept on an old epoch cannot
   * go on writing under a key a revoked device holds. Envelopes applied before are never affected.
   * Default 600 000 ms (10 min); 0 refuses at once.
   */
  epochGraceMs?: number
}

/** Options of {@link ContextSync.open}. */
export interface OpenOptions {
  /** The account to enrol this device in as an owner (first open only). Later opens read it from storage. */
  account?: Account
  /** What this device is (first open only). */
  device?: { kind: DeviceKind; name?: string }
  /** Where sealed logs and key material live. */
  storage: StorageAdapter
  /** How sealed logs travel. Omit for an offline device. */
  transports?: Transport[]
  sync?: SyncOptions
  /**
   * Wraps the device's key records in the store (README "Keys at rest"): `passphraseKeys(…)`, a
   * platform keystore of the host app, or — asked for by name — `plainKeys()`. Required unless
   * the storage keeps nothing beyond the process (`memoryStorage()`, `durable: false`): a durable
   * store opened without it is refused with a ConfigError. A store holding plain records opened
   * with a real protector is migrated.
   */
  keys?: KeyProtector
  /**
   * The scopes this device agrees to hold (`local` always). A scope an owner grants it beyond
   * these is left unopened — never subscribed, synced or stored — and reported once as
   * `scope-refused`. A head unit shared by several drivers passes its restricted set here.
   * Omitted: whatever the account's policy and grants give it.
   */
  holdOnly?: readonly string[]
}

/** A storage failure; the write stays queued and is retried. */
export interface StorageErrorEvent {
  code: 'storage-error'
  error: StorageError
  scope: string
}

/** Events of {@link ContextSync}. */
export interface ContextSyncEvents {
  /** Untrusted input was refused (bad envelope, forged statement…). Sync carries on. */
  rejected: (event: RejectedEvent) => void
  /** An envelope is held until its sender's certificate, grant or epoch key arrives. */
  held: (event: RejectedEvent) => void
  /** Storing failed; the app keeps working from memory while the write is retried. */
  'storage-error': (event: StorageErrorEvent) => void
  /** A transport's connection state for one scope changed. */
  status: (event: { scope: string; transport: string; status: TransportStatus }) => void
  /**
   * A transport reported a problem with one scope's connection: a refusal by the relay (`code`
   * the close code, e.g. `'4403'`), a frame the relay found too big (`'1009'`, retried with
   * smaller frames), an envelope no frame size gets through (`'envelope-too-big'`, lasting until
   * the relay's limit is raised), an attempt that got no answer (`'connect-timeout'`), a failed
   * token, a malformed update from the server. Sync goes on retrying; the message is for logs
   * and status screens and never holds content.
   */
  'transport-error': (event: { scope: string; transport: string; code: string; message: string }) => void
  /** The scopes this device holds changed (a grant arrived). */
  scopes: (event: { scopes: string[] }) => void
  /** The account lets this device hold a scope outside `holdOnly`: it left it unopened. Once per scope. */
  'scope-refused': (event: { scope: string; holdOnly: string[] }) => void
  /** This device was revoked by an owner: it syncs nothing any more. */
  revoked: (event: { deviceId: string }) => void
  /**
   * This device's temporary access ended (`devices.invite({ until })`): it removed the account's
   * keys and data from its store and closed itself. Emitted once, after the store was wiped.
   */
  'access-ended': (event: { deviceId: string; until: number }) => void
  /**
   * A peer announced a seq this device has not received within `sync.lagTimeoutMs`
   * (`state: 'behind'` — the relay may be withholding envelopes), or it arrived after that (`'caught-up'`).
   */
  'sync-lag': (event: SyncLagEvent) => void
}


/** The replica options of one scope on this device, from its keyring, store and sync tuning. */
export function replicaOptions(scope: string, keyring: DeviceKeyring, storage: StorageAdapter, sync: SyncOptions): Omit<ReplicaOptions, 'directory'> {
  const roomId = keyring.roomId(scope)
  return {
    scope,
    roomId,
    keyring,
    storage,
    atRestKey: keyring.atRestKey(roomId),
    ...(sync.hold !== undefined && { hold: sync.hold }),
    ...(sync.repairDelayMs !== undefined && { repairDelayMs: sync.repairDelayMs }),
    ...(sync.flushDelayMs !== undefined && { flushDelayMs: sync.flushDelayMs }),
    ...(sync.streamFlushDelayMs !== undefined && { streamFlushDelayMs: sync.streamFlushDelayMs }),
    ...(sync.compaction !== undefined && { compaction: sync.compaction }),
  }
}


/** The `holdOnly` option, checked. */
export function requireHoldOnly(value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || value.some((s) => typeof s !== 'string')) throw new ValidationError('holdOnly must be an array of scope names')
  return [...(value as string[])]
}

/** The `keys` option, checked: a key protector or nothing. */
export function requireKeyProtector(value: unknown): KeyProtector | undefined {
  if (value === undefined) return undefined
  if (!isKeyProtector(value)) throw new ValidationError('keys must be a KeyProtector: { kind, wrap(record, label), unwrap(wrapped, label) }, e.g. passphraseKeys(passphrase)')
  return value
}

/** Check the `sync` tuning (positive numbers, hold limits) before anything opens. */
export function validateSyncOptions(sync: SyncOptions): void {
  const positive = (value: unknown, name: string, allowZero = false): void => {
    if (value === undefined) return
    if (!(typeof value === 'number' && Number.isFinite(value) && (allowZero ? value >= 0 : value > 0))) {
      throw new ValidationError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(value)}`)
    }
  }
  positive(sync.lagTimeoutMs, 'sync.lagTimeoutMs')
  positive(sync.repairDelayMs, 'sync.repairDelayMs', true)
  positive(sync.epochGraceMs, 'sync.epochGraceMs', true)
  if (sync.hold !== undefined) {
    const hold = requireObject(sync.hold, 'sync.hold')
    positive(hold.maxEntries, 'sync.hold.maxEntries')
    positive(hold.maxBytes, 'sync.hold.maxBytes')
    positive(hold.timeoutMs, 'sync.hold.timeoutMs')
  }
}

/** The `storage` option, checked: a storage adapter. */
export function requireStorage(value: unknown): StorageAdapter {
  const storage = value as Partial<StorageAdapter> | undefined
  if (
    !storage ||
    typeof storage.load !== 'function' ||
    typeof storage.save !== 'function' ||
    typeof storage.remove !== 'function' ||
    typeof storage.loadRange !== 'function' ||
    typeof storage.removeRange !== 'function'
  ) {
    throw new ValidationError('storage must be a StorageAdapter (e.g. memoryStorage(), sqliteStorage({ path }))')
  }
  return storage as StorageAdapter
}

/** The `transports` option, checked: an array of transports. */
export function requireTransports(value: unknown): Transport[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new ValidationError('transports must be an array of Transport')
  for (const t of value) {
    if (!t || typeof (t as Transport).attach !== 'function') {
      throw new ValidationError('every transport must implement Transport (attach/close)')
    }
  }
  return value as Transport[]
}
