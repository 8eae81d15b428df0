/**
 * `dev.sessions`: conversations that continue across devices. A session lives in the inner doc of
 * its scope; its turns are made of typed parts (text, reasoning, tool calls and results, file
 * references, data); an assistant turn can be streamed chunk by chunk and other devices watch it
 * arrive. One device at a time holds the conversation (a lease); `handoff` offers it to another
 * device, which accepts or declines.
 *
 * @module
 */
import * as Y from 'yjs'
import {
  childMap,
  insertSession,
  leaseOf,
  maxTerm,
  offerMap,
  readClaims,
  readOffers,
  readSession,
  respondToOffer,
  SESSION_STATUSES,
  sessionMap,
  sessionsMap,
  type Claim,
  type HandoffInfo,
  type HandoffStatus,
  type RawOffer,
  type Session,
} from '../crdt/sessions.js'
import { ClosedError, NotFoundError, ValidationError } from '../errors.js'
import type { Replica } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import { kindOf, type DeviceIdentity } from './identity.js'
import { randomId } from './ids.js'
import type { ScopeReplicas } from './memory.js'
import { MAX_TIMER_MS } from '../util/timers.js'
import { SessionHandle } from './session-handle.js'
import { leaseOption } from './session-parts.js'
import {
  DEFAULT_LEASE_MS,
  type ActiveDeviceChange,
  type HandoffUpdate,
  type SessionChange,
  type SessionListQuery,
} from './session-api-types.js'
import { optionalLimit, requireId, requireObject, requireOneOf, requireText } from './check-args.js'

export type {
  Session,
  Turn,
  TurnRole,
  TurnPart,
  SessionLease,
  SessionStatus,
  HandoffInfo,
  HandoffStatus,
} from '../crdt/sessions.js'
export {
  DEFAULT_HANDOFF_EXPIRY_MS,
  DEFAULT_LEASE_MS,
  MAX_HANDOFF_PAYLOAD_BYTES,
  MAX_PARTS,
  type ActiveDeviceChange,
  type AppendInput,
  type HandoffUpdate,
  type SessionChange,
  type SessionListQuery,
  type TurnPartInput,
} from './session-api-types.js'
export { SessionHandle } from './session-handle.js'
export { HandoffOffer } from './handoff-offer.js'
export { TurnStream } from './turn-stream.js'
export { requirePart } from './session-parts.js'

/** What {@link HandoffRequest.accept} and {@link HandoffRequest.decline} did. */
export interface HandoffOutcome {
  /** The offer's status after the answer (by this device's view). */
  status: HandoffStatus
  /** The lease winner now (by this device's view; concurrent claims settle as devices sync). */
  activeDevice: string
  /** The session, to continue it (after an accept). */
  session?: SessionHandle
}

/** A handoff offered to this device: answer it with `accept()` or `decline()`. */
export interface HandoffRequest extends HandoffInfo {
  /** Kind and name of the offering device (from its certificate). */
  fromKind: string
  fromName: string
  /** The session's title. */
  title: string
  /** Take the session: this device becomes its active device (a lease of `leaseMs`, default 10 min). */
  accept(options?: { leaseMs?: number }): Promise<HandoffOutcome>
  /** Refuse it; the offering device gets `handoff-declined`. */
  decline(): Promise<HandoffOutcome>
}

/** Events of {@link SessionsApi}. */
export interface SessionsEvents {
  /** A session or its turns changed (local or synced). */
  change: (event: SessionChange) => void
  /** A handoff was offered to this device (by id or by kind). Delivered once per offer. */
  handoff: (event: HandoffRequest) => void
  /** An offer was accepted. */
  'handoff-accepted': (event: HandoffUpdate) => void
  /** An offer was declined. */
  'handoff-declined': (event: HandoffUpdate) => void
  /** An offer expired unanswered. */
  'handoff-expired': (event: HandoffUpdate) => void
  /** The offering device withdrew an offer. */
  'handoff-cancelled': (event: HandoffUpdate) => void
  /** Another device became the active device of a session. */
  'active-device': (event: ActiveDeviceChange) => void
}

interface OfferWaiter {
  resolve: (offer: HandoffInfo) => void
  reject: (error: unknown) => void
}

/** Conversations. */
export class SessionsApi {
  private readonly emitter = new Emitter<SessionsEvents>()
  /** Last derived status of every offer seen. */
  private readonly offerStatus = new Map<string, HandoffStatus>()
  /** Offers delivered to this device's `handoff` listeners. */
  private readonly delivered = new Set<string>()
  /** Last lease winner of every session seen. */
  private readonly winners = new Map<string, string>()
  /** Sessions with pending offers, to re-derive when one expires. */
  private readonly pendingSessions = new Map<string, Replica>()
  private readonly offerWaiters = new Map<string, OfferWaiter[]>()
  /** Callers of {@link whenAvailable} waiting for a session to arrive. */
  private readonly arrivals = new Set<{ id: string; settle: (error?: Error) => void }>()
  private expiryTimer: ReturnType<typeof setTimeout> | undefined
  private expiryAt = Infinity
  private offRegistry: (() => void) | undefined
  private closed = false

  /** @internal built by `ContextSync`. */
  constructor(
    /** @internal */ readonly scopes: ScopeReplicas,
    /** @internal */ readonly identity?: DeviceIdentity,
  ) {
    // Scopes granted while the device runs get their replica later; watch those too.
    scopes.eachReplica((replica) => this.watch(replica))
    // Offers addressed by kind depend on certificates: re-derive when the registry changes.
    this.offRegistry = identity?.registry.events.on('change', () => {
      for (const replica of this.scopes.replicas()) this.refresh(replica, [...sessionsMap(replica.inner).keys()], true)
    })
  }

  /**
   * Start a session on this device (it becomes the active device, with a lease). Synchronous: the
   * returned handle is usable at once; its first awaited write also makes the session durable.
   *
   * @example
   * ```ts
   * const s = glasses.sessions.start({ scope: 'personal', title: 'Lunch plans' })
   * await s.append({ role: 'user', text: 'Find a quiet place for lunch' })
   * ```
   */
  start(options: { scope?: string; title?: string; summary?: string } = {}): SessionHandle {
    this.scopes.assertOpen()
    const fields = requireObject(options, 'start(options)')
    const replica = this.scopes.replica(fields.scope ?? 'personal')
    const title = fields.title === undefined ? '' : requireText(fields.title, 'title', { allowEmpty: true })
    const summary = fields.summary === undefined ? undefined : requireText(fields.summary, 'summary', { allowEmpty: true })
    const id = randomId()
    const now = Date.now()
    replica.inner.transact(() =>
      insertSession(replica.inner, {
        id,
        title,
        scope: replica.scope,
        createdAt: now,
        ...(summary !== undefined && { summary }),
        claim: { deviceId: this.scopes.deviceId, until: now + DEFAULT_LEASE_MS },
      }),
    )
    return new SessionHandle(id, replica, this)
  }

  /** A handle for an existing session. Throws `NotFoundError` when it is not on this device. */
  open(id: string): SessionHandle {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const replica = this.locate(id)
    if (!replica) throw new NotFoundError(`no session with id '${id}' on this device`)
    return new SessionHandle(id, replica, this)
  }

  /**
   * A handle for a session once it is on this device — at once when it is, else as soon as it
   * syncs in (started on another device a moment ago). Rejects with `NotFoundError` after
   * `timeoutMs` (default 30 s) and with `ClosedError` when the device closes; never keeps a
   * process alive by itself.
   *
   * @example
   * ```ts
   * const s = glasses.sessions.start({ title: 'Directions' })
   * const onPhone = await phone.sessions.whenAvailable(s.id)   // continue where the glasses left off
   * ```
   */
  async whenAvailable(id: string, options: { timeoutMs?: number } = {}): Promise<SessionHandle> {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const timeoutMs = options.timeoutMs ?? 30_000
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new ValidationError('timeoutMs must be a non-negative number of milliseconds')
    if (this.locate(id)) return this.open(id)
    return new Promise<SessionHandle>((resolve, reject) => {
      const timer = setTimeout(() => waiter.settle(new NotFoundError(`no session with id '${id}' arrived within ${timeoutMs} ms`)), timeoutMs)
      ;(timer as { unref?: () => void }).unref?.()
      const waiter = {
        id,
        settle: (error?: Error) => {
          clearTimeout(timer)
          this.arrivals.delete(waiter)
          if (error) reject(error)
          else resolve(this.open(id))
        },
      }
      this.arrivals.add(waiter)
    })
  }

  /** The session with its turns, or `undefined`. Synchronous, local. */
  get(id: string): Session | undefined {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const replica = this.locate(id)
    return replica && this.read(replica, id)
  }

  /** Sessions this device holds (optionally of one scope and/or status), most recently updated first. */
  list(query: SessionListQuery = {}): Session[] {
    this.scopes.assertOpen()
    const fields = requireObject(query, 'list(query)')
    const replicas = fields.scope === undefined ? this.scopes.replicas() : [this.scopes.replica(fields.scope)]
    const status = fields.status === undefined ? undefined : requireOneOf(fields.status, SESSION_STATUSES, 'status')
    const limit = optionalLimit(fields.limit, 'limit', Infinity)
    const headers: Array<{ replica: Replica; id: string; updatedAt: number }> = []
    for (const replica of replicas) {
      sessionsMap(replica.inner).forEach((map, id) => {
        const updatedAt = map.get('updatedAt')
        if (typeof updatedAt !== 'number') return
        if (status !== undefined && (map.get('status') === 'archived' ? 'archived' : 'active') !== status) return
        headers.push({ replica, id, updatedAt })
      })
    }
    headers.sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1))
    const out: Session[] = []
    for (const { replica, id } of headers) {
      if (out.length >= limit) break
      const session = this.read(replica, id)
      if (session) out.push(session)
    }
    return out
  }

  /** Handoff offers addressed to this device that are still pending. */
  pendingHandoffs(): HandoffRequest[] {
    this.scopes.assertOpen()
    const out: HandoffRequest[] = []
    for (const replica of this.scopes.replicas()) {
      sessionsMap(replica.inner).forEach((_map, id) => {
        for (const info of this.offersOf(replica, id)) if (info.status === 'pending' && this.addressedToMe(info)) out.push(this.request(replica, info))
      })
    }
    return out
  }

  /**
   * Delete a session everywhere and compact its scope's sealed log, so its turns leave every sealed
   * log (like `memory.forget`). Resolves `false` when there was no such session.
   */
  async forget(id: string): Promise<boolean> {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const replica = this.locate(id)
    if (!replica) return false
    replica.inner.transact(() => sessionsMap(replica.inner).delete(id))
    await replica.compactNow({ erasing: true })
    return true
  }

  /**
   * Subscribe to session events. Returns an unsubscribe function. Subscribing to `handoff`
   * delivers the pending offers for this device that no listener has seen yet.
   *
   * @example
   * ```ts
   * car.sessions.on('handoff', async (e) => {
   *   if (e.fromKind === 'glasses') await e.accept()
   *   else await e.decline()
   * })
   * ```
   */
  on<E extends keyof SessionsEvents>(event: E, listener: SessionsEvents[E]): () => void {
    const off = this.emitter.on(event, listener)
    if (event === 'handoff') queueMicrotask(() => this.deliverPending())
    return off
  }

  /** @internal */
  close(): void {
    this.closed = true
    this.offRegistry?.()
    if (this.expiryTimer) clearTimeout(this.expiryTimer)
    this.expiryTimer = undefined
    for (const waiters of this.offerWaiters.values()) for (const w of waiters) w.reject(new ClosedError())
    this.offerWaiters.clear()
    for (const waiter of [...this.arrivals]) waiter.settle(new ClosedError())
    this.emitter.clear()
  }

  // ── internal, used by handles ───────────────────────────────────────────────

  /** @internal */
  read(replica: Replica, id: string): Session | undefined {
    const now = Date.now()
    return readSession(id, sessionsMap(replica.inner).get(id), {
      now,
      scope: replica.scope,
      offers: (raw, claims) => raw.map((offer) => this.derive(offer, claims, now, id, replica.scope)).sort((a, b) => a.createdAt - b.createdAt),
    })
  }

  /** @internal The derived view of one session's offers. */
  offersOf(replica: Replica, sessionId: string): HandoffInfo[] {
    const map = sessionMap(replica.inner, sessionId)
    if (!map) return []
    const claims = readClaims(map)
    const now = Date.now()
    return readOffers(map).map((offer) => this.derive(offer, claims, now, sessionId, replica.scope))
  }

  /** @internal Resolves once the offer is no longer pending. */
  settled(replica: Replica, sessionId: string, offerId: string): Promise<HandoffInfo> {
    const current = this.offersOf(replica, sessionId).find((o) => o.id === offerId)
    if (!current) return Promise.reject(new NotFoundError(`no handoff offer '${offerId}' on this device`))
    if (current.status !== 'pending') return Promise.resolve(current)
    if (this.closed) return Promise.reject(new ClosedError())
    return new Promise((resolve, reject) => {
      let list = this.offerWaiters.get(offerId)
      if (!list) this.offerWaiters.set(offerId, (list = []))
      list.push({ resolve, reject })
    })
  }

  /** @internal Kind of a device per the registry (undefined when unknown or without identity). */
  kindOf(deviceId: string): string | undefined {
    return this.identity ? kindOf(this.identity, deviceId) : undefined
  }

  /** @internal Answer an offer on this device. */
  async answer(replica: Replica, sessionId: string, offerId: string, action: 'accept' | 'decline', leaseMs: number): Promise<HandoffOutcome> {
    this.scopes.assertOpen()
    const me = this.scopes.deviceId
    const map = sessionMap(replica.inner, sessionId)
    if (!map) throw new NotFoundError(`session '${sessionId}' no longer exists on this device`)
    const info = this.offersOf(replica, sessionId).find((o) => o.id === offerId)
    if (!info) throw new NotFoundError(`no handoff offer '${offerId}' on this device`)
    const now = Date.now()
    const outcome = (): HandoffOutcome => {
      const after = this.offersOf(replica, sessionId).find((o) => o.id === offerId)
      const result: HandoffOutcome = {
        status: after?.status ?? info.status,
        activeDevice: leaseOf(readClaims(map), Date.now())?.deviceId ?? '',
      }
      if (action === 'accept' && result.status === 'accepted') result.session = new SessionHandle(sessionId, replica, this)
      return result
    }
    if (info.status !== 'pending' || now >= info.expiresAt || !this.addressedToMe(info)) return outcome()
    replica.inner.transact(() => {
      const offer = offerMap(map, offerId)
      if (!offer) return
      respondToOffer(offer, me, action, now)
      if (action === 'accept') {
        const claims = childMap(map, 'claims')
        const claim: Claim = { term: maxTerm(readClaims(map)) + 1, at: now, until: now + leaseMs, span: leaseMs, offer: offerId }
        claims.set(me, claim)
        map.set('updatedAt', now)
      }
    })
    await replica.whenFlushed()
    return outcome()
  }

  // ── watching ──────────────────────────────────────────────────────────────

  private locate(id: string): Replica | undefined {
    return this.scopes.replicas().find((r) => sessionsMap(r.inner).has(id))
  }

  private watch(replica: Replica): void {
    const sessions = sessionsMap(replica.inner)
    this.refresh(replica, [...sessions.keys()], false)
    sessions.observeDeep((events, transaction) => {
      const origin = transaction.local ? 'local' : 'remote'
      const changed = new Map<string, Set<string>>()
      const touch = (id: string): Set<string> => {
        let set = changed.get(id)
        if (!set) changed.set(id, (set = new Set()))
        return set
      }
      for (const event of events) {
        if (event.target === sessions) {
          for (const id of (event as Y.YMapEvent<unknown>).keysChanged) touch(id)
          continue
        }
        const id = event.path[0]
        if (typeof id !== 'string') continue
        const turnIds = touch(id)
        if (event.path[1] !== 'turns') continue
        if (event.path.length === 2) {
          for (const item of event.changes.added) {
            for (const content of item.content.getContent()) {
              if (content instanceof Y.Map && typeof content.get('id') === 'string') turnIds.add(content.get('id') as string)
            }
          }
        } else if (typeof event.path[2] === 'number') {
          const turn = (sessions.get(id)?.get('turns') as Y.Array<unknown> | undefined)?.get(event.path[2])
          if (turn instanceof Y.Map && typeof turn.get('id') === 'string') turnIds.add(turn.get('id') as string)
        }
      }
      for (const [id, turnIds] of changed) {
        const change: SessionChange = { id, scope: replica.scope, origin }
        if (turnIds.size > 0) change.turnIds = [...turnIds]
        this.emitter.emit('change', change)
      }
      for (const waiter of [...this.arrivals]) if (changed.has(waiter.id) && this.locate(waiter.id)) waiter.settle()
      this.refresh(replica, [...changed.keys()], true)
    })
  }

  /** Re-derive leases and offers of some sessions; emit what changed (unless initial). */
  private refresh(replica: Replica, ids: string[], emit: boolean): void {
    if (this.closed) return
    const now = Date.now()
    for (const id of ids) {
      const map = sessionMap(replica.inner, id)
      if (!map) {
        this.winners.delete(id)
        this.pendingSessions.delete(id)
        continue
      }
      const claims = readClaims(map)
      const lease = leaseOf(claims, now)
      const previous = this.winners.get(id)
      if (lease && lease.deviceId !== previous) {
        this.winners.set(id, lease.deviceId)
        if (emit && previous !== undefined) {
          this.emitter.emit('active-device', { sessionId: id, scope: replica.scope, deviceId: lease.deviceId, previous, lease })
        }
      }
      let pending = false
      for (const raw of readOffers(map)) {
        const info = this.derive(raw, claims, now, id, replica.scope)
        const before = this.offerStatus.get(info.id)
        if (info.status === 'pending') {
          pending = true
          this.armExpiry(info.expiresAt)
        }
        if (before === info.status) continue
        this.offerStatus.set(info.id, info.status)
        if (info.status !== 'pending') {
          const waiters = this.offerWaiters.get(info.id)
          this.offerWaiters.delete(info.id)
          for (const w of waiters ?? []) w.resolve(info)
        }
        if (!emit || before === undefined || info.status === 'pending') continue
        this.emitter.emit(`handoff-${info.status}`, { offer: info })
      }
      if (pending) this.pendingSessions.set(id, replica)
      else this.pendingSessions.delete(id)
    }
    this.deliverPending(ids.length > 0 ? ids : undefined)
  }

  /** Emit `handoff` for pending offers to this device no listener has seen yet. */
  private deliverPending(ids?: string[]): void {
    if (this.closed || this.emitter.listenerCount('handoff') === 0) return
    for (const replica of this.scopes.replicas()) {
      const sessionIds = ids ?? [...sessionsMap(replica.inner).keys()]
      for (const id of sessionIds) {
        if (!sessionsMap(replica.inner).has(id)) continue
        for (const info of this.offersOf(replica, id)) {
          if (info.status !== 'pending' || this.delivered.has(info.id) || !this.addressedToMe(info)) continue
          this.delivered.add(info.id)
          this.emitter.emit('handoff', this.request(replica, info))
        }
      }
    }
  }

  private request(replica: Replica, info: HandoffInfo): HandoffRequest {
    const certificate = this.identity?.registry.certificate(info.from)
    const map = sessionMap(replica.inner, info.sessionId)
    const title = map?.get('title')
    return {
      ...info,
      fromKind: certificate?.kind ?? 'other',
      fromName: certificate?.name ?? '',
      title: typeof title === 'string' ? title : '',
      accept: (options) => {
        const leaseMs = leaseOption(options)
        return this.answer(replica, info.sessionId, info.id, 'accept', leaseMs)
      },
      decline: () => this.answer(replica, info.sessionId, info.id, 'decline', 0),
    }
  }

  private addressedToMe(info: HandoffInfo): boolean {
    const me = this.scopes.deviceId
    if (info.from === me) return false
    if (!info.toKind) return info.to === me
    const mine = this.kindOf(me)
    return mine === undefined ? false : mine === info.to
  }

  /** Derive an offer's status from its answers, the claims and the clock (same result everywhere). */
  private derive(offer: RawOffer, claims: Map<string, Claim>, now: number, sessionId: string, scope: string): HandoffInfo {
    const eligible = (deviceId: string): boolean => {
      if (deviceId === offer.from) return false
      if (!offer.toKind) return deviceId === offer.to
      const kind = this.kindOf(deviceId)
      return kind === undefined ? !this.identity : kind === offer.to
    }
    const info: HandoffInfo = {
      id: offer.id,
      sessionId,
      scope,
      from: offer.from,
      to: offer.to,
      toKind: offer.toKind,
      createdAt: offer.createdAt,
      expiresAt: offer.expiresAt,
      status: 'pending',
    }
    if (offer.payload !== undefined) info.payload = offer.payload
    if (offer.link !== undefined) info.link = offer.link
    const answers = [...offer.responses].filter(([deviceId, r]) => eligible(deviceId) && r.at <= offer.expiresAt)
    const accepts = answers.filter(([, r]) => r.action === 'accept' && (offer.cancelledAt === undefined || r.at < offer.cancelledAt))
    if (accepts.length > 0) {
      // Several accepters (an offer to a kind): the one whose claim ranks highest.
      const rank = (deviceId: string): number => (claims.get(deviceId)?.offer === offer.id ? claims.get(deviceId)!.term : 0)
      let best = accepts[0]!
      for (const entry of accepts) if (rank(entry[0]) > rank(best[0]) || (rank(entry[0]) === rank(best[0]) && entry[0] > best[0])) best = entry
      info.status = 'accepted'
      info.respondedBy = best[0]
      info.respondedAt = best[1].at
    } else if (offer.cancelledAt !== undefined) {
      info.status = 'cancelled'
      info.respondedBy = offer.from
      info.respondedAt = offer.cancelledAt
    } else {
      const declines = answers.filter(([, r]) => r.action === 'decline').sort((a, b) => a[1].at - b[1].at || (a[0] < b[0] ? -1 : 1))
      const first = declines[0]
      if (first) {
        info.status = 'declined'
        info.respondedBy = first[0]
        info.respondedAt = first[1].at
      } else if (now >= offer.expiresAt) {
        info.status = 'expired'
      }
    }
    return info
  }

  private armExpiry(at: number): void {
    if (this.closed || at >= this.expiryAt) return
    if (this.expiryTimer) clearTimeout(this.expiryTimer)
    this.expiryAt = at
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined
      this.expiryAt = Infinity
      for (const [id, replica] of [...this.pendingSessions]) this.refresh(replica, [id], true)
    }, Math.min(Math.max(0, at - Date.now() + 1), MAX_TIMER_MS))
    ;(this.expiryTimer as { unref?: () => void }).unref?.()
  }
}
