/**
 * `dev.sessions`: conversations that continue across devices. A session lives in the inner doc of
 * its scope; an assistant turn can be streamed chunk by chunk and other devices watch it arrive.
 *
 * @module
 */
import * as Y from 'yjs'
import {
  findTurn,
  insertSession,
  insertTurn,
  readSession,
  sessionsMap,
  TURN_ROLES,
  type Session,
  type Turn,
  type TurnRole,
} from '../crdt/sessions.js'
import { NotFoundError, ValidationError } from '../errors.js'
import { STREAM_ORIGIN, type Replica } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import { randomId } from './ids.js'
import type { ScopeReplicas } from './memory.js'
import { requireId, requireObject, requireOneOf, requireText } from './validate.js'

export type { Session, Turn, TurnRole } from '../crdt/sessions.js'

/** A change to a session (its fields or its turns). */
export interface SessionChange {
  id: string
  scope: string
  origin: 'local' | 'remote'
}

/** Events of {@link SessionsApi}. */
export interface SessionsEvents {
  change: (event: SessionChange) => void
}

/** Conversations. */
export class SessionsApi {
  private readonly emitter = new Emitter<SessionsEvents>()

  /** @internal built by `ContextSync`. */
  constructor(private readonly scopes: ScopeReplicas) {
    for (const replica of scopes.replicas()) this.watch(replica)
  }

  /**
   * Start a session on this device (it becomes the active device). Synchronous: the returned
   * handle is usable at once; its first awaited write also makes the session durable.
   */
  start(options: { scope?: string; title?: string } = {}): SessionHandle {
    this.scopes.assertOpen()
    const fields = requireObject(options, 'start(options)')
    const replica = this.scopes.replica(fields.scope ?? 'personal')
    const title = fields.title === undefined ? '' : requireText(fields.title, 'title', { allowEmpty: true })
    const id = randomId()
    const now = Date.now()
    replica.inner.transact(() =>
      insertSession(replica.inner, {
        id,
        title,
        scope: replica.scope,
        status: 'active',
        createdAt: now,
        updatedAt: now,
        activeDevice: this.scopes.deviceId,
      }),
    )
    return new SessionHandle(id, replica, this.scopes)
  }

  /** A handle for an existing session. Throws `NotFoundError` when it is not on this device. */
  open(id: string): SessionHandle {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const replica = this.locate(id)
    if (!replica) throw new NotFoundError(`no session with id '${id}' on this device`)
    return new SessionHandle(id, replica, this.scopes)
  }

  /** The session with its turns, or `undefined`. Synchronous, local. */
  get(id: string): Session | undefined {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const replica = this.locate(id)
    return replica && readSession(id, sessionsMap(replica.inner).get(id))
  }

  /** Every session this device holds (optionally one scope's), most recently updated first. */
  list(query: { scope?: string } = {}): Session[] {
    this.scopes.assertOpen()
    const fields = requireObject(query, 'list(query)')
    const replicas = fields.scope === undefined ? this.scopes.replicas() : [this.scopes.replica(fields.scope)]
    const out: Session[] = []
    for (const replica of replicas) {
      sessionsMap(replica.inner).forEach((map, id) => {
        const session = readSession(id, map)
        if (session) out.push(session)
      })
    }
    return out.sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1))
  }

  /** Subscribe to session changes. Returns an unsubscribe function. */
  on<E extends keyof SessionsEvents>(event: E, listener: SessionsEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /** @internal */
  close(): void {
    this.emitter.clear()
  }

  private locate(id: string): Replica | undefined {
    return this.scopes.replicas().find((r) => sessionsMap(r.inner).has(id))
  }

  private watch(replica: Replica): void {
    const sessions = sessionsMap(replica.inner)
    sessions.observeDeep((events, transaction) => {
      const origin = transaction.local ? 'local' : 'remote'
      const ids = new Set<string>()
      for (const event of events) {
        if (event.target === sessions) for (const id of (event as Y.YMapEvent<unknown>).keysChanged) ids.add(id)
        else if (typeof event.path[0] === 'string') ids.add(event.path[0])
      }
      for (const id of ids) this.emitter.emit('change', { id, scope: replica.scope, origin })
    })
  }
}

/** A handle on one session. */
export class SessionHandle {
  /** @internal */
  constructor(
    /** The session id. */
    readonly id: string,
    private readonly replica: Replica,
    private readonly scopes: ScopeReplicas,
  ) {}

  /** The scope the session lives in. */
  get scope(): string {
    return this.replica.scope
  }

  /** The session as it is now. */
  get(): Session {
    const session = readSession(this.id, sessionsMap(this.replica.inner).get(this.id))
    if (!session) throw new NotFoundError(`session '${this.id}' no longer exists on this device`)
    return session
  }

  /** Append a complete turn. Resolves once sealed and stored locally. */
  async append(input: { role: TurnRole; text: string }): Promise<Turn> {
    this.scopes.assertOpen()
    const fields = requireObject(input, 'append(input)')
    const role = requireOneOf(fields.role, TURN_ROLES, 'role')
    const text = requireText(fields.text, 'text')
    const turn = this.insert(role, text, true)
    await this.replica.whenFlushed()
    return turn
  }

  /**
   * Start a streamed turn: `write` appends chunks (sealed in short windows, so other devices see
   * the text arrive without one envelope per token); `end` marks it done.
   */
  stream(input: { role: TurnRole }): TurnStream {
    this.scopes.assertOpen()
    const fields = requireObject(input, 'stream(input)')
    const role = requireOneOf(fields.role, TURN_ROLES, 'role')
    const turn = this.insert(role, '', false)
    return new TurnStream(turn.id, this.id, this.replica, this.scopes)
  }

  private insert(role: TurnRole, text: string, done: boolean): Turn {
    const now = Date.now()
    const turn: Turn = { id: randomId(), role, text, deviceId: this.scopes.deviceId, createdAt: now, done }
    let ok = false
    this.replica.inner.transact(() => {
      ok = insertTurn(this.replica.inner, this.id, turn, now) !== undefined
    })
    if (!ok) throw new NotFoundError(`session '${this.id}' no longer exists on this device`)
    return turn
  }
}

/** A turn being streamed. */
export class TurnStream {
  private ended = false
  private map: Y.Map<unknown> | undefined

  /** @internal */
  constructor(
    /** The turn id. */
    readonly id: string,
    private readonly sessionId: string,
    private readonly replica: Replica,
    private readonly scopes: ScopeReplicas,
  ) {}

  /** Append a chunk of text. */
  write(chunk: string): void {
    this.scopes.assertOpen()
    if (this.ended) throw new ValidationError('write() after end() on a turn stream')
    if (typeof chunk !== 'string') throw new ValidationError(`chunk must be a string, got ${typeof chunk}`)
    if (chunk.length === 0) return
    this.replica.inner.transact(() => {
      const text = this.turnMap().get('text')
      if (text instanceof Y.Text) text.insert(text.length, chunk)
    }, STREAM_ORIGIN)
  }

  /** Mark the turn done; resolves with it once sealed and stored locally. */
  async end(): Promise<Turn> {
    this.scopes.assertOpen()
    if (!this.ended) {
      this.ended = true
      this.replica.inner.transact(() => {
        this.turnMap().set('done', true)
        sessionsMap(this.replica.inner).get(this.sessionId)?.set('updatedAt', Date.now())
      })
    }
    await this.replica.whenFlushed()
    const turn = readSession(this.sessionId, sessionsMap(this.replica.inner).get(this.sessionId))?.turns.find(
      (t) => t.id === this.id,
    )
    if (!turn) throw new NotFoundError(`turn '${this.id}' no longer exists on this device`)
    return turn
  }

  private turnMap(): Y.Map<unknown> {
    // Cached: a long session would otherwise be scanned once per streamed chunk.
    if (this.map && !this.map._item?.deleted) return this.map
    const map = (this.map = findTurn(this.replica.inner, this.sessionId, this.id))
    if (!map) throw new NotFoundError(`turn '${this.id}' no longer exists on this device`)
    return map
  }
}
