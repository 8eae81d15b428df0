/**
 * Conversion between contextsync turns and the Vercel AI SDK's `UIMessage[]` (AI SDK 5 shape),
 * so a `useChat` UI can render a conversation that continues across devices and push new messages
 * into it. The types are declared here, structurally; contextsync does not depend on the SDK.
 *
 * Mapping: one message ⇄ one turn (`message.id` is the turn id). Text and reasoning parts map to
 * themselves; a tool part becomes a `tool-call` part plus, once it has an output or error, a
 * `tool-result` part; `file` and `data-*` parts map to file and data parts. Other parts
 * (`step-start`, `source-url`, `source-document`, future ones) are kept verbatim in a data part
 * named `@ui/part`. Fields contextsync does not model (provider metadata, approvals, …) travel in
 * each part's `meta['@ui']`, so `toUIMessages(fromUIMessages(m))` gives `m` back.
 *
 * @example
 * ```ts
 * import { appendUIMessages, toUIMessages } from 'contextsync'
 * await appendUIMessages(session, messagesFromUseChat)
 * const messages = toUIMessages(pc.sessions.get(session.id)!)   // render with useChat on the PC
 * ```
 *
 * @module
 */
import type { JsonObject, JsonValue } from '../crdt/json.js'
import type { Session, Turn, TurnPart } from '../crdt/sessions.js'
import { ValidationError } from '../errors.js'
import { requireJson } from '../facade/json.js'
import type { AppendInput, SessionHandle, TurnPartInput } from '../facade/sessions.js'
import { requireObject } from '../facade/validate.js'

/** Provider-specific metadata (AI SDK `ProviderMetadata`). */
export type UIProviderMetadata = Record<string, Record<string, JsonValue>>

/** Text shown to the user. */
export interface UITextPart {
  type: 'text'
  text: string
  state?: 'streaming' | 'done'
  providerMetadata?: UIProviderMetadata
}

/** Model reasoning. */
export interface UIReasoningPart {
  type: 'reasoning'
  text: string
  state?: 'streaming' | 'done'
  providerMetadata?: UIProviderMetadata
}

/** States of a tool invocation. */
export type UIToolState = 'input-streaming' | 'input-available' | 'output-available' | 'output-error'

/** A tool invocation of a statically known tool (`type: 'tool-<name>'`). */
export interface UIToolPart {
  type: `tool-${string}`
  toolCallId: string
  state: UIToolState
  input?: unknown
  output?: unknown
  errorText?: string
  providerExecuted?: boolean
  callProviderMetadata?: UIProviderMetadata
}

/** A tool invocation of a tool not known at build time. */
export interface UIDynamicToolPart {
  type: 'dynamic-tool'
  toolName: string
  toolCallId: string
  state: UIToolState
  input?: unknown
  output?: unknown
  errorText?: string
  callProviderMetadata?: UIProviderMetadata
}

/** A file (by URL or data URL). */
export interface UIFilePart {
  type: 'file'
  mediaType: string
  filename?: string
  url: string
  providerMetadata?: UIProviderMetadata
}

/** App data (`type: 'data-<name>'`). */
export interface UIDataPart {
  type: `data-${string}`
  id?: string
  data: unknown
}

/** A source the answer used. */
export interface UISourceUrlPart {
  type: 'source-url'
  sourceId: string
  url: string
  title?: string
  providerMetadata?: UIProviderMetadata
}

/** A document source. */
export interface UISourceDocumentPart {
  type: 'source-document'
  sourceId: string
  mediaType: string
  title: string
  filename?: string
  providerMetadata?: UIProviderMetadata
}

/** Step boundary. */
export interface UIStepStartPart {
  type: 'step-start'
}

/** One part of a {@link UIMessage}. */
export type UIMessagePart =
  | UITextPart
  | UIReasoningPart
  | UIToolPart
  | UIDynamicToolPart
  | UIFilePart
  | UIDataPart
  | UISourceUrlPart
  | UISourceDocumentPart
  | UIStepStartPart

/** The AI SDK's `UIMessage`. */
export interface UIMessage {
  id: string
  role: 'system' | 'user' | 'assistant'
  metadata?: unknown
  parts: UIMessagePart[]
}

const UI_META = '@ui'
const UI_PART = '@ui/part'
const UI_MESSAGE_METADATA = '@ui/metadata'
const UI_ROLES = ['system', 'user', 'assistant'] as const

/**
 * Turns (the `append` inputs) for AI SDK messages. Pass them to `session.appendMany`, or use
 * {@link appendUIMessages}.
 */
export function fromUIMessages(messages: UIMessage[]): AppendInput[] {
  if (!Array.isArray(messages)) throw new ValidationError('fromUIMessages(messages) takes an array of UIMessage')
  return messages.map((message, i) => fromUIMessage(message, `messages[${i}]`))
}

/** Append AI SDK messages to a session (one turn each, ids kept). */
export function appendUIMessages(session: SessionHandle, messages: UIMessage[]): Promise<Turn[]> {
  return session.appendMany(fromUIMessages(messages))
}

function fromUIMessage(message: UIMessage, name: string): AppendInput {
  const fields = requireObject(message, name)
  if (typeof fields.id !== 'string' || fields.id.length === 0) throw new ValidationError(`${name}.id must be a non-empty string`)
  const role = fields.role
  if (typeof role !== 'string' || !(UI_ROLES as readonly string[]).includes(role)) {
    throw new ValidationError(`${name}.role must be 'system', 'user' or 'assistant'`)
  }
  if (!Array.isArray(fields.parts)) throw new ValidationError(`${name}.parts must be an array`)
  const parts: TurnPartInput[] = []
  fields.parts.forEach((part: unknown, j: number) => parts.push(...fromUIPart(part, `${name}.parts[${j}]`)))
  if (parts.length === 0) parts.push({ type: 'data', name: UI_PART, data: { type: 'step-start', '@empty': true } })
  const input: AppendInput = { role: role as AppendInput['role'], id: fields.id, parts }
  if (fields.metadata !== undefined) {
    const metadata = requireJson(fields.metadata, `${name}.metadata`)
    input.metadata = isObject(metadata) && !Object.keys(metadata).some((k) => k.startsWith('@')) ? metadata : { [UI_MESSAGE_METADATA]: metadata }
  }
  return input
}

function fromUIPart(value: unknown, name: string): TurnPartInput[] {
  const part = requireObject(value, name)
  const type = part.type
  if (typeof type !== 'string') throw new ValidationError(`${name}.type must be a string`)
  const residual = (exclude: string[]): { meta?: JsonObject } => {
    const rest: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(part)) if (!exclude.includes(k) && v !== undefined) rest[k] = v
    return Object.keys(rest).length > 0 ? { meta: { [UI_META]: requireJson(rest, `${name}`) as JsonObject } } : {}
  }
  if (type === 'text' || type === 'reasoning') {
    if (typeof part.text !== 'string') throw new ValidationError(`${name}.text must be a string`)
    const meta = residual(['type', 'text', 'state'])
    if (part.state === undefined) (meta.meta ??= {})[UI_META] = { ...((meta.meta?.[UI_META] as JsonObject | undefined) ?? {}), noState: true }
    return [{ type, text: part.text, ...meta }]
  }
  if (type === 'dynamic-tool' || type.startsWith('tool-')) {
    const dynamic = type === 'dynamic-tool'
    const toolName = dynamic ? part.toolName : type.slice('tool-'.length)
    if (typeof toolName !== 'string' || toolName.length === 0) throw new ValidationError(`${name} needs a tool name`)
    if (typeof part.toolCallId !== 'string') throw new ValidationError(`${name}.toolCallId must be a string`)
    const state = part.state
    if (state !== 'input-streaming' && state !== 'input-available' && state !== 'output-available' && state !== 'output-error') {
      throw new ValidationError(`${name}.state must be a tool state, got ${JSON.stringify(state)}`)
    }
    const extra = residual(['type', 'toolName', 'toolCallId', 'state', 'input', 'output', 'errorText', 'providerExecuted'])
    if (part.input === undefined) (extra.meta ??= {})[UI_META] = { ...((extra.meta?.[UI_META] as JsonObject | undefined) ?? {}), noInput: true }
    const call: TurnPartInput = {
      type: 'tool-call',
      toolCallId: part.toolCallId,
      toolName,
      input: part.input === undefined ? null : requireJson(part.input, `${name}.input`),
      state: state === 'input-streaming' ? 'input-streaming' : 'input-available',
      ...(part.providerExecuted === true && { providerExecuted: true }),
      ...(dynamic && { dynamic: true }),
      ...extra,
    }
    if (state === 'output-available') {
      return [call, { type: 'tool-result', toolCallId: part.toolCallId, toolName, output: part.output === undefined ? null : requireJson(part.output, `${name}.output`) }]
    }
    if (state === 'output-error') {
      return [call, { type: 'tool-result', toolCallId: part.toolCallId, toolName, errorText: typeof part.errorText === 'string' ? part.errorText : '' }]
    }
    return [call]
  }
  if (type === 'file') {
    if (typeof part.mediaType !== 'string' || typeof part.url !== 'string') throw new ValidationError(`${name} needs mediaType and url`)
    return [
      {
        type: 'file',
        mediaType: part.mediaType,
        url: part.url,
        ...(typeof part.filename === 'string' && { filename: part.filename }),
        ...residual(['type', 'mediaType', 'url', 'filename']),
      },
    ]
  }
  if (type.startsWith('data-') && type.length > 'data-'.length) {
    return [
      {
        type: 'data',
        name: type.slice('data-'.length),
        data: part.data === undefined ? null : requireJson(part.data, `${name}.data`),
        ...(typeof part.id === 'string' && { id: part.id }),
      },
    ]
  }
  return [{ type: 'data', name: UI_PART, data: requireJson(part, name) }]
}

/**
 * AI SDK messages for a session (or its turns). Tool results in later `tool` turns are merged
 * into the assistant message that made the call, as the AI SDK shows them. A turn still being
 * streamed gives text parts with `state: 'streaming'`.
 */
export function toUIMessages(source: Session | Turn[]): UIMessage[] {
  const turns = Array.isArray(source) ? source : source.turns
  const out: UIMessage[] = []
  const tools = new Map<string, UIToolPart | UIDynamicToolPart>()
  for (const turn of turns) {
    const parts: UIMessagePart[] = []
    for (const part of turn.parts) {
      const converted = toUIPart(part, tools)
      if (converted) parts.push(converted)
    }
    if (turn.role === 'tool' && parts.length === 0) continue
    const message: UIMessage = { id: turn.id, role: turn.role === 'tool' ? 'assistant' : turn.role, parts }
    const metadata = uiMetadata(turn.metadata)
    if (metadata !== undefined) message.metadata = metadata
    out.push(message)
  }
  return out
}

function toUIPart(part: TurnPart, tools: Map<string, UIToolPart | UIDynamicToolPart>): UIMessagePart | undefined {
  const extra = { ...((part.meta?.[UI_META] as JsonObject | undefined) ?? {}) }
  const flags = { noState: extra.noState === true, noInput: extra.noInput === true }
  delete extra.noState
  delete extra.noInput
  switch (part.type) {
    case 'text':
    case 'reasoning': {
      const out = { type: part.type, text: part.text, ...extra } as UITextPart | UIReasoningPart
      if (!flags.noState || part.state === 'streaming') out.state = part.state
      return out
    }
    case 'tool-call': {
      const base = {
        toolCallId: part.toolCallId,
        state: (part.state ?? 'input-available') as UIToolState,
        ...(!flags.noInput && { input: part.input }),
        ...extra,
      }
      const out: UIToolPart | UIDynamicToolPart = part.dynamic
        ? { type: 'dynamic-tool', toolName: part.toolName, ...base }
        : { type: `tool-${part.toolName}`, ...base, ...(part.providerExecuted && { providerExecuted: true }) }
      tools.set(part.toolCallId, out)
      return out
    }
    case 'tool-result': {
      const call = tools.get(part.toolCallId)
      const target: UIToolPart | UIDynamicToolPart = call ?? { type: 'dynamic-tool', toolName: part.toolName, toolCallId: part.toolCallId, state: 'input-available' }
      if (part.errorText !== undefined) {
        target.state = 'output-error'
        target.errorText = part.errorText
      } else {
        target.state = 'output-available'
        target.output = part.output
      }
      if (call) return undefined
      tools.set(part.toolCallId, target)
      return target
    }
    case 'file':
      return { type: 'file', mediaType: part.mediaType, url: part.url, ...(part.filename !== undefined && { filename: part.filename }), ...extra }
    case 'data':
      if (part.name === UI_PART) {
        if (isObject(part.data) && part.data['@empty'] === true) return undefined
        return part.data as unknown as UIMessagePart
      }
      // Parts other adapters keep for themselves (`@openai/…`) have no UI form.
      if (part.name.startsWith('@')) return undefined
      return { type: `data-${part.name}`, data: part.data, ...(part.id !== undefined && { id: part.id }) }
  }
}

function uiMetadata(metadata: JsonObject | undefined): unknown {
  if (!metadata) return undefined
  if (UI_MESSAGE_METADATA in metadata) return metadata[UI_MESSAGE_METADATA]
  const own = Object.fromEntries(Object.entries(metadata).filter(([k]) => !k.startsWith('@')))
  return Object.keys(own).length > 0 ? own : undefined
}

function isObject(value: unknown): value is Record<string, JsonValue> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
