/**
 * An OpenAI Agents SDK `Session` backed by a contextsync session: pass it to `run(agent, input,
 * { session })` and the agent's conversation history is the one every device of the person sees.
 * The SDK's types are declared structurally in `openai-agents-items.ts` (assignable both ways to
 * `@openai/agents-core`'s `Session` and `AgentInputItem`); contextsync does not depend on the SDK.
 *
 * Mapping: one item ⇄ one turn. Messages become text parts (role user / system / assistant),
 * `function_call` a `tool-call` part, `function_call_result` a `tool-result` part in a `tool`
 * turn, `reasoning` reasoning parts; anything else is kept verbatim in a data part. What the turn
 * model does not hold (item ids, statuses, `providerData`, content types…) is kept in the turn's
 * `metadata['@openai']` and the parts' `meta['@openai']`, so items come back exactly as added.
 * Turns written by other means (the glasses' user turns, a streamed answer) are read as the
 * equivalent items. Binary tool-output data (`Uint8Array`) is stored as base64 and reads back as
 * the base64 string, which the SDK takes in the same field.
 *
 * @example
 * ```ts
 * import { Agent, run } from '@openai/agents'
 * import { openAIAgentsSession } from 'contextsync'
 * const session = openAIAgentsSession(pc.sessions, { sessionId: s.id })
 * const result = await run(agent, 'And tomorrow?', { session })
 * ```
 *
 * @module
 */
import type { JsonObject, JsonValue } from '../crdt/json.js'
import type { Turn } from '../crdt/sessions.js'
import { ValidationError } from '../errors.js'
import { requireJson } from '../facade/check-json-args.js'
import type { AppendInput, SessionHandle, SessionsApi, TurnPartInput } from '../facade/sessions.js'
import { requireObject } from '../facade/check-args.js'
import { toBase64Url } from '../util/bytes.js'
import type { AgentInputItem, AgentInputText, AgentsSession, AgentUserContent } from './openai-agents-items.js'

export type * from './openai-agents-items.js'

const TURN_META = '@openai'
const CONTENT = '@openai/content'
const ITEM = '@openai/item'

/** Options of {@link openAIAgentsSession}. */
export interface AgentsSessionOptions {
  /** Continue this session; default: start a new one. */
  sessionId?: string
  /** For a new session. Default `'personal'`. */
  scope?: string
  /** For a new session. */
  title?: string
}

/**
 * An Agents SDK `Session` on a contextsync session (a new one unless `sessionId` is given).
 */
export function openAIAgentsSession(sessions: SessionsApi, options: AgentsSessionOptions = {}): ContextSyncAgentsSession {
  const fields = requireObject(options, 'openAIAgentsSession(sessions, options)')
  const handle =
    fields.sessionId !== undefined
      ? sessions.open(fields.sessionId as string)
      : sessions.start({ ...(fields.scope !== undefined && { scope: fields.scope as string }), ...(fields.title !== undefined && { title: fields.title as string }) })
  return new ContextSyncAgentsSession(handle)
}

/** {@link AgentsSession} implementation; see {@link openAIAgentsSession}. */
export class ContextSyncAgentsSession implements AgentsSession {
  constructor(
    /** The contextsync session behind it. */
    readonly session: SessionHandle,
  ) {}

  /** The contextsync session id. */
  async getSessionId(): Promise<string> {
    return this.session.id
  }

  /** The latest `limit` items (all without it), oldest first. */
  async getItems(limit?: number): Promise<AgentInputItem[]> {
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) throw new ValidationError('limit must be a non-negative integer')
    const items = this.session.get().turns.flatMap((turn) => turnToItems(turn).map((x) => x.item))
    return limit === undefined ? items : limit === 0 ? [] : items.slice(-limit)
  }

  /** Append items (one turn each, one write). */
  async addItems(items: AgentInputItem[]): Promise<void> {
    if (!Array.isArray(items)) throw new ValidationError('addItems(items) takes an array of items')
    if (items.length === 0) return
    await this.session.appendMany(items.map((item, i) => itemToTurn(item, `items[${i}]`)))
  }

  /** Remove and return the latest item. */
  async popItem(): Promise<AgentInputItem | undefined> {
    const turns = this.session.get().turns
    for (let i = turns.length - 1; i >= 0; i--) {
      const turn = turns[i]!
      const items = turnToItems(turn)
      const last = items[items.length - 1]
      if (!last) continue
      if (items.length === 1) await this.session.removeTurn(turn.id)
      else await this.session.removeParts(turn.id, last.parts)
      return last.item
    }
    return undefined
  }

  /** Remove every item (and compact them out of the sealed logs). */
  async clearSession(): Promise<void> {
    await this.session.clear()
  }
}

/** The turn an item is stored as. */
export function itemToTurn(value: AgentInputItem, name = 'item'): AppendInput {
  const item = requireJson(bytesToBase64(requireObject(value, name)), name) as JsonObject
  const type = item.type
  const role = item.role
  const rest = (exclude: string[]): JsonObject => Object.fromEntries(Object.entries(item).filter(([k]) => !exclude.includes(k)))
  if ((type === undefined || type === 'message') && (role === 'user' || role === 'system' || role === 'assistant')) {
    const content = item.content
    if (typeof content === 'string') {
      return { role, parts: [{ type: 'text', text: content }], metadata: { [TURN_META]: { kind: 'message', string: true, rest: rest(['role', 'content']) } } }
    }
    if (Array.isArray(content)) {
      const parts: TurnPartInput[] = content.map((c) =>
        isObject(c) && (c.type === 'input_text' || c.type === 'output_text') && typeof c.text === 'string'
          ? { type: 'text', text: c.text, meta: { [TURN_META]: without(c, 'text') } }
          : { type: 'data', name: CONTENT, data: c },
      )
      if (parts.length > 0) return { role, parts, metadata: { [TURN_META]: { kind: 'message', rest: rest(['role', 'content']) } } }
    }
  }
  if (type === 'function_call' && typeof item.callId === 'string' && typeof item.name === 'string' && typeof item.arguments === 'string') {
    const parsed = parseArguments(item.arguments)
    return {
      role: 'assistant',
      parts: [
        {
          type: 'tool-call',
          toolCallId: item.callId,
          toolName: item.name,
          input: parsed.ok ? parsed.value : item.arguments,
          ...(!parsed.ok && { meta: { [TURN_META]: { rawArguments: true } } }),
        },
      ],
      metadata: { [TURN_META]: { kind: 'function_call', rest: rest(['callId', 'name', 'arguments']) } },
    }
  }
  if (type === 'function_call_result' && typeof item.callId === 'string' && typeof item.name === 'string') {
    return {
      role: 'tool',
      parts: [{ type: 'tool-result', toolCallId: item.callId, toolName: item.name, output: item.output ?? null }],
      metadata: { [TURN_META]: { kind: 'function_call_result', rest: rest(['callId', 'name', 'output']) } },
    }
  }
  if (type === 'reasoning' && Array.isArray(item.content) && item.content.length > 0) {
    const parts: TurnPartInput[] = item.content.map((c) =>
      isObject(c) && c.type === 'input_text' && typeof c.text === 'string'
        ? { type: 'reasoning', text: c.text, meta: { [TURN_META]: without(c, 'text') } }
        : { type: 'data', name: CONTENT, data: c },
    )
    return { role: 'assistant', parts, metadata: { [TURN_META]: { kind: 'reasoning', rest: rest(['content']) } } }
  }
  return { role: 'assistant', parts: [{ type: 'data', name: ITEM, data: item }], metadata: { [TURN_META]: { kind: 'item' } } }
}

/**
 * The items a turn reads as, each with the indexes of the parts it came from. A turn written by
 * this adapter is exactly one item; another turn may be several (e.g. text, then a tool call).
 */
export function turnToItems(turn: Turn): Array<{ item: AgentInputItem; parts: number[] }> {
  const all = turn.parts.map((_, i) => i)
  const stored = turn.metadata?.[TURN_META]
  if (isObject(stored) && typeof stored.kind === 'string') {
    const rest = isObject(stored.rest) ? stored.rest : {}
    const content = turn.parts.map((p) => {
      if ((p.type === 'text' || p.type === 'reasoning') && isObject(p.meta?.[TURN_META])) return { ...(p.meta[TURN_META] as JsonObject), text: p.text }
      if (p.type === 'data' && p.name === CONTENT) return p.data
      return undefined
    })
    const first = turn.parts[0]
    switch (stored.kind) {
      case 'message':
        return [{ item: storedItem({ ...rest, role: turn.role, content: stored.string === true ? turn.text : content.filter((c) => c !== undefined) }), parts: all }]
      case 'function_call':
        if (first?.type === 'tool-call') {
          const raw = isObject(first.meta?.[TURN_META]) && first.meta[TURN_META].rawArguments === true
          return [{ item: storedItem({ ...rest, type: 'function_call', callId: first.toolCallId, name: first.toolName, arguments: raw ? String(first.input) : JSON.stringify(first.input) }), parts: all }]
        }
        break
      case 'function_call_result':
        if (first?.type === 'tool-result') {
          return [{ item: storedItem({ ...rest, type: 'function_call_result', callId: first.toolCallId, name: first.toolName, output: first.output ?? null }), parts: all }]
        }
        break
      case 'reasoning':
        return [{ item: storedItem({ ...rest, type: 'reasoning', content: content.filter((c) => c !== undefined) }), parts: all }]
      case 'item':
        if (first?.type === 'data' && isObject(first.data)) return [{ item: storedItem(first.data), parts: all }]
        break
    }
  }
  return genericItems(turn)
}

/** Items for a turn not written by this adapter. */
function genericItems(turn: Turn): Array<{ item: AgentInputItem; parts: number[] }> {
  const out: Array<{ item: AgentInputItem; parts: number[] }> = []
  let text: { value: string; parts: number[] } | undefined
  let reasoning: { value: AgentInputText[]; parts: number[] } | undefined
  const flushText = (): void => {
    if (!text) return
    const content = text.value
    const item: AgentInputItem =
      turn.role === 'user'
        ? { role: 'user', content }
        : turn.role === 'system'
          ? { role: 'system', content }
          : { type: 'message', role: 'assistant', status: turn.done ? 'completed' : 'in_progress', content: [{ type: 'output_text', text: content }] }
    out.push({ item, parts: text.parts })
    text = undefined
  }
  const flushReasoning = (): void => {
    if (!reasoning) return
    out.push({ item: { type: 'reasoning', content: reasoning.value }, parts: reasoning.parts })
    reasoning = undefined
  }
  turn.parts.forEach((part, i) => {
    if (part.type === 'text') {
      flushReasoning()
      text ??= { value: '', parts: [] }
      text.value += part.text
      text.parts.push(i)
      return
    }
    flushText()
    if (part.type === 'reasoning') {
      reasoning ??= { value: [], parts: [] }
      reasoning.value.push({ type: 'input_text', text: part.text })
      reasoning.parts.push(i)
      return
    }
    flushReasoning()
    if (part.type === 'tool-call') {
      out.push({ item: { type: 'function_call', callId: part.toolCallId, name: part.toolName, arguments: JSON.stringify(part.input), status: 'completed' }, parts: [i] })
    } else if (part.type === 'tool-result') {
      const output = part.errorText !== undefined ? part.errorText : typeof part.output === 'string' ? part.output : JSON.stringify(part.output ?? null)
      out.push({ item: { type: 'function_call_result', callId: part.toolCallId, name: part.toolName, status: part.errorText !== undefined ? 'incomplete' : 'completed', output }, parts: [i] })
    } else if (part.type === 'file' && turn.role === 'user') {
      const content: AgentUserContent = part.mediaType.startsWith('image/')
        ? { type: 'input_image', image: part.url }
        : { type: 'input_file', file: part.url, ...(part.filename !== undefined && { filename: part.filename }) }
      out.push({ item: { role: 'user', content: [content] }, parts: [i] })
    }
    // Data parts and assistant-side files have no Agents SDK input form; they are left out.
  })
  flushText()
  flushReasoning()
  return out
}

/**
 * An item as {@link itemToTurn} stored it, put back together. Its shape is the one the SDK gave
 * `addItems` (on whichever device wrote it); the turn reader has re-checked it is JSON.
 */
function storedItem(item: JsonObject): AgentInputItem {
  return item as unknown as AgentInputItem
}

function parseArguments(text: string): { ok: true; value: JsonValue } | { ok: false } {
  try {
    const value = JSON.parse(text) as JsonValue
    // Only when it gives the same string back, so `arguments` round-trips byte for byte.
    return JSON.stringify(value) === text ? { ok: true, value } : { ok: false }
  } catch {
    return { ok: false }
  }
}

/**
 * `value` with every `Uint8Array` (tool-output image and file data) replaced by its base64 text,
 * which JSON can hold and the SDK reads the same way ("raw bytes that will be base64 encoded").
 */
function bytesToBase64(value: unknown, depth = 0): unknown {
  // Deeper than stored JSON may be: left for requireJson to refuse.
  if (depth > 64) return value
  if (value instanceof Uint8Array) {
    const url = toBase64Url(value).replace(/-/g, '+').replace(/_/g, '/')
    return url + '='.repeat((4 - (url.length % 4)) % 4)
  }
  if (Array.isArray(value)) return value.map((v) => bytesToBase64(v, depth + 1))
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, bytesToBase64(v, depth + 1)]))
  }
  return value
}

function without(object: JsonObject, key: string): JsonObject {
  return Object.fromEntries(Object.entries(object).filter(([k]) => k !== key))
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
