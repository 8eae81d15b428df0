/**
 * `dev.presence`: which of the person's devices are online, what each is doing (driving, walking,
 * at the desk…) and which session it is in. Presence travels as encrypted, signed presence
 * envelopes over y-protocols awareness of the personal scope's sealed log (see
 * `src/sync/presence.ts`); relays see only `{ e: <envelope> }`.
 *
 * A device is online while its awareness state is present *and* it keeps sending fresh presence:
 * it re-seals every 14 s, and a device that sent nothing new for 30 s (y-protocols' awareness
 * `outdatedTimeout`) is offline — so a replayed or frozen state cannot keep a device "online".
 * Closing a device removes its state: the others see it offline at once.
 *
 * @module
 */
import { outdatedTimeout } from 'y-protocols/awareness'
import { RejectCode, type RejectCode as RejectCodeType } from '../crypto/codes.js'
import type { Replica } from '../sync/replica.js'
import { MAX_PRESENCE_FIELD, openPresence, PresenceSeqs, type PresenceKeys, type PresencePayload } from '../sync/presence.js'
import { Emitter } from '../util/emitter.js'
import { ValidationError } from '../errors.js'
import { unref } from '../util/timers.js'
import type { DeviceContext } from './device-context.js'
import { presenceKeys, PresencePublisher, Throttle } from './presence-state.js'
import { requireObject } from './check-args.js'

/** What a device is doing. Well-known values, or any short string of the app's. */
export type PresenceActivity = 'driving' | 'walking' | 'cycling' | 'running' | 'at-desk' | 'in-meeting' | 'idle' | (string & {})

/** One device as presence shows it. */
export interface PresenceEntry {
  deviceId: string
  /** Device kind and name, from its certificate. */
  kind: string
  name: string
  online: boolean
  /** True for this device. */
  self: boolean
  activity?: PresenceActivity
  activeSessionId?: string
  /** The device's clock when it last sent presence (ms). */
  updatedAt?: number
}

/** A device's presence changed. */
export interface PresenceChange {
  deviceId: string
  entry: PresenceEntry
  previous?: PresenceEntry
}

/** Events of {@link PresenceApi}. */
export interface PresenceEvents {
  change: (event: PresenceChange) => void
}

/** Tuning of {@link PresenceApi} (tests use shorter times). */
export interface PresenceOptions {
  /** A device that sent no fresh presence for this long is offline. Default 30 000 (y-protocols). */
  timeoutMs?: number
  /** How often this device re-seals its presence. Default 14 000 (just under half the timeout). */
  heartbeatMs?: number
  /**
   * Called with each peer's verified announcement of its latest personal-scope log seq (the
   * withholding check, `SyncMonitor`).
   */
  onLogSeq?: (scope: string, deviceId: string, logSeq: number, tip?: { client: number; clock: number }) => void
  /** Smallest gap between two re-announcements after local writes. Default 1 000 ms. */
  announceDelayMs?: number
}

/** The scope whose awareness carries presence: every device holds it. */
export const PRESENCE_SCOPE = 'personal'

interface Peer {
  payload: PresencePayload
  /** Awareness clients currently carrying this device's presence. */
  clients: Set<number>
  /** Local time the last *new* envelope (higher seq) arrived. */
  freshAt: number
}

/** Presence of the account's devices. */
export class PresenceApi {
  private readonly emitter = new Emitter<PresenceEvents>()
  private readonly peers = new Map<string, Peer>()
  private readonly clientDevice = new Map<number, string>()
  /** States from senders or epochs not known yet, retried when the registry changes. */
  private readonly held = new Map<number, unknown>()
  /** Last refused state per client, so a renewal of the same bad state is counted once. */
  private readonly refused = new Map<number, string>()
  private readonly seqs = new PresenceSeqs()
  private readonly lastEmitted = new Map<string, string>()
  private readonly timeoutMs: number
  private heartbeatMs: number
  private replica: Replica | undefined
  private local: { activity?: string; activeSessionId?: string } = {}
  private publisher: PresencePublisher | undefined
  private announce: Throttle | undefined
  private heartbeat: ReturnType<typeof setInterval> | undefined
  private checker: ReturnType<typeof setInterval> | undefined
  private readonly onLogSeq: PresenceOptions['onLogSeq']
  private readonly announceDelayMs: number
  private offRegistry: (() => void) | undefined
  private offSealed: (() => void) | undefined
  private closed = false

  /** @internal built by `ContextSync`. */
  constructor(private readonly context: DeviceContext, options: PresenceOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? outdatedTimeout
    this.heartbeatMs = options.heartbeatMs ?? Math.max(1, this.timeoutMs / 2 - 1000)
    this.onLogSeq = options.onLogSeq
    this.announceDelayMs = options.announceDelayMs ?? 1_000
    context.eachReplica((replica) => {
      if (replica.scope === PRESENCE_SCOPE && !this.replica) this.attach(replica)
    })
    this.offRegistry = context.registry.events.on('change', () => this.retryHeld())
  }

  /**
   * Every device of the account with its presence (this device first), by what this device has
   * heard. Devices never seen online are listed offline.
   *
   * @example
   * ```ts
   * phone.presence.list()
   * // [{ deviceId, kind: 'phone', name: 'My phone', online: true, self: true, activity: 'walking' },
   * //  { deviceId, kind: 'car', name: 'Car', online: true, self: false, activity: 'driving', activeSessionId }]
   * ```
   */
  list(): PresenceEntry[] {
    this.context.assertOpen()
    const me = this.context.deviceId
    const ids = new Set<string>([me])
    for (const certificate of this.context.registry.list()) {
      if (!this.context.registry.revocation(certificate.deviceId)) ids.add(certificate.deviceId)
    }
    for (const id of this.peers.keys()) if (!this.context.registry.revocation(id)) ids.add(id)
    return [...ids].map((id) => this.entry(id, Date.now()))
  }

  /** One device's presence. */
  get(deviceId: string): PresenceEntry | undefined {
    this.context.assertOpen()
    return this.list().find((e) => e.deviceId === deviceId)
  }

  /**
   * Say what this device is doing and which session it is in (`null` clears a field). Sent at once,
   * sealed, to every device of the account.
   *
   * @example
   * ```ts
   * car.presence.set({ activity: 'driving', activeSessionId: s.id })
   * ```
   */
  set(update: { activity?: PresenceActivity | null; activeSessionId?: string | null }): void {
    this.context.assertOpen()
    const fields = requireObject(update, 'presence.set(update)')
    const next = { ...this.local }
    for (const key of ['activity', 'activeSessionId'] as const) {
      const value = fields[key]
      if (value === undefined) continue
      if (value === null) {
        delete next[key]
        continue
      }
      if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PRESENCE_FIELD) {
        throw new ValidationError(`${key} must be a non-empty string of at most ${MAX_PRESENCE_FIELD} characters, or null`)
      }
      next[key] = value
    }
    this.local = next
    this.publish()
    this.emitIfChanged(this.context.deviceId, Date.now())
  }

  /** Subscribe to presence changes. Returns an unsubscribe function. */
  on<E extends keyof PresenceEvents>(event: E, listener: PresenceEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /**
   * @internal Re-seal presence every `ms` from now on (a device's power profile: a slower
   * heartbeat wakes the radio less; keep it under the peers' timeout, default 30 000).
   */
  setHeartbeat(ms: number): void {
    if (!Number.isFinite(ms) || ms < 1) throw new ValidationError('the presence heartbeat must be a positive number of ms')
    this.heartbeatMs = ms
    if (!this.heartbeat || this.closed) return
    clearInterval(this.heartbeat)
    this.heartbeat = setInterval(() => this.publish(), ms)
    unref(this.heartbeat)
  }

  /** @internal Withdraw this device's presence and stop. */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.heartbeat) clearInterval(this.heartbeat)
    if (this.checker) clearInterval(this.checker)
    this.announce?.cancel()
    this.offRegistry?.()
    this.offSealed?.()
    // Best effort: announce the removal while transports are still attached.
    if (this.replica) this.replica.awareness.setLocalState(null)
    this.emitter.clear()
  }

  // ── internals ─────────────────────────────────────────────────────────────

  private attach(replica: Replica): void {
    if (this.closed) return
    this.replica = replica
    const awareness = replica.awareness
    awareness.on('update', ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }) => {
      if (this.closed) return
      const now = Date.now()
      for (const client of [...added, ...updated]) this.ingest(client, awareness.getStates().get(client), now)
      for (const client of removed) this.drop(client, now)
    })
    for (const [client, state] of awareness.getStates()) this.ingest(client, state, Date.now())
    this.publisher = new PresencePublisher(this.context, replica)
    this.publish()
    // New own envelopes are announced soon (their seq is what peers check for withholding).
    const publisher = this.publisher
    if (publisher) {
      const announce = (this.announce = new Throttle(this.announceDelayMs, () => publisher.publishedAt, () => this.publish()))
      this.offSealed = replica.events.on('sealed', () => announce.schedule())
    }
    this.heartbeat = setInterval(() => this.publish(), this.heartbeatMs)
    this.checker = setInterval(() => this.checkTimeouts(), Math.max(1, Math.floor(this.timeoutMs / 10)))
    unref(this.heartbeat)
    unref(this.checker)
  }

  private publish(): void {
    if (!this.replica || !this.publisher || this.closed) return
    const logSeq = this.replica.latestOwnSeq()
    const tip = this.replica.latestOwnTip()
    this.publisher.publish({ ...this.local, ...(logSeq > 0 && { logSeq }), ...(tip.clock > 0 && { tip }) })
  }

  private keys(): PresenceKeys | undefined {
    return this.replica ? presenceKeys(this.context, this.replica) : undefined
  }

  private ingest(client: number, state: unknown, now: number): void {
    const replica = this.replica
    if (!replica || client === replica.awareness.clientID) return
    this.held.delete(client)
    const keys = this.keys()
    if (!keys) return
    if (state === null || state === undefined) return this.drop(client, now)
    const opened = openPresence(state, keys)
    if (!opened.ok) {
      if ('held' in opened) {
        this.held.set(client, state)
        return
      }
      return this.refuse(client, state, opened.code, opened.reason)
    }
    const { senderId } = opened.value
    // Our own presence under another client id (this device before a restart, still held by a
    // relay until its awareness times out): nothing to show.
    if (senderId === this.context.deviceId) return
    const verdict = this.seqs.check(opened.value)
    if (verdict === 'stale') return
    if (verdict === 'replay') return this.refuse(client, state, RejectCode.Replay, `presence seq ${opened.value.seq} is not newer than the last one`, senderId)
    this.refused.delete(client)
    const previousDevice = this.clientDevice.get(client)
    if (previousDevice !== undefined && previousDevice !== senderId) this.detach(client, previousDevice, now)
    let peer = this.peers.get(senderId)
    if (!peer) this.peers.set(senderId, (peer = { payload: opened.value.payload, clients: new Set(), freshAt: now }))
    if (verdict === 'new') {
      peer.payload = opened.value.payload
      peer.freshAt = now
    }
    peer.clients.add(client)
    this.clientDevice.set(client, senderId)
    const { logSeq, tip } = opened.value.payload
    if (logSeq !== undefined) this.onLogSeq?.(PRESENCE_SCOPE, senderId, logSeq, tip)
    this.emitIfChanged(senderId, now)
  }

  private drop(client: number, now: number): void {
    this.held.delete(client)
    this.refused.delete(client)
    const deviceId = this.clientDevice.get(client)
    if (deviceId !== undefined) this.detach(client, deviceId, now)
  }

  private detach(client: number, deviceId: string, now: number): void {
    this.clientDevice.delete(client)
    this.peers.get(deviceId)?.clients.delete(client)
    this.emitIfChanged(deviceId, now)
  }

  private refuse(client: number, state: unknown, code: RejectCodeType, reason: string, senderId?: string): void {
    const signature = JSON.stringify(state) ?? ''
    if (this.refused.get(client) === signature) return
    this.refused.set(client, signature)
    const replica = this.replica
    if (!replica) return
    // Counted with the personal scope's rejections, so `dev.rejectionCounts()` and
    // `dev.on('rejected')` report presence refusals like any other.
    replica.rejections.set(code, (replica.rejections.get(code) ?? 0) + 1)
    replica.events.emit('rejected', {
      code,
      reason: `presence: ${reason}`,
      scope: replica.scope,
      roomId: replica.roomId,
      source: 'presence',
      ...(senderId !== undefined && { senderId }),
    })
  }

  private retryHeld(): void {
    if (this.closed || !this.replica) return
    const now = Date.now()
    // The personal scope's key may just have arrived (a device that joined), or moved to a new epoch
    // (a revocation): announce ourselves under the current key, so a revoked device cannot read it.
    if (this.publisher?.epoch !== this.context.keyring.currentEpoch(PRESENCE_SCOPE)) this.publish()
    // A revoked device is gone from presence, whatever its awareness state says.
    for (const [deviceId, peer] of [...this.peers]) {
      if (!this.context.registry.revocation(deviceId)) continue
      for (const client of peer.clients) this.clientDevice.delete(client)
      this.peers.delete(deviceId)
      this.emitIfChanged(deviceId, now)
    }
    for (const [client, state] of [...this.held]) this.ingest(client, state, now)
    // Devices newly certified show up (offline) in list(); tell listeners about names/kinds too.
    for (const deviceId of this.peers.keys()) this.emitIfChanged(deviceId, now)
  }

  private checkTimeouts(): void {
    if (this.closed) return
    const now = Date.now()
    for (const deviceId of this.peers.keys()) this.emitIfChanged(deviceId, now)
  }

  private entry(deviceId: string, now: number): PresenceEntry {
    const self = deviceId === this.context.deviceId
    const certificate = this.context.registry.certificate(deviceId)
    const entry: PresenceEntry = {
      deviceId,
      kind: certificate?.kind ?? 'other',
      name: certificate?.name ?? '',
      online: false,
      self,
    }
    if (self) {
      entry.online = !this.closed
      if (this.local.activity !== undefined) entry.activity = this.local.activity
      if (this.local.activeSessionId !== undefined) entry.activeSessionId = this.local.activeSessionId
      return entry
    }
    const peer = this.peers.get(deviceId)
    if (!peer) return entry
    entry.online = peer.clients.size > 0 && now - peer.freshAt < this.timeoutMs
    if (entry.online) {
      if (peer.payload.activity !== undefined) entry.activity = peer.payload.activity
      if (peer.payload.activeSessionId !== undefined) entry.activeSessionId = peer.payload.activeSessionId
      entry.updatedAt = peer.payload.at
    }
    return entry
  }

  private emitIfChanged(deviceId: string, now: number): void {
    const entry = this.entry(deviceId, now)
    const key = JSON.stringify([entry.online, entry.activity, entry.activeSessionId, entry.kind, entry.name])
    const before = this.lastEmitted.get(deviceId)
    if (before === key) return
    const previous = this.previous.get(deviceId)
    this.lastEmitted.set(deviceId, key)
    this.previous.set(deviceId, entry)
    const change: PresenceChange = { deviceId, entry }
    if (previous) change.previous = previous
    this.emitter.emit('change', change)
  }

  private readonly previous = new Map<string, PresenceEntry>()
}
