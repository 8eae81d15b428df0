/**
 * A PC device: `ContextSync` on SQLite in the per-user data folder, syncing through the relay over
 * WebSocket, its keys sealed under the key file (or a passphrase), exposing to its tools (CLI, MCP
 * server) only the scopes asked for — `personal` and `work` by default (ARCHITECTURE.md
 * "adapters/pc").
 *
 * Three ways in: {@link initPc} makes a new account with this PC as its first owner,
 * {@link joinPc} pairs it with an invite from another device, {@link openPc} reopens it.
 *
 * @module
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import {
  ConfigError,
  ContextSync,
  createAccount,
  ScopeAccessError,
  ValidationError,
  type KeyProtector,
  type SyncOptions,
  type Transport,
  type TransportAttachment,
  type TransportStatus,
} from '../../src/index.js'
import { sqliteStorage, type SqliteStorage } from '../../src/entries/sqlite.js'
import { websocketTransport } from '../../src/entries/websocket-node.js'
import { trackedTransport } from '../../src/adapters/tracked-transport.js'
import { Outbox, type Pending } from '../../src/facade/outbox.js'
import { defaultPcKeys } from './key-file.js'
import { outboxSaver, readCarried } from './outbox-file.js'
import { defaultKeyFile, pcPaths, PC_FILES } from './paths.js'
import { lockStore, type StoreLock } from './store-lock.js'

/** Scopes a PC's tools expose unless told otherwise. */
export const PC_DEFAULT_SCOPES: readonly string[] = ['personal', 'work']

/** Options shared by {@link openPc}, {@link initPc} and {@link joinPc}. */
export interface PcOptions {
  /** Folder of the store and `pc.json`. Default: the per-user data folder (`pcPaths().data`). */
  dataDir?: string
  /**
   * The relay, e.g. `wss://relay.example.com`. Saved in `pc.json` by `initPc`/`joinPc`; later opens
   * use the saved one unless given. None: the PC works offline.
   */
  relayUrl?: string
  /**
   * Scopes the PC's tools (CLI, MCP server) may read and write — each must also be one this device
   * holds. Default `personal` and `work`.
   */
  scopes?: readonly string[]
  /**
   * The key protector. Default: `passphraseKeys(CONTEXTSYNC_PASSPHRASE)` when that variable is
   * set, else the key file `keyFile` (made on init/join). README "Desktop".
   */
  keys?: KeyProtector
  /** The key file of the default protector. Default `<per-user config folder>/device.key`. */
  keyFile?: string
  /** Environment read for `CONTEXTSYNC_PASSPHRASE`. Default `process.env`. */
  env?: Record<string, string | undefined>
  sync?: SyncOptions
  /** Reconnect backoff ceiling of the WebSocket transport (ms). Default 2 500. */
  maxBackoffTime?: number
}

/** A PC device, open. */
export interface PcDevice {
  /** The device itself: memory, sessions, devices, scopes, presence. */
  readonly sync: ContextSync
  readonly dataDir: string
  readonly relayUrl: string | undefined
  /** The scopes asked for (`options.scopes`). */
  readonly scopes: readonly string[]
  /** The scopes the tools may use now: asked for and held by this device. */
  exposedScopes(): string[]
  /**
   * `scope` when it is exposed; otherwise a `ScopeAccessError` saying whether the device does not
   * hold it or the tools were not given it.
   */
  requireScope(scope: string): string
  /**
   * How far the initial sync of a held scope has come, by what its peers announced in presence:
   * `applied` of `announced` envelopes (0 of 0 while no peer announced anything yet).
   */
  syncProgress(scope: string): { applied: number; announced: number }
  /**
   * What this PC sealed that may not have reached the relay yet, per scope and in all (count and
   * bytes) — including what earlier processes of this device left pending, until the room syncs.
   */
  pending(): Pending
  /** The relay connection of a held scope's room now (`offline` without a relay). */
  connection(scope: string): TransportStatus | 'offline'
  /** Flush, disconnect, close the store. Idempotent. */
  close(): Promise<void>
}

/** What `pc.json` holds (nothing secret). */
interface SavedConfig {
  relayUrl?: string
}

/**
 * Reopen the PC device in `dataDir`.
 *
 * @example
 * ```ts
 * import { openPc } from 'contextsync/pc'
 * const pc = await openPc({ scopes: ['personal'] })
 * pc.sync.memory.recall({ text: 'seat', limit: 5 })
 * await pc.close()
 * ```
 */
export async function openPc(options: PcOptions = {}): Promise<PcDevice> {
  const setup = prepare(options)
  if (!existsSync(setup.storePath)) {
    throw new ConfigError(`no contextsync device in ${setup.dataDir}: run \`contextsync init\` (a new account) or \`contextsync join <code>\` (an invite from your phone)`)
  }
  const keys = options.keys ?? defaultPcKeys({ keyFile: setup.keyFile, env: setup.env, create: false })
  return withParts(setup, (storage, transports) => ContextSync.open({ storage, transports, keys, ...(options.sync && { sync: options.sync }) }))
}

/**
 * Create a new account with this PC as its first owner device. Returns the recovery code — show
 * it once, it is the only way back to the account root if every owner device is lost.
 *
 * @example
 * ```ts
 * const { pc, recoveryCode } = await initPc({ relayUrl: 'wss://relay.example.com' })
 * ```
 */
export async function initPc(options: PcOptions & { name?: string; recoveryCode?: string }): Promise<{ pc: PcDevice; recoveryCode: string }> {
  const setup = prepare(options)
  refuseExisting(setup.storePath)
  const account = await createAccount(options.recoveryCode === undefined ? {} : { recoveryCode: options.recoveryCode })
  const keys = options.keys ?? defaultPcKeys({ keyFile: setup.keyFile, env: setup.env, create: true })
  mkdirSync(setup.dataDir, { recursive: true, mode: 0o700 })
  saveConfig(setup.dataDir, setup.relayUrl)
  const pc = await withParts(setup, (storage, transports) =>
    ContextSync.open({
      account,
      device: { kind: 'pc', ...(options.name !== undefined && { name: options.name }) },
      storage,
      transports,
      keys,
      ...(options.sync && { sync: options.sync }),
    }),
  )
  return { pc, recoveryCode: account.exportRecoveryCode() }
}

/**
 * Pair this PC with an account through an invite code from an owner device. `confirmSas` shows the
 * six digits and returns whether the user says they match the other screen.
 */
export async function joinPc(
  options: PcOptions & { invite: string; name?: string; confirmSas?: (sas: string) => boolean | Promise<boolean>; timeoutMs?: number },
): Promise<PcDevice> {
  const setup = prepare(options)
  refuseExisting(setup.storePath)
  if (setup.relayUrl === undefined) throw new ValidationError('joining needs a relay: pass relayUrl (the relay the inviting device uses)')
  const keys = options.keys ?? defaultPcKeys({ keyFile: setup.keyFile, env: setup.env, create: true })
  mkdirSync(setup.dataDir, { recursive: true, mode: 0o700 })
  const pc = await withParts(setup, (storage, transports) =>
    ContextSync.join({
      invite: options.invite,
      device: { kind: 'pc', ...(options.name !== undefined && { name: options.name }) },
      storage,
      transports,
      keys,
      ...(options.confirmSas && { confirmSas: options.confirmSas }),
      ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
      ...(options.sync && { sync: options.sync }),
    }),
  )
  saveConfig(setup.dataDir, setup.relayUrl)
  return pc
}

interface Setup {
  dataDir: string
  storePath: string
  keyFile: string
  relayUrl: string | undefined
  scopes: readonly string[]
  env: Record<string, string | undefined>
  maxBackoffTime: number | undefined
}

function prepare(options: PcOptions): Setup {
  if (typeof options !== 'object' || options === null) throw new ValidationError('the PC options must be an object')
  const dataDir = resolve(options.dataDir ?? pcPaths().data)
  const saved = readConfig(dataDir)
  const relayUrl = options.relayUrl ?? saved.relayUrl
  if (relayUrl !== undefined && !/^wss?:\/\/[^\s/]+/.test(relayUrl)) throw new ValidationError(`relayUrl must be a ws:// or wss:// URL, got '${relayUrl}'`)
  const scopes = options.scopes ?? PC_DEFAULT_SCOPES
  if (!Array.isArray(scopes) || scopes.length === 0 || scopes.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new ValidationError('scopes must be a non-empty list of scope names')
  }
  return {
    dataDir,
    storePath: join(dataDir, PC_FILES.store),
    keyFile: options.keyFile ?? defaultKeyFile(),
    relayUrl,
    scopes: [...new Set(scopes)],
    env: options.env ?? process.env,
    maxBackoffTime: options.maxBackoffTime,
  }
}

function refuseExisting(storePath: string): void {
  if (existsSync(storePath)) throw new ConfigError(`${storePath} already holds a device: open it, or pass another dataDir`)
}

/** Build the store and transport, run `open`, and wrap the result; releases both if it fails. */
async function withParts(setup: Setup, open: (storage: SqliteStorage, transports: Transport[]) => Promise<ContextSync>): Promise<PcDevice> {
  mkdirSync(setup.dataDir, { recursive: true, mode: 0o700 })
  const lock = lockStore(join(setup.dataDir, PC_FILES.lock), `${basename(process.argv[1] ?? 'node')} ${process.argv[2] ?? ''}`.trim())
  const storage = sqliteStorage({ path: setup.storePath, createDirectory: true })
  const attachments = new Map<string, TransportAttachment>()
  const transports = setup.relayUrl === undefined ? [] : [trackedTransport(websocketTransport({ url: setup.relayUrl, ...(setup.maxBackoffTime !== undefined && { maxBackoffTime: setup.maxBackoffTime }) }), attachments)]
  let sync: ContextSync
  try {
    sync = await open(storage, transports)
  } catch (error) {
    await Promise.all(transports.map((t) => t.close()))
    await storage.close()
    lock.release()
    throw error
  }
  return pcDevice(sync, setup, storage, transports, attachments, lock)
}

function pcDevice(sync: ContextSync, setup: Setup, storage: SqliteStorage, transports: Transport[], attachments: Map<string, TransportAttachment>, lock: StoreLock): PcDevice {
  let closing: Promise<void> | undefined
  const outboxPath = join(setup.dataDir, PC_FILES.outbox)
  const carried = readCarried(outboxPath)
  // Without a relay nothing ever syncs: the count would only grow, and mean nothing.
  const statusOf = (roomId: string): TransportStatus => attachments.get(roomId)?.status ?? 'connecting'
  const outbox = setup.relayUrl === undefined ? undefined : new Outbox(sync, statusOf, carried ? { carried } : {})
  const saver = outboxSaver(outboxPath)
  outbox?.events.on('change', (pending) => saver.schedule(pending))
  const exposedScopes = (): string[] => {
    const held = new Set(sync.scopes.available())
    return setup.scopes.filter((s) => held.has(s))
  }
  return {
    sync,
    dataDir: setup.dataDir,
    relayUrl: setup.relayUrl,
    scopes: setup.scopes,
    exposedScopes,
    requireScope(scope) {
      if (exposedScopes().includes(scope)) return scope
      if (!sync.scopes.available().includes(scope)) throw new ScopeAccessError(`this PC does not hold scope '${scope}'`)
      throw new ScopeAccessError(`scope '${scope}' is not exposed here (exposed: ${exposedScopes().join(', ') || 'none'})`)
    },
    syncProgress(scope) {
      const applied = sync.replica(scope)?.appliedSeqs()
      let done = 0
      let announced = 0
      for (const peer of sync.syncStatus()) {
        if (peer.scope !== scope || peer.deviceId === sync.deviceId) continue
        announced += peer.announcedSeq
        done += Math.min(peer.announcedSeq, applied?.get(peer.deviceId)?.size() ?? 0)
      }
      return { applied: done, announced }
    },
    pending() {
      return outbox?.snapshot() ?? { count: 0, bytes: 0, scopes: {} }
    },
    connection(scope) {
      if (setup.relayUrl === undefined) return 'offline'
      return statusOf(sync.roomId(scope))
    },
    close() {
      closing ??= (async () => {
        // Taken before the rooms detach: a clean close is not a dropped connection, so what went
        // out on it arrived (TCP delivers in order before the close frame).
        if (outbox) {
          await sync.flush().catch(() => undefined)
          const left = outbox.snapshot()
          outbox.close()
          if (left.count > 0 || carried !== undefined) {
            try {
              saver.now(left)
            } catch {
              // A display only (see outbox-file.ts).
            }
          }
        }
        await sync.close()
        await Promise.all(transports.map((t) => t.close()))
        await storage.close()
        lock.release()
      })()
      return closing
    },
  }
}

function readConfig(dataDir: string): SavedConfig {
  const path = join(dataDir, PC_FILES.config)
  if (!existsSync(path)) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    throw new ConfigError(`${path} is not valid JSON; fix it or delete it and pass relayUrl`)
  }
  const relayUrl = (parsed as { relayUrl?: unknown } | null)?.relayUrl
  if (relayUrl !== undefined && typeof relayUrl !== 'string') throw new ConfigError(`${path}: relayUrl must be a string`)
  return relayUrl === undefined ? {} : { relayUrl }
}

function saveConfig(dataDir: string, relayUrl: string | undefined): void {
  const path = join(dataDir, PC_FILES.config)
  writeFileSync(path, `${JSON.stringify(relayUrl === undefined ? {} : { relayUrl }, null, 2)}\n`, { mode: 0o600 })
  if (process.platform !== 'win32') chmodSync(path, 0o600)
}
