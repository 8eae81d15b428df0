/**
 * Inner schema for conversation sessions and turns (DESIGN §6). Plain Yjs; no crypto, no I/O.
 *
 * Layout: `sessions: Y.Map<Y.Map<unknown>>` keyed by session id; a session map holds scalar
 * fields and `turns: Y.Array<Y.Map<unknown>>`. A turn holds scalar fields and `text: Y.Text`, so an
 * assistant answer can be appended token by token and other devices watch it arrive; `done`
 * flips to true when the writer ends the stream.
 *
 * @module
 */
import * as Y from 'yjs'

/** Who spoke a turn. */
export const TURN_ROLES = ['user', 'assistant', 'system', 'tool'] as const
/** One of {@link TURN_ROLES}. */
export type TurnRole = (typeof TURN_ROLES)[number]

/** Session lifecycle. */
export type SessionStatus = 'active' | 'archived'

/** A turn as the app sees it. */
export interface Turn {
  id: string
  role: TurnRole
  text: string
  deviceId: string
  createdAt: number
  /** False while the turn is still being streamed. */
  done: boolean
}

/** A session as the app sees it. */
export interface Session {
  id: string
  title: string
  scope: string
  status: SessionStatus
  createdAt: number
  updatedAt: number
  /** Device currently holding the conversation. */
  activeDevice: string
  turns: Turn[]
}

/** Name of the session map inside an inner doc. */
export const SESSIONS_KEY = 'sessions'

/** The session map of an inner doc. */
export function sessionsMap(doc: Y.Doc): Y.Map<Y.Map<unknown>> {
  return doc.getMap<Y.Map<unknown>>(SESSIONS_KEY)
}

/** Create a session. Call inside a transaction. */
export function insertSession(
  doc: Y.Doc,
  session: Omit<Session, 'turns'>,
): void {
  const map = new Y.Map<unknown>()
  map.set('title', session.title)
  map.set('scope', session.scope)
  map.set('status', session.status)
  map.set('createdAt', session.createdAt)
  map.set('updatedAt', session.updatedAt)
  map.set('activeDevice', session.activeDevice)
  map.set('turns', new Y.Array<Y.Map<unknown>>())
  sessionsMap(doc).set(session.id, map)
}

/** Append a turn; returns its `Y.Text` so a stream can keep writing into it. */
export function insertTurn(doc: Y.Doc, sessionId: string, turn: Turn, now: number): Y.Text | undefined {
  const session = sessionsMap(doc).get(sessionId)
  const turns = session?.get('turns')
  if (!(session instanceof Y.Map) || !(turns instanceof Y.Array)) return undefined
  const text = new Y.Text()
  if (turn.text) text.insert(0, turn.text)
  const map = new Y.Map<unknown>()
  map.set('id', turn.id)
  map.set('role', turn.role)
  map.set('deviceId', turn.deviceId)
  map.set('createdAt', turn.createdAt)
  map.set('done', turn.done)
  map.set('text', text)
  turns.push([map])
  session.set('updatedAt', now)
  return text
}

/** Find a turn's map by id. */
export function findTurn(doc: Y.Doc, sessionId: string, turnId: string): Y.Map<unknown> | undefined {
  const turns = sessionsMap(doc).get(sessionId)?.get('turns')
  if (!(turns instanceof Y.Array)) return undefined
  for (const turn of turns) if (turn instanceof Y.Map && turn.get('id') === turnId) return turn
  return undefined
}

/** Read a session, validating shapes; `undefined` for a malformed or missing one. */
export function readSession(id: string, map: unknown): Session | undefined {
  if (!(map instanceof Y.Map)) return undefined
  const title = map.get('title')
  const scope = map.get('scope')
  const status = map.get('status')
  const createdAt = map.get('createdAt')
  const updatedAt = map.get('updatedAt')
  const activeDevice = map.get('activeDevice')
  const turns = map.get('turns')
  if (typeof title !== 'string' || typeof scope !== 'string') return undefined
  if (typeof createdAt !== 'number' || typeof updatedAt !== 'number' || typeof activeDevice !== 'string') return undefined
  if (!(turns instanceof Y.Array)) return undefined
  const out: Turn[] = []
  for (const t of turns) {
    const turn = readTurn(t)
    if (turn) out.push(turn)
  }
  return {
    id,
    title,
    scope,
    status: status === 'archived' ? 'archived' : 'active',
    createdAt,
    updatedAt,
    activeDevice,
    turns: out,
  }
}

/** Read one turn map. */
export function readTurn(map: unknown): Turn | undefined {
  if (!(map instanceof Y.Map)) return undefined
  const id = map.get('id')
  const role = map.get('role')
  const deviceId = map.get('deviceId')
  const createdAt = map.get('createdAt')
  const text = map.get('text')
  if (typeof id !== 'string' || typeof deviceId !== 'string' || typeof createdAt !== 'number') return undefined
  if (typeof role !== 'string' || !(TURN_ROLES as readonly string[]).includes(role)) return undefined
  return {
    id,
    role: role as TurnRole,
    text: text instanceof Y.Text ? text.toString() : '',
    deviceId,
    createdAt,
    done: map.get('done') === true,
  }
}
