/**
 * The MCP tools of a PC: remember, recall, list/show memories, forget, list sessions, read a
 * session, append a turn, hand off a session. Each has an input and an output schema and says
 * whether it only reads, destroys, or may be repeated safely. Every tool sees only the PC's
 * exposed scopes: naming another scope is a tool error, and an id of an item in another scope is
 * answered exactly like an id that does not exist.
 *
 * @module
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { z } from 'zod'
import { MEMORY_KINDS, NotFoundError, SESSION_STATUSES, TURN_ROLES, type MemoryItem, type Session } from '../../../src/index.js'
import type { PcDevice } from '../open-pc.js'
import { recallExposed } from '../recall.js'
import { memorySchema, memoryView, sessionSchema, sessionSummarySchema, sessionSummaryView, sessionView } from './shapes.js'

const MAX_LIMIT = 200

/** A successful result: the structured content, and the same JSON as text for clients without structured output. */
function result<T extends Record<string, unknown>>(structured: T): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured }
}

const scopeInput = z.string().min(1).optional().describe('one scope this server exposes; default all of them')
const limitInput = z.number().int().min(1).max(MAX_LIMIT).optional()

/** Register the tools of `pc` on `server`. */
export function registerTools(server: McpServer, pc: PcDevice): void {
  const memory = pc.sync.memory
  const sessions = pc.sync.sessions
  /** The scopes a read covers: the one named (checked), else every exposed scope. */
  const scopesOf = (scope: string | undefined): string[] => (scope === undefined ? pc.exposedScopes() : [pc.requireScope(scope)])
  const visibleMemory = (id: string): MemoryItem => {
    const item = memory.get(id)
    if (!item || !pc.exposedScopes().includes(item.scope)) throw new NotFoundError(`no memory '${id}' here`)
    return item
  }
  const visibleSession = (id: string): Session => {
    const session = sessions.get(id)
    if (!session || !pc.exposedScopes().includes(session.scope)) throw new NotFoundError(`no session '${id}' here`)
    return session
  }

  server.registerTool(
    'remember',
    {
      title: 'Remember',
      description: "Store a long-term memory about the user (a fact, preference, instruction, event or summary). It syncs, end-to-end encrypted, to the user's other devices that hold its scope.",
      inputSchema: {
        text: z.string().min(1).max(10_000),
        scope: z.string().min(1).optional().describe("default 'personal'"),
        kind: z.enum(MEMORY_KINDS).optional().describe("default 'fact'"),
        tags: z.array(z.string().min(1).max(64)).max(32).optional(),
        confidence: z.number().min(0).max(1).optional(),
        expiresAt: z.number().int().positive().optional().describe('epoch ms after which it is erased everywhere'),
        sessionId: z.string().optional().describe('the conversation it was learned in'),
      },
      outputSchema: { memory: memorySchema },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args) => {
      const scope = pc.requireScope(args.scope ?? 'personal')
      if (args.sessionId !== undefined) visibleSession(args.sessionId)
      const item = await memory.remember({
        text: args.text,
        scope,
        ...(args.kind !== undefined && { kind: args.kind }),
        ...(args.tags !== undefined && { tags: args.tags }),
        ...(args.confidence !== undefined && { confidence: args.confidence }),
        ...(args.expiresAt !== undefined && { expiresAt: args.expiresAt }),
        ...(args.sessionId !== undefined && { sessionId: args.sessionId }),
      })
      return result({ memory: memoryView(item) })
    },
  )

  server.registerTool(
    'recall',
    {
      title: 'Recall memories',
      description: 'Find the memories most relevant to a query (full-text ranking over text and tags, on this device). Best first.',
      inputSchema: {
        query: z.string().min(1).max(2_000),
        scope: scopeInput,
        tags: z.array(z.string()).optional().describe('only memories carrying every one of these tags'),
        kind: z.enum(MEMORY_KINDS).optional(),
        limit: limitInput.describe('default 10'),
      },
      outputSchema: { memories: z.array(memorySchema.extend({ score: z.number() })) },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (args) => {
      const limit = args.limit ?? 10
      const hits = recallExposed(pc, {
        text: args.query,
        limit,
        ...(args.scope !== undefined && { scope: args.scope }),
        ...(args.tags !== undefined && { tags: args.tags }),
        ...(args.kind !== undefined && { kind: args.kind }),
      })
      return result({ memories: hits.map((h) => ({ ...memoryView(h.item), score: h.score })) })
    },
  )

  server.registerTool(
    'list_memories',
    {
      title: 'List memories',
      description: 'List memories, newest first, optionally filtered by scope, tags and kind.',
      inputSchema: { scope: scopeInput, tags: z.array(z.string()).optional(), kind: z.enum(MEMORY_KINDS).optional(), limit: limitInput.describe('default 50') },
      outputSchema: { memories: z.array(memorySchema) },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (args) => {
      const limit = args.limit ?? 50
      const items = scopesOf(args.scope).flatMap((scope) =>
        memory.list({ scope, limit, ...(args.tags !== undefined && { tags: args.tags }), ...(args.kind !== undefined && { kind: args.kind }) }),
      )
      items.sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1))
      return result({ memories: items.slice(0, limit).map(memoryView) })
    },
  )

  server.registerTool(
    'show_memory',
    {
      title: 'Show a memory',
      description: 'One memory by id, with the versions it replaced (oldest first).',
      inputSchema: { id: z.string().min(1) },
      outputSchema: { memory: memorySchema, history: z.array(memorySchema) },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (args) => {
      const item = visibleMemory(args.id)
      const history = memory.history(item.id).filter((v) => v.id !== item.id)
      return result({ memory: memoryView(item), history: history.map(memoryView) })
    },
  )

  server.registerTool(
    'forget',
    {
      title: 'Forget a memory',
      description: "Delete a memory on every device of the user, and erase its text from the encrypted logs. Cannot be undone.",
      inputSchema: { id: z.string().min(1), history: z.boolean().optional().describe('also forget the versions it replaced (default true)') },
      outputSchema: { forgotten: z.boolean().describe('false when it was already gone') },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    async (args) => {
      const item = memory.get(args.id)
      // Gone already (here or on another device first): idempotent, not an error.
      if (!item) return result({ forgotten: false })
      visibleMemory(args.id)
      return result({ forgotten: await memory.forget(args.id, { history: args.history ?? true }) })
    },
  )

  server.registerTool(
    'list_sessions',
    {
      title: 'List conversations',
      description: "The user's conversations across their devices, most recently updated first.",
      inputSchema: { scope: scopeInput, status: z.enum(SESSION_STATUSES).optional(), limit: limitInput.describe('default 20') },
      outputSchema: { sessions: z.array(sessionSummarySchema) },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (args) => {
      const limit = args.limit ?? 20
      const list = scopesOf(args.scope).flatMap((scope) => sessions.list({ scope, limit, ...(args.status !== undefined && { status: args.status }) }))
      list.sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1))
      return result({ sessions: list.slice(0, limit).map(sessionSummaryView) })
    },
  )

  server.registerTool(
    'read_session',
    {
      title: 'Read a conversation',
      description: 'A conversation with its turns (a turn still being streamed on another device has done: false).',
      inputSchema: { id: z.string().min(1), lastTurns: z.number().int().min(1).max(10_000).optional().describe('only the last N turns') },
      outputSchema: { session: sessionSchema },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async (args) => result({ session: sessionView(visibleSession(args.id), args.lastTurns) }),
  )

  server.registerTool(
    'append_turn',
    {
      title: 'Append a turn',
      description: 'Add a turn to a conversation (or start a new one without sessionId), so the user can continue it on another device.',
      inputSchema: {
        sessionId: z.string().min(1).optional().describe('omit to start a new conversation'),
        role: z.enum(TURN_ROLES),
        text: z.string().min(1).max(100_000),
        scope: z.string().min(1).optional().describe("for a new conversation; default 'personal'"),
        title: z.string().max(200).optional().describe('for a new conversation'),
      },
      outputSchema: { sessionId: z.string(), turnId: z.string() },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args) => {
      let handle
      if (args.sessionId !== undefined) {
        visibleSession(args.sessionId)
        handle = sessions.open(args.sessionId)
      } else {
        handle = sessions.start({ scope: pc.requireScope(args.scope ?? 'personal'), ...(args.title !== undefined && { title: args.title }) })
      }
      const turn = await handle.append({ role: args.role, text: args.text })
      return result({ sessionId: handle.id, turnId: turn.id })
    },
  )

  server.registerTool(
    'hand_off_session',
    {
      title: 'Hand off a conversation',
      description: "Offer a conversation to another of the user's devices (a kind: phone, glasses, car, pc — or a device id). It becomes the active device once that device accepts.",
      inputSchema: {
        sessionId: z.string().min(1),
        to: z.string().min(1).max(64),
        expiresInSeconds: z.number().int().min(1).max(86_400).optional().describe('default 60'),
      },
      outputSchema: { offerId: z.string(), status: z.enum(['pending', 'accepted', 'declined', 'expired', 'cancelled']), expiresAt: z.number() },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    async (args) => {
      visibleSession(args.sessionId)
      const offer = await sessions.open(args.sessionId).handoff({ to: args.to, ...(args.expiresInSeconds !== undefined && { expiresIn: args.expiresInSeconds * 1000 }) })
      const info = offer.info()
      return result({ offerId: info.id, status: info.status, expiresAt: info.expiresAt })
    },
  )
}
