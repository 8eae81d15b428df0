/**
 * AI SDK `UIMessage[]` → contextsync turns (the `append` inputs). The mapping is in `ai-sdk.ts`'s
 * module comment; this side validates what the app passes (misuse throws `ValidationError`,
 * README.md "Writes, reads and errors").
 *
 * @module
 */
import type { JsonObject } from '../crdt/json.js'
import type { Turn } from '../crdt/sessions.js'
import { ValidationError } from '../errors.js'
import { requireJson } from '../facade/check-json-args.js'
import type { AppendInput, SessionHandle, TurnPartInput } from '../facade/sessions.js'
import { requireObject } from '../facade/check-args.js'
import { approvalFits, DENIED_TEXT, isApprovalState, isObject, TOOL_STATES, UI_MESSAGE_METADATA, UI_META, UI_PART } from './ai-sdk-shared.js'
import type { UIMessageInput, UIToolState } from './ai-sdk-types.js'

const UI_ROLES = ['system', 'user', 'assistant'] as const

/**
 * Turns (the `append` inputs) for AI SDK messages — of AI SDK 5, 6 or 7, every part and every tool
 * state. Pass them to `session.appendMany`, or use {@link appendUIMessages}.
 *
 * @throws ValidationError when a message is not a `UIMessage` (no id, an unknown role or tool
 * state, an approval that does not fit its state, values that are not JSON).
 */
export function fromUIMessages(messages: readonly UIMessageInput[]): AppendInput[] {
  if (!Array.isArray(messages)) throw new ValidationError('fromUIMessages(messages) takes an array of UIMessage')
  return messages.map((message: unknown, i) => fromUIMessage(message, `messages[${i}]`))
}

/** Append AI SDK messages to a session (one turn each, ids kept); see {@link fromUIMessages}. */
export function appendUIMessages(session: SessionHandle, messages: readonly UIMessageInput[]): Promise<Turn[]> {
  return session.appendMany(fromUIMessages(messages))
}

function fromUIMessage(message: unknown, name: string): AppendInput {
  const fields = requireObject(message, name)
  if (typeof fields.id !== 'string' || fields.id.length === 0) throw new ValidationError(`${name}.id must be a non-empty string`)
  const role = fields.role
  if (typeof role !== 'string' || !(UI_ROLES as readonly string[]).includes(role)) {
    throw new ValidationError(`${name}.role must be 'system', 'user' or 'assistant'`)
  }
  if (!Array.isArray(fields.parts)) throw new ValidationError(`${name}.parts must be an array`)
  const parts: TurnPartInput[] = []
  fields.parts.forEach((part: unknown, j: number) => parts.push(...fromUIPart(part, `${name}.parts[${j}]`)))
  // A turn needs a part; an assistant message may have none (AI SDK 6 validates it so).
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
  // The fields not in `exclude`, as JSON (undefined values left out), for `meta['@ui']`.
  const residual = (exclude: readonly string[], flags: JsonObject = {}): { meta?: JsonObject } => {
    const rest: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(part)) if (!exclude.includes(k) && v !== undefined) rest[k] = v
    const kept = { ...(requireJson(rest, name) as JsonObject), ...flags }
    return Object.keys(kept).length > 0 ? { meta: { [UI_META]: kept } } : {}
  }
  if (type === 'text' || type === 'reasoning') {
    if (typeof part.text !== 'string') throw new ValidationError(`${name}.text must be a string`)
    return [{ type, text: part.text, ...residual(['type', 'text', 'state'], part.state === undefined ? { noState: true } : {}) }]
  }
  if (type === 'dynamic-tool' || type.startsWith('tool-')) return fromToolPart(part, type, name, residual)
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
  // step-start, sources, AI SDK 7's custom / reasoning-file / steering-message, future kinds.
  return [{ type: 'data', name: UI_PART, data: requireJson(part, name) }]
}

function fromToolPart(
  part: Record<string, unknown>,
  type: string,
  name: string,
  residual: (exclude: readonly string[], flags?: JsonObject) => { meta?: JsonObject },
): TurnPartInput[] {
  const dynamic = type === 'dynamic-tool'
  const toolName = dynamic ? part.toolName : type.slice('tool-'.length)
  if (typeof toolName !== 'string' || toolName.length === 0) throw new ValidationError(`${name} needs a tool name`)
  if (typeof part.toolCallId !== 'string') throw new ValidationError(`${name}.toolCallId must be a string`)
  const state = part.state
  if (!(TOOL_STATES as readonly unknown[]).includes(state)) throw new ValidationError(`${name}.state must be a tool state, got ${JSON.stringify(state)}`)
  const uiState = state as UIToolState
  if (!approvalFits(uiState, part.approval)) throw new ValidationError(`${name}.approval does not fit state '${uiState}'`)
  if (uiState === 'output-error' && typeof part.errorText !== 'string') throw new ValidationError(`${name}.errorText must be a string`)
  const flags: JsonObject = {
    ...(part.input === undefined && { noInput: true }),
    // A call plus a result cannot tell these from input-available / output-error.
    ...(isApprovalState(uiState) && { state: uiState }),
  }
  const call: TurnPartInput = {
    type: 'tool-call',
    toolCallId: part.toolCallId,
    toolName,
    input: part.input === undefined ? null : requireJson(part.input, `${name}.input`),
    state: uiState === 'input-streaming' ? 'input-streaming' : 'input-available',
    ...(part.providerExecuted === true && { providerExecuted: true }),
    ...(dynamic && { dynamic: true }),
    ...residual(['type', 'toolName', 'toolCallId', 'state', 'input', 'output', 'errorText', 'providerExecuted'], flags),
  }
  const result = { type: 'tool-result', toolCallId: part.toolCallId, toolName } as const
  switch (uiState) {
    case 'output-available':
      return [call, { ...result, output: part.output === undefined ? null : requireJson(part.output, `${name}.output`) }]
    case 'output-error':
      return [call, { ...result, errorText: part.errorText as string }]
    case 'output-denied': {
      // The call is answered for everyone else, with the text the AI SDK gives the model.
      const reason = isObject(part.approval) ? part.approval.reason : undefined
      return [call, { ...result, errorText: typeof reason === 'string' ? reason : DENIED_TEXT }]
    }
    default:
      return [call]
  }
}
