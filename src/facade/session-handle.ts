/**
 * {@link SessionHandle}: one session of `dev.sessions` — its turns, streaming, lease and handoff.
 *
 * @module
 */
import * as Y from 'yjs'
import type { JsonObject, JsonValue } from '../crdt/json.js'
import {
  childMap,
  findTurn,
  insertOffer,
  insertTurns,
  maxTerm,
  readClaims,
  readTurn,
  sessionMap,
  turnParts,
  TURN_ROLES,
  type Claim,
  type NewTurn,
  type PartInput,
  type Session,
  type SessionLease,
  type SessionStatus,
  type Turn,
  type TurnRole,
} from '../crdt/sessions.js'
import { NotFoundError, ScopeAccessError, ValidationError } from '../errors.js'
import type { Replica } from '../sync/replica.js'
import { randomId } from './ids.js'
import { requireJson, requireJsonObject, requireLabel } from './check-json-args.js'
import { DEVICE_KINDS } from './builtin-scopes.js'
import { optionalNumber, requireId, requireObject, requireOneOf, requireText } from './check-args.js'
import { HandoffOffer } from './handoff-offer.js'
import { TurnStream } from './turn-stream.js'
import { leaseOption, renewLease, requirePart } from './session-parts.js'
import {
  DEFAULT_HANDOFF_EXPIRY_MS,
  MAX_HANDOFF_PAYLOAD_BYTES,
  MAX_PARTS,
  type AppendInput,
  type SessionsHost,
} from './session-api-types.js'

/** A handle on one session. */
export class SessionHandle {
  /** @internal */
  constructor(
    /** The session id. */
    readonly id: string,
    private readonly replica: Replica,
    private readonly api: SessionsHost,
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
