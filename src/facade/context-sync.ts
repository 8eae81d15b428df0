/**
 * `ContextSync`: one device's view of a person's assistant context. It wires the layers of
 * DESIGN §1 together — key material from storage, the registry, one replica per scope, the
 * transports — and exposes `memory` and `sessions`.
 *
 * @module
 */
import type { StorageAdapter } from '../adapters/storage.js'
import type { Transport, TransportAttachment, TransportStatus } from '../adapters/transport.js'
import {
  accountKeysFromPublicKey,
  createDeviceKeys,
  decodeAccountKeys,
  decodeDeviceKeys,
  encodeAccountKeys,
  encodeDeviceKeys,
  ownerKeyring,
  ready,
  REGISTRY_SCOPE,
  type AccountKeys,
  type DeviceKeys,
  type ScopeKeyring,
} from '../crypto/index.js'
import { ClosedError, ConfigError, ScopeAccessError, ValidationError } from '../errors.js'
import { Replica, type CompactionPolicy, type RejectedEvent } from '../sync/replica.js'
import type { StorageError } from '../adapters/storage.js'
import { Emitter } from '../util/emitter.js'
import { Account, accountKeys } from './account.js'
import { MemoryApi, type ScopeReplicas } from './memory.js'
import { Registry } from './registry.js'
import { BUILTIN_SCOPES, DEVICE_KINDS, isDeviceLocal, type DeviceKind } from './scopes.js'
import { SessionsApi } from './sessions.js'
import { requireObject, requireOneOf } from './validate.js'

/** Sync tuning; the defaults suit phones and PCs. */
export interface SyncOptions {
  /** Delay before sealing ordinary writes; 0 (default) seals on the next microtask. */
  flushDelayMs?: number
  /** Sealing window for streamed turns. Default 20 ms. */
  streamFlushDelayMs?: number
  /** When to compact a sealed log. */
  compaction?: Partial<CompactionPolicy>
}

/** Options of {@link ContextSync.open}. */
export interface OpenOptions {
  /** The account to enrol this device in (first open only). Later opens read it from storage. */
  account?: Account
  /** What this device is (first open only). */
  device?: { kind: DeviceKind; name?: string }
  /** Where sealed logs and key material live. */
  storage: StorageAdapter
  /** How sealed logs travel. Omit for an offline device. */
  transports?: Transport[]
  sync?: SyncOptions
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
  /** An envelope is held until its sender's certificate or epoch key arrives. */
  held: (event: RejectedEvent) => void
  /** Storing failed; the app keeps working from memory while the write is retried. */
  'storage-error': (event: StorageErrorEvent) => void
  /** A transport's connection state for one scope changed. */
  status: (event: { scope: string; transport: string; status: TransportStatus }) => void
}

const KEY_DEVICE = ['keys', 'device']
const KEY_ACCOUNT = ['keys', 'account']

interface Profile {
  kind: DeviceKind
  name: string
}

/** One device of a person's assistant, in sync with their other devices. */
export class ContextSync {
  /** This device's id (stable across reopen). */
  readonly deviceId: string
  /** The account this device belongs to. */
  readonly accountId: string
  /** What this device is. */
  readonly kind: DeviceKind
  /** Its display name. */
  readonly name: string
  /** Long-term memory. */
  readonly memory: MemoryApi
  /** Conversations. */
  readonly sessions: SessionsApi
  private readonly emitter = new Emitter<ContextSyncEvents>()
  private readonly attachments: TransportAttachment[] = []
  private closed = false

  private constructor(
    private readonly device: DeviceKeys,
    private readonly account: AccountKeys,
    profile: Profile,
    private readonly registryReplica: Replica,
    readonly registry: Registry,
    private readonly scopeReplicas: Map<string, Replica>,
  ) {
    this.deviceId = device.deviceId
    this.accountId = account.accountId
    this.kind = profile.kind
    this.name = profile.name
    const scopes: ScopeReplicas = {
      deviceId: device.deviceId,
      replica: (scope) => this.replicaFor(scope),
      replicas: () => [...this.scopeReplicas.values()],
      assertOpen: () => {
        if (this.closed) throw new ClosedError()
      },
    }
    this.memory = new MemoryApi(scopes)
    this.sessions = new SessionsApi(scopes)
  }

  /**
   * Open a device. The first open needs `account` and `device`; it creates the device's keys,
   * enrols it in the account and stores everything. Later opens need only `storage` (and
   * transports): identity and data come back from storage.
   *
   * @example
   * ```ts
   * const account = await createAccount()
   * const phone = await ContextSync.open({
   *   account, device: { kind: 'phone', name: 'My phone' },
   *   storage: memoryStorage(), transports: [net.transport()],
   * })
   * ```
   */
  static async open(options: OpenOptions): Promise<ContextSync> {
    const fields = requireObject(options, 'ContextSync.open(options)')
    const storage = requireStorage(fields.storage)
    const transports = requireTransports(fields.transports)
    await ready()

    const identity = await loadOrCreateIdentity(storage, options)
    const { device, account } = identity
    if (!account.rootSecretKey) {
      throw new ConfigError('this store holds a member device; member devices join with an invite (not available yet)')
    }
    const keyring = ownerKeyring(account)
    const sync = options.sync ?? {}
    const replicaOptions = (scope: string) => ({
      scope,
      roomId: keyring.roomId(scope),
      keyring,
      storage,
      ...(sync.flushDelayMs !== undefined && { flushDelayMs: sync.flushDelayMs }),
      ...(sync.streamFlushDelayMs !== undefined && { streamFlushDelayMs: sync.streamFlushDelayMs }),
      ...(sync.compaction !== undefined && { compaction: sync.compaction }),
    })

    // The registry's envelopes are signed with the account root: only owners state things there.
    const registryReplica = new Replica({
      ...replicaOptions(REGISTRY_SCOPE),
      directory: { resolve: () => ({ status: 'known', signPublicKey: account.rootPublicKey }) },
      signer: { sender: device.deviceIdBytes, senderId: device.deviceId, signSecretKey: account.rootSecretKey },
    })
    await registryReplica.load()
    const registry = new Registry(registryReplica, account)
    const own = registry.certificate(device.deviceId)
    const profile: Profile = identity.profile ?? {
      kind: (DEVICE_KINDS as readonly string[]).includes(own?.kind ?? '') ? (own!.kind as DeviceKind) : 'other',
      name: own?.name ?? defaultName('other'),
    }
    await registry.enrol(device, profile)

    const replicas = new Map<string, Replica>()
    for (const scope of BUILTIN_SCOPES) {
      replicas.set(
        scope,
        new Replica({
          ...replicaOptions(scope),
          directory: registry,
          signer: { sender: device.deviceIdBytes, senderId: device.deviceId, signSecretKey: device.signSecretKey },
        }),
      )
    }
    await Promise.all([...replicas.values()].map((r) => r.load()))

    const instance = new ContextSync(device, account, profile, registryReplica, registry, replicas)
    instance.wire(transports, keyring)
    return instance
  }

  /** Subscribe to device-level events. Returns an unsubscribe function. */
  on<E extends keyof ContextSyncEvents>(event: E, listener: ContextSyncEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /** Rejected envelopes so far, by numeric code (see `RejectCode`). */
  rejectionCounts(): Record<number, number> {
    const out: Record<number, number> = {}
    for (const replica of this.allReplicas()) {
      for (const [code, n] of replica.rejections) out[code] = (out[code] ?? 0) + n
    }
    return out
  }

  /** Scopes this device holds. */
  scopes(): string[] {
    return [...this.scopeReplicas.keys()]
  }

  /** Resolves once every local change so far is sealed and durably stored. */
  async flush(): Promise<void> {
    await Promise.all(this.allReplicas().map((r) => r.whenFlushed()))
  }

  /** Seal and store what is pending, detach transports and release everything. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const attachment of this.attachments) attachment.detach()
    this.memory.close()
    this.sessions.close()
    await Promise.all(this.allReplicas().map((r) => r.close()))
    this.emitter.clear()
  }

  /** @internal the replica of a scope (tests, inspection). */
  replica(scope: string): Replica | undefined {
    return scope === REGISTRY_SCOPE ? this.registryReplica : this.scopeReplicas.get(scope)
  }

  private allReplicas(): Replica[] {
    return [this.registryReplica, ...this.scopeReplicas.values()]
  }

  private replicaFor(scope: unknown): Replica {
    if (typeof scope !== 'string') throw new ValidationError(`scope must be a string, got ${typeof scope}`)
    const replica = this.scopeReplicas.get(scope)
    if (replica) return replica
    if ((BUILTIN_SCOPES as readonly string[]).includes(scope)) {
      throw new ScopeAccessError(`this device (${this.kind}) does not hold scope '${scope}'`)
    }
    throw new ValidationError(`unknown scope '${scope}'; known scopes: ${BUILTIN_SCOPES.join(', ')}`)
  }

  private wire(transports: Transport[], keyring: ScopeKeyring): void {
    for (const replica of this.allReplicas()) {
      replica.events.on('rejected', (e) => this.emitter.emit('rejected', e))
      replica.events.on('held', (e) => this.emitter.emit('held', e))
      replica.events.on('storage-error', ({ error, scope }) =>
        this.emitter.emit('storage-error', { code: 'storage-error', error, scope }),
      )
    }
    this.registry.events.on('change', () => {
      for (const replica of this.scopeReplicas.values()) replica.retryHeld()
    })
    for (const replica of this.allReplicas()) {
      if (isDeviceLocal(replica.scope)) continue
      for (const transport of transports) {
        const attachment = transport.attach({
          roomId: keyring.roomId(replica.scope),
          doc: replica.outer,
          awareness: replica.awareness,
        })
        attachment.on('status', ({ status }) =>
          this.emitter.emit('status', { scope: replica.scope, transport: transport.kind, status }),
        )
        this.attachments.push(attachment)
      }
    }
  }
}

async function loadOrCreateIdentity(
  storage: StorageAdapter,
  options: OpenOptions,
): Promise<{ device: DeviceKeys; account: AccountKeys; profile?: Profile }> {
  const [deviceBytes, accountBytes] = await Promise.all([storage.load(KEY_DEVICE), storage.load(KEY_ACCOUNT)])
  if (deviceBytes && accountBytes) {
    const device = decodeDeviceKeys(deviceBytes)
    const account = decodeAccountKeys(accountBytes)
    if (!device.ok || !account.ok) throw new ConfigError('the key material in this store is corrupt; wipe the store and enrol the device again')
    if (options.account && accountKeys(options.account).accountId !== account.value.accountId) {
      throw new ConfigError(
        `this store belongs to account ${account.value.accountId}, not ${options.account.accountId}; use a fresh store to enrol in another account`,
      )
    }
    // Kind and name are not stored in the clear: they come back from the device's own
    // certificate in the (sealed) registry once it is loaded.
    return { device: device.value, account: account.value }
  }
  if (deviceBytes || accountBytes) throw new ConfigError('this store holds partial key material; wipe it and enrol the device again')
  if (!options.account) throw new ConfigError('this store holds no device yet: pass `account` (and `device`) to enrol one')
  if (!(options.account instanceof Account)) throw new ValidationError('account must come from createAccount()')
  const deviceInfo = requireObject(options.device, 'device')
  const kind = requireOneOf(deviceInfo.kind, DEVICE_KINDS, 'device.kind')
  const name = deviceInfo.name === undefined ? defaultName(kind) : String(deviceInfo.name).slice(0, 200)
  const account = accountKeys(options.account)
  const device = createDeviceKeys()
  const profile: Profile = { kind, name }
  // Account first, device last: a crash in between leaves "no device" rather than a half identity.
  await storage.save(KEY_ACCOUNT, encodeAccountKeys(account.rootSeed ? account : accountKeysFromPublicKey(account.rootPublicKey)))
  await storage.save(KEY_DEVICE, encodeDeviceKeys(device))
  return { device, account, profile }
}

function defaultName(kind: DeviceKind): string {
  return `My ${kind === 'pc' ? 'PC' : kind}`
}

function requireStorage(value: unknown): StorageAdapter {
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

function requireTransports(value: unknown): Transport[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new ValidationError('transports must be an array of Transport')
  for (const t of value) {
    if (!t || typeof (t as Transport).attach !== 'function') {
      throw new ValidationError('every transport must implement Transport (attach/close)')
    }
  }
  return value as Transport[]
}
