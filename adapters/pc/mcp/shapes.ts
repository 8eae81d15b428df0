/**
 * The MCP tools' output schemas (zod) of what the PC shows of memories and sessions
 * (`../views.ts`); the type checks below keep each schema and its view the same shape.
 *
 * @module
 */
import { z } from 'zod'
import { MEMORY_KINDS, SESSION_STATUSES, TURN_ROLES } from '../../../src/index.js'
import type { MemoryView, SessionSummaryView, SessionView, TurnView } from '../views.js'

export { memoryUri, memoryView, sessionSummaryView, sessionUri, sessionView, turnView } from '../views.js'

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

/** Compile-time: each schema's output type and its view type are the same. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const sameShapes: [
  Same<z.infer<typeof memorySchema>, MemoryView>,
  Same<z.infer<typeof turnSchema>, TurnView>,
  Same<z.infer<typeof sessionSummarySchema>, SessionSummaryView>,
  Same<z.infer<typeof sessionSchema>, SessionView>,
] = [true, true, true, true]
void sameShapes
