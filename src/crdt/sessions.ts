/**
 * Inner schema for conversation sessions, turns, leases and handoff offers (WIRE.md "Inner doc of a
 * scope", `sessions`). Plain Yjs; no crypto, no I/O.
 *
 * Layout — `sessions: Y.Map<Y.Map<unknown>>` keyed by session id; a session map holds:
 *
 * | key | type | meaning |
 * |---|---|---|
 * | `title` `scope` `status` `summary` | string | |
 * | `createdAt` `updatedAt` | number (ms) | |
 * | `turns` | `Y.Array<Y.Map>` | the conversation |
 * | `claims` | `Y.Map<{ term, at, until, offer? }>` keyed by device id | lease claims (see {@link leaseOf}) |
 * | `handoffs` | `Y.Map<Y.Map>` keyed by offer id | handoff offers (see {@link readOffers}) |
 *
 * A turn map holds `id role deviceId createdAt updatedAt done metadata?` and `parts:
 * Y.Array<Y.Map>`. A part map holds `type` and its fields; text and reasoning parts keep their text
 * in a `Y.Text` plus a `state` ('streaming' | 'done'), so an answer can be appended token by token
 * and other devices watch it arrive. (Turns written before parts existed hold one `text: Y.Text`;
 * they read as a single text part.)
 *
 * Each device writes only its own key of `claims`, so concurrent claims never overwrite each other;
 * the lease holder is derived: the claim with the highest `(term, deviceId)` — the same on every
 * device once they have the same claims.
 *
 * The types and vocabulary are in `session-types.ts`, claims and handoff offers in
 * `session-leases.ts`; this module re-exports both.
 *
 * @module
 */
import * as Y from 'yjs'
import { readJson, readJsonObject, type JsonObject } from './json.js'
import { isTime, leaseOf, readClaims, readOffers } from './session-leases.js'
import {
  type Claim,
  type DataPart,
  type FilePart,
  type HandoffInfo,
  type RawOffer,
  type Session,
  type ToolCallPart,
  type ToolResultPart,
  type Turn,
  TURN_ROLES,
  type TurnPart,
  type TurnRole,
} from './session-types.js'

export * from './session-types.js'
export { childMap, readClaims, claimBeats, leaseOf, maxTerm, readOffers, insertOffer, offerMap, respondToOffer } from './session-leases.js'

/** Name of the session map inside an inner doc. */
export const SESSIONS_KEY = 'sessions'

/** The session map of an inner doc. */
export function sessionsMap(doc: Y.Doc): Y.Map<Y.Map<unknown>> {
  return doc.getMap<Y.Map<unknown>>(SESSIONS_KEY)
}

/** Fields of a new session. */
export interface NewSession {
  id: string
  title: string
  scope: string
  createdAt: number
  summary?: string
  /** The starting device's first claim. */
  claim: { deviceId: string; until: number }
}

/** Create a session. Call inside a transaction. */
export function insertSession(doc: Y.Doc, session: NewSession): void {
  const map = new Y.Map<unknown>()
  map.set('title', session.title)
  map.set('scope', session.scope)
  map.set('status', 'active')
  map.set('createdAt', session.createdAt)
  map.set('updatedAt', session.createdAt)
  if (session.summary !== undefined) map.set('summary', session.summary)
  map.set('turns', new Y.Array<Y.Map<unknown>>())
  const claims = new Y.Map<unknown>()
  const claim: Claim = { term: 1, at: session.createdAt, until: session.claim.until, span: session.claim.until - session.createdAt }
  claims.set(session.claim.deviceId, claim)
  map.set('claims', claims)
  map.set('handoffs', new Y.Map<unknown>())
  sessionsMap(doc).set(session.id, map)
}

/** The session's map, if it exists. */
export function sessionMap(doc: Y.Doc, sessionId: string): Y.Map<unknown> | undefined {
  const map = sessionsMap(doc).get(sessionId)
  return map instanceof Y.Map ? map : undefined
}


// ── turns ────────────────────────────────────────────────────────────────────

/** A part as written (text parts carry their initial text). */
export type PartInput = TurnPart

/** A turn as written. */
export interface NewTurn {
  id: string
  role: TurnRole
  deviceId: string
  createdAt: number
  done: boolean
  parts: PartInput[]
  metadata?: JsonObject
}

/** Build the Y.Map of one part. */
export function partMap(part: PartInput): Y.Map<unknown> {
  const map = new Y.Map<unknown>()
  for (const [key, value] of Object.entries(part)) {
    if (value === undefined) continue
    if ((part.type === 'text' || part.type === 'reasoning') && key === 'text') {
      const text = new Y.Text()
      if (typeof value === 'string' && value.length > 0) text.insert(0, value)
      map.set('text', text)
    } else {
      map.set(key, value)
    }
  }
  return map
}

/** Append turns to a session; returns false when the session does not exist. */
export function insertTurns(doc: Y.Doc, sessionId: string, turns: NewTurn[], now: number): boolean {
  const session = sessionMap(doc, sessionId)
  const list = session?.get('turns')
  if (!session || !(list instanceof Y.Array)) return false
  const maps = turns.map((turn) => {
    const map = new Y.Map<unknown>()
    map.set('id', turn.id)
    map.set('role', turn.role)
    map.set('deviceId', turn.deviceId)
    map.set('createdAt', turn.createdAt)
    map.set('updatedAt', turn.createdAt)
    map.set('done', turn.done)
    if (turn.metadata !== undefined) map.set('metadata', turn.metadata)
    map.set('parts', Y.Array.from(turn.parts.map(partMap)))
    return map
  })
  list.push(maps)
  session.set('updatedAt', now)
  return true
}

/** Find a turn's map (and its index) by id. */
export function findTurn(doc: Y.Doc, sessionId: string, turnId: string): Y.Map<unknown> | undefined {
  const turns = sessionMap(doc, sessionId)?.get('turns')
  if (!(turns instanceof Y.Array)) return undefined
  // Newest first: streams and adapters touch the end of a conversation.
  for (let i = turns.length - 1; i >= 0; i--) {
    const turn = turns.get(i)
    if (turn instanceof Y.Map && turn.get('id') === turnId) return turn
  }
  return undefined
}

/** Index of a turn in the session's turn array, or -1. */
export function turnIndex(doc: Y.Doc, sessionId: string, turnId: string): number {
  const turns = sessionMap(doc, sessionId)?.get('turns')
  if (!(turns instanceof Y.Array)) return -1
  for (let i = turns.length - 1; i >= 0; i--) {
    const turn = turns.get(i)
    if (turn instanceof Y.Map && turn.get('id') === turnId) return i
  }
  return -1
}

/** The parts array of a turn map, created for a legacy (text-only) turn. Call inside a transaction. */
export function turnParts(turn: Y.Map<unknown>): Y.Array<Y.Map<unknown>> {
  const parts = turn.get('parts')
  if (parts instanceof Y.Array) return parts as Y.Array<Y.Map<unknown>>
  const created = new Y.Array<Y.Map<unknown>>()
  const legacy = turn.get('text')
  if (legacy instanceof Y.Text && legacy.length > 0) {
    created.push([partMap({ type: 'text', text: legacy.toString(), state: turn.get('done') === true ? 'done' : 'streaming' })])
  }
  turn.set('parts', created)
  if (legacy !== undefined) turn.delete('text')
  return created
}

// ── reading (untrusted: every field validated) ───────────────────────────────

/** Read a session, validating shapes; `undefined` for a malformed or missing one. */
export function readSession(
  id: string,
  map: unknown,
  options: { now?: number; scope?: string; offers?: (raw: RawOffer[], claims: Map<string, Claim>) => HandoffInfo[] } = {},
): Session | undefined {
  if (!(map instanceof Y.Map)) return undefined
  const title = map.get('title')
  const storedScope = map.get('scope')
  const status = map.get('status')
  const createdAt = map.get('createdAt')
  const updatedAt = map.get('updatedAt')
  const turns = map.get('turns')
  if (typeof title !== 'string' || typeof storedScope !== 'string') return undefined
  if (!isTime(createdAt) || !isTime(updatedAt)) return undefined
  if (!(turns instanceof Y.Array)) return undefined
  const out: Turn[] = []
  for (const t of turns) {
    const turn = readTurn(t)
    if (turn) out.push(turn)
  }
  const now = options.now ?? Date.now()
  const claims = readClaims(map)
  const lease = leaseOf(claims, now)
  const legacyActive = map.get('activeDevice')
  const session: Session = {
    id,
    title,
    scope: options.scope ?? storedScope,
    status: status === 'archived' ? 'archived' : 'active',
    createdAt,
    updatedAt,
    activeDevice: lease?.deviceId ?? (typeof legacyActive === 'string' ? legacyActive : ''),
    turns: out,
    handoffs: options.offers ? options.offers(readOffers(map), claims) : [],
  }
  if (lease) session.lease = lease
  const summary = map.get('summary')
  if (typeof summary === 'string') session.summary = summary
  return session
}

/** Read one turn map. */
export function readTurn(map: unknown): Turn | undefined {
  if (!(map instanceof Y.Map)) return undefined
  const id = map.get('id')
  const role = map.get('role')
  const deviceId = map.get('deviceId')
  const createdAt = map.get('createdAt')
  if (typeof id !== 'string' || typeof deviceId !== 'string' || !isTime(createdAt)) return undefined
  if (typeof role !== 'string' || !(TURN_ROLES as readonly string[]).includes(role)) return undefined
  const done = map.get('done') === true
  const parts: TurnPart[] = []
  const stored = map.get('parts')
  if (stored instanceof Y.Array) {
    for (const p of stored) {
      const part = readPart(p)
      if (part) parts.push(part)
    }
  } else {
    const legacy = map.get('text')
    if (legacy instanceof Y.Text) parts.push({ type: 'text', text: legacy.toString(), state: done ? 'done' : 'streaming' })
  }
  const updatedAt = map.get('updatedAt')
  const turn: Turn = {
    id,
    role: role as TurnRole,
    text: parts.map((p) => (p.type === 'text' ? p.text : '')).join(''),
    parts,
    deviceId,
    createdAt,
    updatedAt: isTime(updatedAt) ? updatedAt : createdAt,
    done,
  }
  const metadata = readJsonObject(map.get('metadata'))
  if (metadata) turn.metadata = metadata
  return turn
}

/** Read one part map; `undefined` for an unknown type or a malformed part. */
export function readPart(map: unknown): TurnPart | undefined {
  if (!(map instanceof Y.Map)) return undefined
  const type = map.get('type')
  const meta = readJsonObject(map.get('meta'))
  const withMeta = <T extends TurnPart>(part: T): T => {
    if (meta) part.meta = meta
    return part
  }
  const str = (key: string): string | undefined => {
    const v = map.get(key)
    return typeof v === 'string' ? v : undefined
  }
  switch (type) {
    case 'text':
    case 'reasoning': {
      const text = map.get('text')
      const content = text instanceof Y.Text ? text.toString() : typeof text === 'string' ? text : undefined
      if (content === undefined) return undefined
      return withMeta({ type, text: content, state: map.get('state') === 'streaming' ? 'streaming' : 'done' })
    }
    case 'tool-call': {
      const toolCallId = str('toolCallId')
      const toolName = str('toolName')
      const input = map.has('input') ? readJson(map.get('input')) : null
      if (toolCallId === undefined || toolName === undefined || input === undefined) return undefined
      const part: ToolCallPart = { type, toolCallId, toolName, input }
      const state = map.get('state')
      if (state === 'input-streaming' || state === 'input-available') part.state = state
      if (map.get('providerExecuted') === true) part.providerExecuted = true
      if (map.get('dynamic') === true) part.dynamic = true
      return withMeta(part)
    }
    case 'tool-result': {
      const toolCallId = str('toolCallId')
      const toolName = str('toolName')
      if (toolCallId === undefined || toolName === undefined) return undefined
      const part: ToolResultPart = { type, toolCallId, toolName }
      if (map.has('output')) {
        const output = readJson(map.get('output'))
        if (output === undefined) return undefined
        part.output = output
      }
      const errorText = str('errorText')
      if (errorText !== undefined) part.errorText = errorText
      return withMeta(part)
    }
    case 'file': {
      const mediaType = str('mediaType')
      const url = str('url')
      if (mediaType === undefined || url === undefined) return undefined
      const part: FilePart = { type, mediaType, url }
      const filename = str('filename')
      if (filename !== undefined) part.filename = filename
      return withMeta(part)
    }
    case 'data': {
      const name = str('name')
      const data = map.has('data') ? readJson(map.get('data')) : null
      if (name === undefined || data === undefined) return undefined
      const part: DataPart = { type, name, data }
      const partId = str('id')
      if (partId !== undefined) part.id = partId
      return withMeta(part)
    }
    default:
      return undefined
  }
}
