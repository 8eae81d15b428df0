/**
 * `ContextSync`: one device's view of a person's assistant context. It wires the layers together
 * (README "How it works") — key material from storage, the registry, one replica per scope the
 * device holds, the transports — and exposes `memory`, `sessions`, `devices` and `scopes`.
 *
 * @module
 */
import { StorageError, type StorageAdapter } from '../adapters/storage.js'
import type { Transport, TransportAttachment } from '../adapters/transport.js'
import {
  createAccessToken,
  DeviceKeyring,
  encodeAccountKeys,
  encodeDeviceKeys,
  issueRelayPass,
  ready,
  REGISTRY_SCOPE,
  type AccountKeys,
  type DeviceKeys,
  type RejectCode,
} from '../crypto/index.js'
import { ClosedError, ConfigError, ScopeAccessError, ValidationError } from '../errors.js'
import { Replica, type RejectedEvent } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import type { DeviceContext } from './device-context.js'
import { DevicesApi } from './devices.js'
import { MemoryApi } from './memory.js'
import { InviteHost, joinWithInvite, type JoinOptions } from './pairing.js'
import { saveKeyRecords } from './key-store.js'
import { type KeyProtector } from '../crypto/key-protector.js'
import { Registry } from './registry.js'
import { DEVICE_KINDS, isDeviceLocal, type DeviceKind, type DeviceProfile } from './builtin-scopes.js'
import { ScopesApi } from './scopes-api.js'
import { PresenceApi } from './presence.js'
import { SessionsApi } from './sessions.js'
import { SyncMonitor, type SyncPeerStatus } from './sync-monitor.js'
import { requireObject } from './check-args.js'
import {
  replicaOptions,
  requireHoldOnly,
  requireKeyProtector,
  requireStorage,
  requireTransports,
  validateSyncOptions,
  type ContextSyncEvents,
  type OpenOptions,
  type SyncOptions,
} from './context-sync-options.js'
import {
  KEY_ACCOUNT,
  KEY_DEVICE,
  loadOrCreateIdentity,
  requireKeysForDurable,
  wipeAccount,
} from './device-keys-setup.js'
import { openRegistry, whenRegistryArrived } from './open-registry.js'

export type { ContextSyncEvents, OpenOptions, StorageErrorEvent, SyncOptions } from './context-sync-options.js'

type Profile = DeviceProfile

/** One device of a person's assistant, in sync with their other devices. */
export class ContextSync {
  /** This device's id (stable across reopen). */
  readonly deviceId: string
  /** The account this device belongs to. */
  readonly accountId: string
  /** Long-term memory. */
  readonly memory: MemoryApi
  /** Conversations. */
  readonly sessions: SessionsApi
  /** Which devices are online and what they are doing (encrypted presence). */
  readonly presence: PresenceApi
  /** The account's devices: pairing, listing, revocation. */
  readonly devices: DevicesApi
  /** Privacy scopes: which device may hold what. */
  readonly scopes: ScopesApi
  private readonly emitter = new Emitter<ContextSyncEvents>()
  private readonly monitor: SyncMonitor
  /** Rejections no replica counted (registry statements, import lines). */
  private readonly otherRejections = new Map<RejectCode, number>()
  private readonly attachments = new Map<string, TransportAttachment[]>()
  private readonly replicaWatchers: Array<(replica: Replica) => void> = []
  private readonly opening = new Map<string, Promise<void>>()
  /** Scopes whose replica is being closed and purged (this device was removed from them). */
  private readonly dropping = new Map<string, Promise<void>>()
  private readonly context: DeviceContext
  private retentionTimer: ReturnType<typeof setInterval> | undefined
  private closed = false
  private revoked = false
  /** `OpenOptions.holdOnly`, when given. */
  private holdOnly: readonly string[] | undefined
  /** Set by {@link tune}: scopes opened later defer compaction too. */
  private deferCompaction = false
  /** Scopes already reported as `scope-refused`. */
  private readonly refusedScopes = new Set<string>()
  /** Resolves once scope rooms may go online (see `whenRegistryArrived`, open-registry.ts). */
  private registryArrived: Promise<void> = Promise.resolve()

  private constructor(
    private readonly device: DeviceKeys,
    private readonly account: AccountKeys,
    private readonly profile: Profile,
    private readonly keyring: DeviceKeyring,
    private readonly registryReplica: Replica,
    /** @internal */ readonly registry: Registry,
    private readonly scopeReplicas: Map<string, Replica>,
    private readonly transports: Transport[],
    private readonly storage: StorageAdapter,
    private readonly sync: SyncOptions,
  ) {
    this.deviceId = device.deviceId
    this.accountId = account.accountId
    // One context object for every sub-API (device-context.ts).
    this.context = {
      device,
      account,
      keyring,
      registry,
      transports,
      deviceId: device.deviceId,
      assertOpen: () => this.assertOpen(),
      replica: (scope) => this.replicaFor(scope),
      replicas: () => [...this.scopeReplicas.values()],
      eachReplica: (fn) => {
        for (const replica of this.scopeReplicas.values()) fn(replica)
        this.replicaWatchers.push(fn)
      },
      heldReplica: (scope) => this.scopeReplicas.get(scope),
      allReplicas: () => this.allReplicas(),
      reportRejection: (event) => this.reportRejection(event),
    }
    this.memory = new MemoryApi(this.context)
    this.sessions = new SessionsApi(this.context, this.context)
    this.monitor = new SyncMonitor(this.context, sync.lagTimeoutMs === undefined ? {} : { lagTimeoutMs: sync.lagTimeoutMs })
    this.monitor.on('lag', (e) => this.emitter.emit('sync-lag', e))
    this.presence = new PresenceApi(this.context, { onLogSeq: (scope, deviceId, seq, tip) => this.monitor.announce(scope, deviceId, seq, tip) })
    this.devices = new DevicesApi(this.context, new InviteHost(this.context))
    this.scopes = new ScopesApi(this.context, () => this.heldScopes())
  }

  /** What this device is. */
  get kind(): DeviceKind {
    const kind = this.registry.certificate(this.deviceId)?.kind ?? this.profile.kind
    return (DEVICE_KINDS as readonly string[]).includes(kind) ? (kind as DeviceKind) : 'other'
  }

  /** Its display name. */
  get name(): string {
    return this.registry.certificate(this.deviceId)?.name ?? this.profile.name
  }

  /** True on owner devices (they hold the account root and can pair, grant and revoke). */
  get isOwner(): boolean {
    return this.account.rootSecretKey !== undefined
  }

  /**
   * Open a device. The first open needs `account` and `device`; it creates the device's keys,
   * enrols it in the account as an owner and stores everything. Later opens need only `storage`
   * (and transports): identity and data come back from storage. Devices that are not owners
   * are added with an invite: see {@link ContextSync.join}.
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
    const holdOnly = requireHoldOnly(fields.holdOnly)
    await ready()
    const identity = await loadOrCreateIdentity(storage, options)
    return ContextSync.start(identity, storage, transports, { ...options.sync }, holdOnly)
  }

  /**
   * Join an account with an invite code from an owner device (`owner.devices.invite`). Resolves
   * once the owner has admitted this device and its registry entry and keys have arrived.
   *
   * @example
   * ```ts
   * const { code } = await phone.devices.invite({ kind: 'car', scopes: ['personal', 'location'] })
   * const car = await ContextSync.join({ invite: code, device: { kind: 'car', name: 'Car' }, storage, transports })
   * ```
   */
  static async join(
    options: JoinOptions & { storage: StorageAdapter; transports: Transport[]; sync?: SyncOptions; keys?: KeyProtector; holdOnly?: readonly string[] },
  ): Promise<ContextSync> {
    const fields = requireObject(options, 'ContextSync.join(options)')
    const storage = requireStorage(fields.storage)
    const transports = requireTransports(fields.transports)
    const keys = requireKeyProtector(fields.keys)
    if (!keys) requireKeysForDurable(storage)
    if (transports.length === 0) throw new ValidationError('join needs at least one transport to reach the owner device')
    await ready()
    if ((await storage.load(KEY_DEVICE)) || (await storage.load(KEY_ACCOUNT))) {
      throw new ConfigError('this store already holds a device; open it with ContextSync.open({ storage })')
    }
    const joined = await joinWithInvite(options, transports)
    await saveKeyRecords(
      storage,
      [
        { key: KEY_ACCOUNT, label: 'account', record: encodeAccountKeys(joined.account) },
        { key: KEY_DEVICE, label: 'device', record: encodeDeviceKeys(joined.device) },
      ],
      keys,
    )
    const dev = await ContextSync.start(joined, storage, transports, { ...options.sync }, requireHoldOnly(fields.holdOnly))
    try {
      await dev.untilAdmitted(options.timeoutMs ?? 60_000)
    } catch (error) {
      await dev.close()
      throw error
    }
    return dev
  }

  private static async start(
    identity: { device: DeviceKeys; account: AccountKeys; profile?: Profile; requested?: Profile; relayPass?: Uint8Array },
    storage: StorageAdapter,
    transports: Transport[],
    sync: SyncOptions,
    holdOnly?: readonly string[],
  ): Promise<ContextSync> {
    const { device, account } = identity
    validateSyncOptions(sync)
    const { keyring, registryReplica, registry, profile } = await openRegistry(identity, storage, sync)

    const instance = new ContextSync(device, account, profile, keyring, registryReplica, registry, new Map(), transports, storage, sync)
    instance.holdOnly = holdOnly
    instance.wireReplica(registryReplica)
    instance.registryArrived = whenRegistryArrived(instance.registry, instance.deviceId, instance.attachments.get(REGISTRY_SCOPE) ?? [])
    try {
      await instance.openHeldScopes()
    } catch (error) {
      // Release timers, beacons and replicas opened so far before reporting the failure.
      await instance.close().catch(() => undefined)
      throw error
    }
    registry.setAppliedSeqs((roomId, deviceId) => instance.allReplicas().find((r) => r.roomId === roomId)?.appliedSeqs().get(deviceId))
    registry.events.on('change', () => instance.onRegistryChange())
    registry.events.on('rejected', ({ code, reason }) =>
      instance.reportRejection({ code, reason, scope: REGISTRY_SCOPE, roomId: registryReplica.roomId, source: 'statement' }),
    )
    instance.startRetention()
    return instance
  }

  /**
   * How far this device is behind each peer, scope by scope, by the latest seq each peer announced
   * in its sealed presence. A peer that stays `caughtUp: false` past `sync.lagTimeoutMs` while
   * online points at a relay that withholds envelopes (also reported as `sync-lag` events).
   */
  syncStatus(): SyncPeerStatus[] {
    this.assertOpen()
    return this.monitor.status()
  }

  /** Subscribe to device-level events. Returns an unsubscribe function. */
  on<E extends keyof ContextSyncEvents>(event: E, listener: ContextSyncEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /**
   * Refused input so far, by numeric code (see `RejectCode`): envelopes and presence states of
   * every replica, registry statements, and memory-import lines — everything `on('rejected')`
   * reported.
   */
  rejectionCounts(): Record<number, number> {
    const out: Record<number, number> = {}
    const add = (counts: Map<RejectCode, number>) => {
      for (const [code, n] of counts) out[code] = (out[code] ?? 0) + n
    }
    for (const replica of this.allReplicas()) add(replica.rejections)
    add(this.otherRejections)
    return out
  }

  /** Count and emit a rejection no replica counted itself. */
  private reportRejection(event: RejectedEvent): void {
    this.otherRejections.set(event.code, (this.otherRejections.get(event.code) ?? 0) + 1)
    this.emitter.emit('rejected', event)
  }

  /** Resolves once every local change so far is sealed and durably stored. */
  async flush(): Promise<void> {
    await Promise.all([...this.opening.values()])
    await Promise.all(this.allReplicas().map((r) => r.whenFlushed()))
  }

  /** Seal and store what is pending, detach transports and release everything. Idempotent. */
  async close(): Promise<void> {
    await this.release()
    this.emitter.clear()
  }

  /** Everything {@link close} does but dropping the app's listeners. */
  private async release(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.retentionTimer) clearInterval(this.retentionTimer)
    this.registry.close()
    await Promise.all([...this.opening.values(), ...this.dropping.values()].map((p) => p.catch(() => undefined)))
    this.presence.close()
    this.monitor.close()
    this.devices.close()
    for (const list of this.attachments.values()) for (const attachment of list) attachment.detach()
    this.attachments.clear()
    this.memory.close()
    this.sessions.close()
    await Promise.all(this.allReplicas().map((r) => r.close()))
  }

  /**
   * A fresh single-use relay access token for one of this device's rooms, naming the relay it is
   * for (`audience`: the `host[:port]` of the relay's URL, `tokenAudience(url)`). Transports call
   * it through `SealedLogRoom.token`; apps only need it to connect a foreign client.
   */
  accessToken(roomId: string, options: { audience?: string; lifetimeSeconds?: number } = {}): string {
    this.assertOpen()
    let pass = this.registry.relayPass(this.deviceId)
    if (!pass && this.isOwner) pass = issueRelayPass(this.account, this.device, { rooms: 'all' })
    if (!pass) throw new ScopeAccessError('this device has no relay pass yet (pairing not finished)')
    return createAccessToken({
      rootPublicKey: this.account.rootPublicKey,
      relayPass: pass,
      device: this.device,
      roomId,
      ...(options.audience !== undefined && { audience: options.audience }),
      ...(options.lifetimeSeconds !== undefined && { lifetimeSeconds: options.lifetimeSeconds }),
    })
  }

  /** Room id of a scope this device holds (what the relay sees instead of the scope name). */
  roomId(scope: string): string {
    return this.replicaFor(scope).roomId
  }

  /**
   * Change the sealing windows and defer compaction while running — what a device's power
   * profile switches (`contextsync/glasses`' `setPowerState`; ARCHITECTURE.md "adapters/glasses").
   * Applies to every open scope and to scopes opened later. `deferCompaction: false` runs the
   * compactions deferred so far; `deferIndexing` holds background recall indexing (a search
   * still indexes first); `presenceHeartbeatMs` re-times the presence heartbeat.
   */
  tune(timing: { flushDelayMs?: number; streamFlushDelayMs?: number; deferCompaction?: boolean; deferIndexing?: boolean; presenceHeartbeatMs?: number }): void {
    this.assertOpen()
    for (const value of [timing.flushDelayMs, timing.streamFlushDelayMs]) {
      if (value !== undefined && (!Number.isFinite(value) || value < 0)) throw new ValidationError('sealing windows must be non-negative numbers of ms')
    }
    if (timing.flushDelayMs !== undefined) this.sync.flushDelayMs = timing.flushDelayMs
    if (timing.streamFlushDelayMs !== undefined) this.sync.streamFlushDelayMs = timing.streamFlushDelayMs
    if (timing.deferCompaction !== undefined) this.deferCompaction = timing.deferCompaction
    for (const replica of [this.registryReplica, ...this.scopeReplicas.values()]) replica.tune(timing)
    if (timing.deferIndexing !== undefined) this.memory.deferIndexing(timing.deferIndexing)
    if (timing.presenceHeartbeatMs !== undefined) this.presence.setHeartbeat(timing.presenceHeartbeatMs)
  }

  /** @internal the replica of a scope (tests, inspection). */
  replica(scope: string): Replica | undefined {
    return scope === REGISTRY_SCOPE ? this.registryReplica : this.scopeReplicas.get(scope)
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError()
  }

  private allReplicas(): Replica[] {
    return [this.registryReplica, ...this.scopeReplicas.values()]
  }

  private heldScopes(): string[] {
    if (this.revoked) return []
    const held = this.registry.heldScopes(this.deviceId)
    const holdOnly = this.holdOnly
    if (!holdOnly) return held
    return held.filter((scope) => isDeviceLocal(scope) || holdOnly.includes(scope))
  }

  /** Report each scope the account gives this device beyond `holdOnly`, once. */
  private reportRefusedScopes(): void {
    const holdOnly = this.holdOnly
    if (!holdOnly || this.closed) return
    for (const scope of this.registry.heldScopes(this.deviceId)) {
      if (isDeviceLocal(scope) || holdOnly.includes(scope) || this.refusedScopes.has(scope)) continue
      this.refusedScopes.add(scope)
      this.emitter.emit('scope-refused', { scope, holdOnly: [...holdOnly] })
    }
  }

  private replicaFor(scope: unknown): Replica {
    if (typeof scope !== 'string') throw new ValidationError(`scope must be a string, got ${typeof scope}`)
    const replica = this.scopeReplicas.get(scope)
    if (replica) {
      // Holding no key of the scope at all means pairing has not delivered it. Holding some but
      // unable to seal (a new epoch whose key is on its way, or an unsafe one an owner must
      // rotate first) queues the write in the replica until it can seal.
      if (!replica.canSeal() && this.keyring.heldKeys(scope).length === 0) {
        throw new ScopeAccessError(`the keys of scope '${scope}' have not reached this device yet`)
      }
      return replica
    }
    if (this.registry.scopeNames().includes(scope)) {
      throw new ScopeAccessError(`this device (${this.kind}) does not hold scope '${scope}'`)
    }
    throw new ValidationError(`unknown scope '${scope}'; known scopes: ${this.registry.scopeNames().join(', ')}`)
  }

  /** Wait until the owner's registry entries for this (joining) device have arrived. */
  private untilAdmitted(timeoutMs: number): Promise<void> {
    const admitted = () => {
      if (!this.registry.certificate(this.deviceId) || !this.registry.relayPass(this.deviceId)) return false
      const held = this.heldScopes().filter((s) => !isDeviceLocal(s))
      return held.length > 0 && held.every((s) => this.scopeReplicas.get(s)?.canSeal() === true)
    }
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!admitted()) return
        clearTimeout(timer)
        off()
        resolve()
      }
      const timer = setTimeout(() => {
        off()
        reject(new ConfigError(`joined, but the registry did not arrive within ${timeoutMs} ms; is an owner device online?`))
      }, timeoutMs)
      // Replicas of newly held scopes open asynchronously after the registry changed.
      const offChange = this.registry.events.on('change', () => queueMicrotask(check))
      const offScopes = this.emitter.on('scopes', () => queueMicrotask(check))
      const off = () => {
        offChange()
        offScopes()
      }
      check()
    })
  }

  private onRegistryChange(): void {
    if (this.closed) return
    if (this.registry.termEnded(this.deviceId)) return void this.endAccess()
    if (!this.revoked && this.registry.revocation(this.deviceId)) {
      this.revoked = true
      for (const list of this.attachments.values()) for (const attachment of list) attachment.detach()
      this.attachments.clear()
      this.emitter.emit('revoked', { deviceId: this.deviceId })
      return
    }
    for (const replica of this.allReplicas()) replica.retryHeld()
    this.dropRemovedScopes()
    this.reportRefusedScopes()
    void this.openHeldScopes()
  }

  /**
   * The device's term ended: stop syncing at once, close everything, wipe the account's keys and
   * data from the store, then tell the app. Nothing it holds survives the end of its access.
   */
  private async endAccess(): Promise<void> {
    if (this.closed) return
    const until = this.registry.term(this.deviceId)?.until ?? this.registry.now()
    for (const list of this.attachments.values()) for (const attachment of list) attachment.detach()
    this.attachments.clear()
    await this.release()
    try {
      await wipeAccount(this.storage)
      this.emitter.emit('access-ended', { deviceId: this.deviceId, until })
    } catch (error) {
      const storageError = error instanceof StorageError ? error : new StorageError('io', 'wiping the ended account failed', { cause: error })
      this.emitter.emit('storage-error', { code: 'storage-error', error: storageError, scope: REGISTRY_SCOPE })
    }
    this.emitter.clear()
  }

  /**
   * Close, detach and purge the replica of every scope an owner's policy no longer lets this
   * device hold (narrowing): its new epochs are sealed to others, and what it stored of the scope
   * must not outlive the decision.
   */
  private dropRemovedScopes(): void {
    for (const [scope, replica] of [...this.scopeReplicas]) {
      if (this.dropping.has(scope) || !this.registry.removedFrom(this.deviceId, scope)) continue
      this.scopeReplicas.delete(scope)
      this.monitor.detach(scope)
      for (const attachment of this.attachments.get(scope) ?? []) attachment.detach()
      this.attachments.delete(scope)
      const dropping = (async () => {
        await replica.close()
        // The sealed log and the checkpoint go (WIRE.md "Device store layout"); the seq reservation
        // stays — it holds no content, and a later grant must never reuse a seq peers applied.
        await this.storage.removeRange(['replica', replica.roomId, 'log'])
        await this.storage.removeRange(['replica', replica.roomId, 'state'])
      })()
        .catch((error: unknown) => {
          const storageError = error instanceof StorageError ? error : new StorageError('io', 'purging a removed scope failed', { cause: error })
          this.emitter.emit('storage-error', { code: 'storage-error', error: storageError, scope })
        })
        .finally(() => {
          this.dropping.delete(scope)
          if (this.closed) return
          this.emitter.emit('scopes', { scopes: this.heldScopes() })
          // Granted again meanwhile: open it afresh, now that the old data is gone.
          void this.openHeldScopes()
        })
      this.dropping.set(scope, dropping)
    }
  }

  /** Open (load + attach) a replica for every held scope that has none yet. */
  private async openHeldScopes(): Promise<void> {
    const added: string[] = []
    for (const scope of this.heldScopes()) {
      if (this.scopeReplicas.has(scope) || this.opening.has(scope) || this.dropping.has(scope)) continue
      if (!this.keyring.knowsRoom(scope)) continue
      const opening = this.openScope(scope).finally(() => this.opening.delete(scope))
      this.opening.set(scope, opening)
      added.push(scope)
    }
    await Promise.all(added.map((s) => this.opening.get(s)))
    if (added.length > 0 && !this.closed) this.emitter.emit('scopes', { scopes: this.heldScopes() })
  }

  private async openScope(scope: string): Promise<void> {
    // Epoch freshness never refuses what this replica applied before (WIRE.md "Keys and epochs").
    let opened: Replica | undefined
    const replica = new Replica({
      ...replicaOptions(scope, this.keyring, this.storage, this.sync),
      directory: this.registry.directoryFor(scope, this.keyring.roomId(scope), { applied: (senderId, seq) => opened?.hasApplied(senderId, seq) === true }),
      signer: { sender: this.device.deviceIdBytes, senderId: this.device.deviceId, signSecretKey: this.device.signSecretKey },
      onApplied: (senderId) => this.registry.sawSender(senderId),
    })
    opened = replica
    if (this.deferCompaction) replica.tune({ deferCompaction: true })
    await replica.load()
    if (this.closed) {
      await replica.close()
      return
    }
    this.scopeReplicas.set(scope, replica)
    this.wireReplica(replica)
    for (const watch of this.replicaWatchers) watch(replica)
  }

  private wireReplica(replica: Replica): void {
    replica.events.on('rejected', (e) => this.emitter.emit('rejected', e))
    replica.events.on('held', (e) => this.emitter.emit('held', e))
    replica.events.on('storage-error', ({ error, scope }) => this.emitter.emit('storage-error', { code: 'storage-error', error, scope }))
    if (isDeviceLocal(replica.scope) || this.revoked) return
    if (replica.scope === REGISTRY_SCOPE) return this.attachTransports(replica)
    void this.registryArrived.then(() => {
      if (!this.closed && !this.revoked && this.scopeReplicas.get(replica.scope) === replica) this.attachTransports(replica)
    })
  }

  private attachTransports(replica: Replica): void {
    const list: TransportAttachment[] = []
    for (const transport of this.transports) {
      const attachment = transport.attach({
        roomId: replica.roomId,
        doc: replica.outer,
        awareness: replica.awareness,
        token: ({ audience }) => this.accessToken(replica.roomId, { audience }),
      })
      attachment.on('status', ({ status }) => this.emitter.emit('status', { scope: replica.scope, transport: transport.kind, status }))
      attachment.on('error', ({ code, message }) => this.emitter.emit('transport-error', { scope: replica.scope, transport: transport.kind, code, message }))
      list.push(attachment)
    }
    this.attachments.set(replica.scope, list)
  }

  private startRetention(): void {
    const every = this.sync.retentionSweepMs ?? 60_000
    void this.scopes.enforceRetention()
    this.retentionTimer = setInterval(() => void this.scopes.enforceRetention(), every)
    // A background sweep must not keep a process (a CLI, a test) alive.
    const timer = this.retentionTimer as { unref?: () => void }
    timer.unref?.()
  }
}
