/**
 * What the PC shows of memories and sessions — to MCP clients (as structured tool output and
 * resources) and on the command line (`--json`): plain objects, embeddings left out (they are
 * large and nobody reads them). The MCP tools' output schemas (`mcp/shapes.ts`) describe exactly
 * these shapes.
 *
 * @module
 */
import type { MemoryItem, MemoryKind, Session, SessionStatus, Turn, TurnRole } from '../../src/index.js'

/** A memory as shown. */
export interface MemoryView {
  id: string
  text: string
  scope: string
  kind: MemoryKind
  tags: string[]
  createdAt: number
  updatedAt: number
  /** The device that wrote it. */
  deviceId: string
  sessionId?: string
  confidence?: number
  validFrom?: number
  validTo?: number
  expiresAt?: number
  supersedes?: string
  supersededBy?: string
}

/** A turn as shown. */
export interface TurnView {
  id: string
  role: TurnRole
  text: string
  /** False while it is still being streamed. */
  done: boolean
  deviceId: string
  createdAt: number
  updatedAt: number
  /** The types of its parts, in order. */
  parts: string[]
}

/** A session without its turns. */
export interface SessionSummaryView {
  id: string
  title: string
  scope: string
  status: SessionStatus
  createdAt: number
  updatedAt: number
  activeDevice: string
  turnCount: number
  summary?: string
}

/** A session with its turns. */
export interface SessionView extends SessionSummaryView {
  turns: TurnView[]
}

/** A memory item as shown. */
export function memoryView(item: MemoryItem): MemoryView {
  return {
    id: item.id,
    text: item.text,
    scope: item.scope,
    kind: item.kind,
    tags: [...item.tags],
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
    deviceId: item.source.deviceId,
    ...(item.source.sessionId !== undefined && { sessionId: item.source.sessionId }),
    ...(item.confidence !== undefined && { confidence: item.confidence }),
    ...(item.validFrom !== undefined && { validFrom: item.validFrom }),
    ...(item.validTo !== undefined && { validTo: item.validTo }),
    ...(item.expiresAt !== undefined && { expiresAt: item.expiresAt }),
    ...(item.supersedes !== undefined && { supersedes: item.supersedes }),
    ...(item.supersededBy !== undefined && { supersededBy: item.supersededBy }),
  }
}

/** A turn as shown. */
export function turnView(turn: Turn): TurnView {
  return {
    id: turn.id,
    role: turn.role,
    text: turn.text,
    done: turn.done,
    deviceId: turn.deviceId,
    createdAt: turn.createdAt,
    updatedAt: turn.updatedAt,
    parts: turn.parts.map((p) => p.type),
  }
}

/** A session's header as shown. */
export function sessionSummaryView(session: Session): SessionSummaryView {
  return {
    id: session.id,
    title: session.title,
    scope: session.scope,
    status: session.status,
    createdAt: session.createdAt,
    updatedAt: session.updatedAt,
    activeDevice: session.activeDevice,
    turnCount: session.turns.length,
    ...(session.summary !== undefined && { summary: session.summary }),
  }
}

/** A session with its last `lastTurns` turns (all when undefined). */
export function sessionView(session: Session, lastTurns?: number): SessionView {
  const turns = lastTurns === undefined ? session.turns : session.turns.slice(-lastTurns)
  return { ...sessionSummaryView(session), turns: turns.map(turnView) }
}

/** URI of a memory resource. */
export function memoryUri(id: string): string {
  return `contextsync://memories/${encodeURIComponent(id)}`
}

/** URI of a session resource. */
export function sessionUri(id: string): string {
  return `contextsync://sessions/${encodeURIComponent(id)}`
}
