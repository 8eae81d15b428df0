/**
 * What the MCP server shows of memories and sessions: zod schemas (the tools' output schemas) and
 * the functions that turn library objects into them. Embeddings are left out (they are large and
 * no assistant reads them); everything else a memory carries is shown.
 *
 * @module
 */
import { z } from 'zod'
import { MEMORY_KINDS, SESSION_STATUSES, TURN_ROLES, type MemoryItem, type Session, type Turn } from '../../../src/index.js'

/** A memory as tools and resources show it. */
export const memorySchema = z.object({
  id: z.string(),
  text: z.string(),
  scope: z.string(),
  kind: z.enum(MEMORY_KINDS),
  tags: z.array(z.string()),
  createdAt: z.number().describe('epoch ms'),
  updatedAt: z.number().describe('epoch ms'),
  deviceId: z.string().describe('the device that wrote it'),
  sessionId: z.string().optional(),
  confidence: z.number().optional(),
  validFrom: z.number().optional(),
  validTo: z.number().optional(),
  expiresAt: z.number().optional(),
  supersedes: z.string().optional(),
  supersededBy: z.string().optional(),
})

/** A memory as shown. */
export type MemoryView = z.infer<typeof memorySchema>

/** A turn as shown. */
export const turnSchema = z.object({
  id: z.string(),
  role: z.enum(TURN_ROLES),
  text: z.string(),
  done: z.boolean().describe('false while the turn is still being streamed'),
  deviceId: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
  parts: z.array(z.string()).describe('the types of its parts, in order'),
})

/** A session without its turns, as lists show it. */
export const sessionSummarySchema = z.object({
  id: z.string(),
  title: z.string(),
  scope: z.string(),
  status: z.enum(SESSION_STATUSES),
  createdAt: z.number(),
  updatedAt: z.number(),
  activeDevice: z.string(),
  turnCount: z.number(),
  summary: z.string().optional(),
})

/** A session with its turns. */
export const sessionSchema = sessionSummarySchema.extend({ turns: z.array(turnSchema) })

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
export function turnView(turn: Turn): z.infer<typeof turnSchema> {
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
export function sessionSummaryView(session: Session): z.infer<typeof sessionSummarySchema> {
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
export function sessionView(session: Session, lastTurns?: number): z.infer<typeof sessionSchema> {
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
