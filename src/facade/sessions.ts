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
import type { JsonObject, JsonValue } from '../crdt/json.js'
import {
  childMap,
  findTurn,
  insertOffer,
  insertSession,
  insertTurns,
  leaseOf,
  maxTerm,
  offerMap,
  PART_TYPES,
  partMap,
  readClaims,
  readOffers,
  readSession,
  readTurn,
  respondToOffer,
  SESSION_STATUSES,
  sessionMap,
  sessionsMap,
  turnParts,
  TURN_ROLES,
  type Claim,
  type HandoffInfo,
  type HandoffStatus,
  type NewTurn,
  type PartInput,
  type RawOffer,
  type Session,
  type SessionLease,
  type SessionStatus,
  type Turn,
  type TurnPart,
  type TurnRole,
} from '../crdt/sessions.js'
import { ClosedError, NotFoundError, ScopeAccessError, ValidationError } from '../errors.js'
import { STREAM_ORIGIN, type Replica } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import { kindOf, type DeviceIdentity } from './identity.js'
import { randomId } from './ids.js'
import { requireJson, requireJsonObject, requireLabel } from './json.js'
import type { ScopeReplicas } from './memory.js'
import { DEVICE_KINDS } from './scopes.js'
import { MAX_TEXT_LENGTH, optionalLimit, optionalNumber, requireId, requireObject, requireOneOf, requireText } from './validate.js'

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

/** Default lease a device takes on a session (start, claim, accepted handoff): 10 minutes. */
export const DEFAULT_LEASE_MS = 10 * 60_000
/** Default lifetime of a handoff offer: 60 s. */
export const DEFAULT_HANDOFF_EXPIRY_MS = 60_000
/** Largest handoff payload (JSON bytes). */
export const MAX_HANDOFF_PAYLOAD_BYTES = 16 * 1024
/** Most parts in one turn. */
export const MAX_PARTS = 256
const MAX_TIMER_MS = 2 ** 31 - 1

/** A change to a session (its fields or its turns). */
export interface SessionChange {
  id: string
  scope: string
  origin: 'local' | 'remote'
  /** Turns added or changed by this change, when any. */
  turnIds?: string[]
}

/** A status change of a handoff offer, seen on every device that holds the session's scope. */
export interface HandoffUpdate {
  offer: HandoffInfo
}

/** The active device of a session changed (a claim or an accepted handoff won). */
export interface ActiveDeviceChange {
  sessionId: string
  scope: string
  deviceId: string
  previous: string
  lease: SessionLease
}

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

/** A turn part as given to `append` / `stream.part` (text and reasoning are complete). */
export type TurnPartInput =
  | { type: 'text'; text: string; meta?: JsonObject }
  | { type: 'reasoning'; text: string; meta?: JsonObject }
  | {
      type: 'tool-call'
      toolCallId: string
      toolName: string
      input?: JsonValue
      state?: 'input-streaming' | 'input-available'
      providerExecuted?: boolean
      dynamic?: boolean
      meta?: JsonObject
    }
  | { type: 'tool-result'; toolCallId: string; toolName: string; output?: JsonValue; errorText?: string; meta?: JsonObject }
  | { type: 'file'; mediaType: string; url: string; filename?: string; meta?: JsonObject }
  | { type: 'data'; name: string; id?: string; data: JsonValue; meta?: JsonObject }

/** Input of {@link SessionHandle.append}. */
export interface AppendInput {
  role: TurnRole
  /** Shorthand for one text part (placed before `parts`). */
  text?: string
  parts?: TurnPartInput[]
  /** A turn id of your own (unique in the session); default a random one. */
  id?: string
  /** App metadata; keys starting with `@` are reserved for adapters. */
  metadata?: JsonObject
}

/** Options of {@link SessionsApi.list}. */
export interface SessionListQuery {
  scope?: string
  status?: SessionStatus
  limit?: number
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

/** A handle on one session. */
export class SessionHandle {
  /** @internal */
  constructor(
    /** The session id. */
    readonly id: string,
    private readonly replica: Replica,
    private readonly api: SessionsApi,
  ) {}

  /** The scope the session lives in. */
  get scope(): string {
    return this.replica.scope
  }

  /** The session as it is now. */
  get(): Session {
    const session = this.api.read(this.replica, this.id)
    if (!session) throw new NotFoundError(`session '${this.id}' no longer exists on this device`)
    return session
  }

  /** One turn as it is now (cheaper than `get()` on a long session), or `undefined`. */
  turn(turnId: string): Turn | undefined {
    return readTurn(findTurn(this.replica.inner, this.id, turnId))
  }

  /**
   * Append a complete turn: text, typed parts, or both. Resolves once sealed and stored locally.
   *
   * @example
   * ```ts
   * await s.append({ role: 'user', text: 'What is the weather in Lisbon?' })
   * await s.append({ role: 'assistant', parts: [
   *   { type: 'tool-call', toolCallId: 'c1', toolName: 'weather', input: { city: 'Lisbon' } },
   *   { type: 'tool-result', toolCallId: 'c1', toolName: 'weather', output: { tempC: 21 } },
   *   { type: 'text', text: 'Sunny, 21 °C.' },
   * ] })
   * ```
   */
  async append(input: AppendInput): Promise<Turn> {
    const [turn] = await this.appendMany([input])
    return turn!
  }

  /** Append several complete turns in one write. */
  async appendMany(inputs: AppendInput[]): Promise<Turn[]> {
    this.api.scopes.assertOpen()
    if (!Array.isArray(inputs)) throw new ValidationError('appendMany(turns) takes an array of turns')
    const now = Date.now()
    const turns = inputs.map((input, i) => this.buildTurn(input, inputs.length > 1 ? `turns[${i}]` : 'append(input)', now))
    const ids = new Set<string>()
    for (const turn of turns) {
      if (ids.has(turn.id) || findTurn(this.replica.inner, this.id, turn.id)) throw new ValidationError(`turn id '${turn.id}' is already used in this session`)
      ids.add(turn.id)
    }
    this.write(turns, now)
    await this.replica.whenFlushed()
    return turns.map((t) => this.turn(t.id)!).filter((t) => t !== undefined)
  }

  /**
   * Start a streamed turn: `write` appends text chunks (sealed in short windows — by default at
   * most one envelope per 20 ms — so other devices see the text arrive without one envelope per
   * token); `end` marks it done.
   *
   * @example
   * ```ts
   * const w = s.stream({ role: 'assistant' })
   * for await (const token of llm) w.write(token)
   * await w.end()
   * ```
   */
  stream(input: { role: TurnRole; id?: string; metadata?: JsonObject }): TurnStream {
    this.api.scopes.assertOpen()
    const fields = requireObject(input, 'stream(input)')
    const role = requireOneOf(fields.role, TURN_ROLES, 'role')
    const id = fields.id === undefined ? randomId() : requireId(fields.id, 'id')
    if (findTurn(this.replica.inner, this.id, id)) throw new ValidationError(`turn id '${id}' is already used in this session`)
    const now = Date.now()
    const turn: NewTurn = { id, role, deviceId: this.api.scopes.deviceId, createdAt: now, done: false, parts: [] }
    if (fields.metadata !== undefined) turn.metadata = requireJsonObject(fields.metadata, 'metadata')
    this.write([turn], now)
    return new TurnStream(id, this.id, this.replica, this.api.scopes)
  }

  /** Change the title and/or the running summary. */
  async update(input: { title?: string; summary?: string | null }): Promise<Session> {
    this.api.scopes.assertOpen()
    const fields = requireObject(input, 'update(input)')
    const title = fields.title === undefined ? undefined : requireText(fields.title, 'title', { allowEmpty: true })
    const summary = fields.summary === undefined || fields.summary === null ? fields.summary : requireText(fields.summary, 'summary', { allowEmpty: true })
    this.mutate((map, now) => {
      if (title !== undefined) map.set('title', title)
      if (summary === null) map.delete('summary')
      else if (summary !== undefined) map.set('summary', summary as string)
      map.set('updatedAt', now)
    })
    await this.replica.whenFlushed()
    return this.get()
  }

  /** Mark the session archived (it stays readable; `list({ status: 'active' })` leaves it out). */
  async archive(): Promise<Session> {
    return this.setStatus('archived')
  }

  /** Make an archived session active again. */
  async unarchive(): Promise<Session> {
    return this.setStatus('active')
  }

  /**
   * Take the conversation on this device (without a handoff): a claim one term above every claim
   * seen, so it wins over them; concurrent claims resolve to the same winner on every device.
   */
  async claim(options: { leaseMs?: number } = {}): Promise<SessionLease> {
    this.api.scopes.assertOpen()
    const leaseMs = leaseOption(options)
    this.mutate((map, now) => {
      const claim: Claim = { term: maxTerm(readClaims(map)) + 1, at: now, until: now + leaseMs, span: leaseMs }
      childMap(map, 'claims').set(this.api.scopes.deviceId, claim)
      map.set('updatedAt', now)
    })
    await this.replica.whenFlushed()
    return this.get().lease!
  }

  /** End this device's lease now (it stays the last active device until another claims). */
  async release(): Promise<void> {
    this.api.scopes.assertOpen()
    const me = this.api.scopes.deviceId
    this.mutate((map, now) => {
      const own = readClaims(map).get(me)
      if (own && own.until > now) childMap(map, 'claims').set(me, { ...own, until: now })
    })
    await this.replica.whenFlushed()
  }

  /**
   * Offer the session to another device — by id, or to any device of a kind. The offer lives in
   * the session's scope, so only devices holding that scope ever see it. The target gets a
   * `handoff` event; this and every other device gets `handoff-accepted` / `-declined` /
   * `-expired`.
   *
   * @example
   * ```ts
   * const offer = await s.handoff({ to: 'car', payload: { route: 'home' }, expiresIn: 30_000 })
   * const result = await offer.settled() // status 'accepted' | 'declined' | 'expired' | 'cancelled'
   * ```
   */
  async handoff(options: { to: string; payload?: JsonValue; link?: string; expiresIn?: number }): Promise<HandoffOffer> {
    this.api.scopes.assertOpen()
    const fields = requireObject(options, 'handoff(options)')
    const to = requireLabel(fields.to, 'to', 64)
    const toKind = (DEVICE_KINDS as readonly string[]).includes(to)
    const me = this.api.scopes.deviceId
    const expiresIn = optionalNumber(fields.expiresIn, 'expiresIn', 1, 24 * 3600_000) ?? DEFAULT_HANDOFF_EXPIRY_MS
    const payload = fields.payload === undefined ? undefined : requireJson(fields.payload, 'payload', MAX_HANDOFF_PAYLOAD_BYTES)
    const link = fields.link === undefined ? undefined : requireLabel(fields.link, 'link', 2048)
    this.checkTarget(to, toKind, me)
    const id = randomId()
    this.mutate((map, now) => {
      insertOffer(map, {
        id,
        from: me,
        to,
        toKind,
        createdAt: now,
        expiresAt: now + expiresIn,
        ...(payload !== undefined && { payload }),
        ...(link !== undefined && { link }),
      })
      map.set('updatedAt', now)
    })
    await this.replica.whenFlushed()
    return new HandoffOffer(id, this.id, this.replica, this.api)
  }

  /**
   * Delete one turn (an undo, e.g. the Agents SDK's `popItem`). Resolves `false` when there is no
   * such turn. Its text leaves the sealed logs at the next compaction, not at once — to erase a
   * conversation now, use `sessions.forget`.
   */
  async removeTurn(turnId: string): Promise<boolean> {
    this.api.scopes.assertOpen()
    requireId(turnId, 'turnId')
    let removed = false
    this.mutate((map) => {
      const turns = map.get('turns')
      if (!(turns instanceof Y.Array)) return
      for (let i = turns.length - 1; i >= 0; i--) {
        const t = turns.get(i)
        if (t instanceof Y.Map && t.get('id') === turnId) {
          turns.delete(i, 1)
          removed = true
          return
        }
      }
    })
    await this.replica.whenFlushed()
    return removed
  }

  /** @internal Delete some parts of a turn (the whole turn when none would remain). */
  async removeParts(turnId: string, indexes: number[]): Promise<void> {
    this.api.scopes.assertOpen()
    this.mutate((map) => {
      const turns = map.get('turns')
      const turn = findTurn(this.replica.inner, this.id, turnId)
      if (!(turns instanceof Y.Array) || !turn) return
      const parts = turnParts(turn)
      const drop = [...new Set(indexes)].filter((i) => i >= 0 && i < parts.length).sort((a, b) => b - a)
      if (drop.length >= parts.length) {
        for (let i = turns.length - 1; i >= 0; i--) if (turns.get(i) === turn) turns.delete(i, 1)
        return
      }
      for (const i of drop) parts.delete(i, 1)
    })
    await this.replica.whenFlushed()
  }

  /** Delete every turn and compact the scope's sealed log so their content leaves it. */
  async clear(): Promise<void> {
    this.api.scopes.assertOpen()
    this.mutate((map, now) => {
      const turns = map.get('turns')
      if (turns instanceof Y.Array && turns.length > 0) turns.delete(0, turns.length)
      map.set('updatedAt', now)
    })
    await this.replica.compactNow({ erasing: true })
  }

  private async setStatus(status: SessionStatus): Promise<Session> {
    this.api.scopes.assertOpen()
    this.mutate((map, now) => {
      if (map.get('status') !== status) {
        map.set('status', status)
        map.set('updatedAt', now)
      }
    })
    await this.replica.whenFlushed()
    return this.get()
  }

  private mutate(fn: (map: Y.Map<unknown>, now: number) => void): void {
    const map = sessionMap(this.replica.inner, this.id)
    if (!map) throw new NotFoundError(`session '${this.id}' no longer exists on this device`)
    const now = Date.now()
    this.replica.inner.transact(() => fn(map, now))
  }

  private write(turns: NewTurn[], now: number): void {
    let ok = false
    this.replica.inner.transact(() => {
      ok = insertTurns(this.replica.inner, this.id, turns, now)
      if (ok) renewLease(this.replica.inner, this.id, this.api.scopes.deviceId, now)
    })
    if (!ok) throw new NotFoundError(`session '${this.id}' no longer exists on this device`)
  }

  private buildTurn(input: AppendInput, name: string, now: number): NewTurn {
    const fields = requireObject(input, name)
    const role = requireOneOf(fields.role, TURN_ROLES, 'role')
    const parts: PartInput[] = []
    if (fields.text !== undefined) parts.push({ type: 'text', text: requireText(fields.text, 'text'), state: 'done' })
    if (fields.parts !== undefined) {
      if (!Array.isArray(fields.parts)) throw new ValidationError(`${name}.parts must be an array of parts`)
      fields.parts.forEach((p, i) => parts.push(requirePart(p, `parts[${i}]`)))
    }
    if (parts.length === 0) throw new ValidationError(`${name} needs text or at least one part`)
    if (parts.length > MAX_PARTS) throw new ValidationError(`${name} has ${parts.length} parts; the limit is ${MAX_PARTS}`)
    const turn: NewTurn = {
      id: fields.id === undefined ? randomId() : requireId(fields.id, 'id'),
      role,
      deviceId: this.api.scopes.deviceId,
      createdAt: now,
      done: true,
      parts,
    }
    if (fields.metadata !== undefined) turn.metadata = requireJsonObject(fields.metadata, 'metadata')
    return turn
  }

  private checkTarget(to: string, toKind: boolean, me: string): void {
    const identity = this.api.identity
    if (!toKind && !/^[0-9a-f]{32}$/.test(to)) {
      throw new ValidationError(`to must be a device id or one of ${DEVICE_KINDS.map((k) => `'${k}'`).join(', ')}, got '${to}'`)
    }
    if (!toKind && to === me) throw new ValidationError('a session cannot be handed off to the device it is on')
    if (!identity) return
    const registry = identity.registry
    const candidates = toKind
      ? registry.list().filter((c) => c.kind === to && c.deviceId !== me)
      : [registry.certificate(to)].filter((c) => c !== undefined)
    if (candidates.length === 0) {
      throw new ValidationError(toKind ? `no other ${to} device in this account` : `no device '${to}' in this account`)
    }
    const reachable = candidates.filter((c) => !registry.revocation(c.deviceId) && registry.holds(c.deviceId, this.scope))
    if (reachable.length === 0) {
      throw new ScopeAccessError(`no ${toKind ? `${to} device` : `device '${to}'`} holds scope '${this.scope}', so none could ever see this offer`)
    }
  }
}

/** A handoff offer made by this device. */
export class HandoffOffer {
  /** @internal */
  constructor(
    /** The offer id. */
    readonly id: string,
    /** The session offered. */
    readonly sessionId: string,
    private readonly replica: Replica,
    private readonly api: SessionsApi,
  ) {}

  /** The offer as it stands now (by this device's view). */
  info(): HandoffInfo {
    const info = this.api.offersOf(this.replica, this.sessionId).find((o) => o.id === this.id)
    if (!info) throw new NotFoundError(`handoff offer '${this.id}' no longer exists on this device`)
    return info
  }

  /** Its status now. */
  status(): HandoffStatus {
    return this.info().status
  }

  /** Resolves once it was accepted, declined, cancelled or expired. Rejects with `ClosedError` on close. */
  settled(): Promise<HandoffInfo> {
    return this.api.settled(this.replica, this.sessionId, this.id)
  }

  /** Withdraw the offer (no effect once it was answered). */
  async cancel(): Promise<void> {
    this.api.scopes.assertOpen()
    const map = sessionMap(this.replica.inner, this.sessionId)
    const offer = map && offerMap(map, this.id)
    if (!offer || this.status() !== 'pending') return
    this.replica.inner.transact(() => offer.set('cancelledAt', Date.now()))
    await this.replica.whenFlushed()
  }
}

/** A turn being streamed. */
export class TurnStream {
  private ended = false
  private map: Y.Map<unknown> | undefined
  private current: { type: 'text' | 'reasoning'; part: Y.Map<unknown>; text: Y.Text } | undefined

  /** @internal */
  constructor(
    /** The turn id. */
    readonly id: string,
    private readonly sessionId: string,
    private readonly replica: Replica,
    private readonly scopes: ScopeReplicas,
  ) {}

  /** Append a chunk of answer text. */
  write(chunk: string): void {
    this.appendText('text', chunk)
  }

  /** Append a chunk of reasoning. */
  writeReasoning(chunk: string): void {
    this.appendText('reasoning', chunk)
  }

  /** Add a complete part (tool call, tool result, file, data…); ends the text part being streamed. */
  part(input: TurnPartInput): void {
    this.checkWritable()
    const part = requirePart(input, 'part')
    this.replica.inner.transact(() => {
      this.closeCurrent()
      turnParts(this.turnMap()).push([partMap(part)])
    })
  }

  /** Mark the turn done; resolves with it once sealed and stored locally. */
  async end(): Promise<Turn> {
    this.scopes.assertOpen()
    if (!this.ended) {
      this.ended = true
      this.replica.inner.transact(() => {
        const turn = this.turnMap()
        this.closeCurrent()
        // Parts left streaming (e.g. from an interrupted writer) end with the turn.
        for (const part of turnParts(turn)) if (part instanceof Y.Map && part.get('state') === 'streaming') part.set('state', 'done')
        const now = Date.now()
        turn.set('done', true)
        turn.set('updatedAt', now)
        sessionMap(this.replica.inner, this.sessionId)?.set('updatedAt', now)
        renewLease(this.replica.inner, this.sessionId, this.scopes.deviceId, now)
      })
    }
    await this.replica.whenFlushed()
    const turn = readTurn(findTurn(this.replica.inner, this.sessionId, this.id))
    if (!turn) throw new NotFoundError(`turn '${this.id}' no longer exists on this device`)
    return turn
  }

  private appendText(type: 'text' | 'reasoning', chunk: string): void {
    this.checkWritable()
    if (typeof chunk !== 'string') throw new ValidationError(`chunk must be a string, got ${typeof chunk}`)
    if (chunk.length === 0) return
    this.replica.inner.transact(() => {
      const current = this.current
      if (!current || current.type !== type || current.part._item?.deleted || current.text.length + chunk.length > MAX_TEXT_LENGTH) {
        this.closeCurrent()
        const part = partMap({ type, text: '', state: 'streaming' })
        turnParts(this.turnMap()).push([part])
        this.current = { type, part, text: part.get('text') as Y.Text }
      }
      this.current!.text.insert(this.current!.text.length, chunk)
    }, STREAM_ORIGIN)
  }

  private closeCurrent(): void {
    if (this.current && !this.current.part._item?.deleted) this.current.part.set('state', 'done')
    this.current = undefined
  }

  private checkWritable(): void {
    this.scopes.assertOpen()
    if (this.ended) throw new ValidationError('write() after end() on a turn stream')
  }

  private turnMap(): Y.Map<unknown> {
    // Cached: a long session would otherwise be scanned once per streamed chunk.
    if (this.map && !this.map._item?.deleted) return this.map
    const map = (this.map = findTurn(this.replica.inner, this.sessionId, this.id))
    if (!map) throw new NotFoundError(`turn '${this.id}' no longer exists on this device`)
    return map
  }
}

/**
 * The holder's lease is extended when it writes and less than half of it is left — by the length
 * it was granted (`span`), so renewals never compound.
 */
function renewLease(doc: Y.Doc, sessionId: string, deviceId: string, now: number): void {
  const map = sessionMap(doc, sessionId)
  if (!map) return
  const claims = readClaims(map)
  const lease = leaseOf(claims, now)
  if (!lease || lease.deviceId !== deviceId || !lease.active) return
  const own = claims.get(deviceId)!
  const length = own.span ?? DEFAULT_LEASE_MS
  if (own.until - now < length / 2) childMap(map, 'claims').set(deviceId, { ...own, until: now + length, span: length })
}

function leaseOption(options: unknown): number {
  if (options === undefined) return DEFAULT_LEASE_MS
  const fields = requireObject(options, 'options')
  return optionalNumber(fields.leaseMs, 'leaseMs', 1, 7 * 24 * 3600_000) ?? DEFAULT_LEASE_MS
}

/** Validate one part as given by the app; returns the stored form. */
export function requirePart(value: unknown, name: string): TurnPart {
  const fields = requireObject(value, name)
  const type = requireOneOf(fields.type, PART_TYPES, `${name}.type`)
  const meta = fields.meta === undefined ? undefined : requireJsonObject(fields.meta, `${name}.meta`)
  const withMeta = <T extends TurnPart>(part: T): T => {
    if (meta) part.meta = meta
    return part
  }
  const optionalLabel = (key: string): string | undefined => (fields[key] === undefined ? undefined : requireLabel(fields[key], `${name}.${key}`))
  switch (type) {
    case 'text':
    case 'reasoning':
      return withMeta({ type, text: requireText(fields.text, `${name}.text`, { allowEmpty: true }), state: 'done' })
    case 'tool-call': {
      const part: TurnPart = {
        type,
        toolCallId: requireLabel(fields.toolCallId, `${name}.toolCallId`),
        toolName: requireLabel(fields.toolName, `${name}.toolName`),
        input: fields.input === undefined ? null : requireJson(fields.input, `${name}.input`),
      }
      if (fields.state !== undefined) part.state = requireOneOf(fields.state, ['input-streaming', 'input-available'] as const, `${name}.state`)
      if (fields.providerExecuted === true) part.providerExecuted = true
      if (fields.dynamic === true) part.dynamic = true
      return withMeta(part)
    }
    case 'tool-result': {
      const part: TurnPart = {
        type,
        toolCallId: requireLabel(fields.toolCallId, `${name}.toolCallId`),
        toolName: requireLabel(fields.toolName, `${name}.toolName`),
      }
      if (fields.output !== undefined) part.output = requireJson(fields.output, `${name}.output`)
      if (fields.errorText !== undefined) part.errorText = requireText(fields.errorText, `${name}.errorText`, { allowEmpty: true })
      return withMeta(part)
    }
    case 'file': {
      const url = fields.url
      if (typeof url !== 'string' || url.length === 0 || url.length > MAX_TEXT_LENGTH) {
        throw new ValidationError(`${name}.url must be a non-empty string of at most ${MAX_TEXT_LENGTH} characters (a reference, not the file)`)
      }
      const part: TurnPart = { type, mediaType: requireLabel(fields.mediaType, `${name}.mediaType`), url }
      const filename = optionalLabel('filename')
      if (filename !== undefined) part.filename = filename
      return withMeta(part)
    }
    case 'data': {
      const part: TurnPart = { type, name: requireLabel(fields.name, `${name}.name`), data: requireJson(fields.data ?? null, `${name}.data`) }
      const partId = optionalLabel('id')
      if (partId !== undefined) part.id = partId
      return withMeta(part)
    }
  }
}
