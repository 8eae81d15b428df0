/**
 * Conversion between contextsync turns and the Vercel AI SDK's `UIMessage[]` (AI SDK 5, 6 and 7),
 * so a `useChat` UI can render a conversation that continues across devices and push new messages
 * into it. The SDK's types are declared structurally in `ai-sdk-types.ts`; contextsync does not
 * depend on the SDK.
 *
 * Mapping: one message ⇄ one turn (`message.id` is the turn id). Text and reasoning parts map to
 * themselves; a tool part becomes a `tool-call` part plus, once it has an output or error, a
 * `tool-result` part — a denied call (`output-denied`) gets a result too, with the approval's
 * reason as its `errorText`, so every device and the Agents SDK adapter see the call answered;
 * `file` and `data-*` parts map to file and data parts. Other parts (`step-start`, `source-url`,
 * `source-document`, AI SDK 7's `custom`, `reasoning-file`, `steering-message`) are kept verbatim
 * in a data part named `@ui/part`. Fields contextsync does not model (provider metadata,
 * approvals, titles, …) and the tool states a call and a result cannot express (the approval
 * states) travel in each part's `meta['@ui']`, so `toUIMessages(fromUIMessages(m))` gives `m`
 * back for every part and tool state of the requested major.
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
import { approvalFits, DENIED_TEXT, isApprovalState, isObject, UI_MESSAGE_METADATA, UI_PART, uiMeta } from './ai-sdk-shared.js'
import type { ToUIMessagesOptions, UIMessageBySdk, UISdkMajor, UIToolState } from './ai-sdk-types.js'

export { fromUIMessages, appendUIMessages } from './ai-sdk-from.js'
export type * from './ai-sdk-types.js'

/** A UI part under construction: the SDK types' fields, checked when it is built. */
type Part = Record<string, unknown> & { type: string }
/** A tool part under construction. */
type ToolPart = Part & { toolCallId: string; state: UIToolState }

const SDK_MAJORS: readonly UISdkMajor[] = [5, 6, 7]

/** Kinds of verbatim-kept parts (`@ui/part`) and the required string fields each must have. */
const VERBATIM_KINDS: Record<string, { since: UISdkMajor; fields: readonly string[] }> = {
  'step-start': { since: 5, fields: [] },
  'source-url': { since: 5, fields: ['sourceId', 'url'] },
  'source-document': { since: 5, fields: ['sourceId', 'mediaType', 'title'] },
  custom: { since: 7, fields: ['kind'] },
  'reasoning-file': { since: 7, fields: ['mediaType', 'url'] },
  'steering-message': { since: 7, fields: ['id'] },
}

/**
 * AI SDK messages for a session (or its turns), in the shape of AI SDK `options.sdk` (default 6,
 * whose `UIMessage` is assignable to AI SDK 7's as well). Tool results in later `tool` turns are
 * merged into the assistant message that made the call, as the AI SDK shows them. A turn still
 * being streamed gives text parts with `state: 'streaming'`.
 *
 * Parts the requested major has no type for (AI SDK 7's `custom`, `reasoning-file` and
 * `steering-message` for 5 and 6) are left out. AI SDK 5 has no tool approvals: with `sdk: 5`, a
 * call waiting for or holding an approval reads `input-available` and a denied one `output-error`
 * with the denial's reason — what AI SDK 5's `convertToModelMessages` would make of them.
 */
export function toUIMessages<V extends UISdkMajor = 6>(source: Session | readonly Turn[], options: ToUIMessagesOptions<V> = {}): Array<UIMessageBySdk[V]> {
  const sdk = options.sdk ?? 6
  if (!SDK_MAJORS.includes(sdk)) throw new ValidationError(`toUIMessages options.sdk must be 5, 6 or 7, got ${JSON.stringify(sdk)}`)
  const turns = isTurnList(source) ? source : source.turns
  const out: Array<{ id: string; role: 'system' | 'user' | 'assistant'; parts: Part[]; metadata?: unknown }> = []
  const tools = new Map<string, ToolPart>()
  for (const turn of turns) {
    const parts: Part[] = []
    for (const part of turn.parts) {
      const converted = toUIPart(part, tools, sdk)
      if (converted) parts.push(converted)
    }
    if (turn.role === 'tool' && parts.length === 0) continue
    const message: (typeof out)[number] = { id: turn.id, role: turn.role === 'tool' ? 'assistant' : turn.role, parts }
    const metadata = uiMetadata(turn.metadata)
    if (metadata !== undefined) message.metadata = metadata
    out.push(message)
  }
  for (const part of tools.values()) {
    // Only now is each state final (results come in later turns); an approval that does not fit
    // it (e.g. a tool that ran without the approval being answered) is left out.
    if (!approvalFits(part.state, part.approval)) delete part.approval
    if (sdk === 5) toV5(part)
  }
  // Each part was built to its SDK type's fields above; the compiler cannot follow that.
  return out as unknown as Array<UIMessageBySdk[V]>
}

function toUIPart(part: TurnPart, tools: Map<string, ToolPart>, sdk: UISdkMajor): Part | undefined {
  const extra = uiMeta(part.meta)
  const flags = { noState: extra.noState === true, noInput: extra.noInput === true, state: extra.state }
  delete extra.noState
  delete extra.noInput
  delete extra.state
  switch (part.type) {
    case 'text':
    case 'reasoning':
      return { ...extra, type: part.type, text: part.text, ...((!flags.noState || part.state === 'streaming') && { state: part.state }) }
    case 'tool-call': {
      // A stored state whose approval does not fit it (another writer's) is not taken.
      const stored = isApprovalState(flags.state) && approvalFits(flags.state, extra.approval) ? flags.state : undefined
      const base = {
        ...extra,
        toolCallId: part.toolCallId,
        state: stored ?? part.state ?? 'input-available',
        ...(!flags.noInput && { input: part.input }),
      }
      const out: ToolPart = part.dynamic
        ? { ...base, type: 'dynamic-tool', toolName: part.toolName }
        : { ...base, type: `tool-${part.toolName}`, ...(part.providerExecuted && { providerExecuted: true }) }
      tools.set(part.toolCallId, out)
      return out
    }
    case 'tool-result': {
      const call = tools.get(part.toolCallId)
      // A denied call's own result (see fromUIMessages): the state already says it.
      if (call?.state === 'output-denied') return undefined
      const target: ToolPart = call ?? { type: 'dynamic-tool', toolName: part.toolName, toolCallId: part.toolCallId, state: 'input-available' }
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
      return { ...extra, type: 'file', mediaType: part.mediaType, url: part.url, ...(part.filename !== undefined && { filename: part.filename }) }
    case 'data':
      if (part.name === UI_PART) return verbatimPart(part.data, sdk)
      // Parts other adapters keep for themselves (`@openai/…`) have no UI form.
      if (part.name.startsWith('@')) return undefined
      return { type: `data-${part.name}`, data: part.data, ...(part.id !== undefined && { id: part.id }) }
  }
}

/** A verbatim-kept part, if `sdk` has its kind and it has the fields its type requires. */
function verbatimPart(data: JsonValue, sdk: UISdkMajor): Part | undefined {
  if (!isObject(data) || typeof data.type !== 'string' || data['@empty'] === true) return undefined
  const kind = VERBATIM_KINDS[data.type]
  if (!kind || kind.since > sdk || !kind.fields.every((f) => typeof data[f] === 'string')) return undefined
  if (data.type === 'steering-message' && !Array.isArray(data.parts)) return undefined
  return { ...data, type: data.type }
}

/** A tool part as AI SDK 5 has it: no approvals (see {@link toUIMessages}). */
function toV5(part: ToolPart): void {
  const approval = part.approval
  delete part.approval
  if (part.state === 'approval-requested' || part.state === 'approval-responded') part.state = 'input-available'
  else if (part.state === 'output-denied') {
    part.state = 'output-error'
    part.errorText = isObject(approval) && typeof approval.reason === 'string' ? approval.reason : DENIED_TEXT
  }
}

function uiMetadata(metadata: JsonObject | undefined): unknown {
  if (!metadata) return undefined
  if (UI_MESSAGE_METADATA in metadata) return metadata[UI_MESSAGE_METADATA]
  const own = Object.fromEntries(Object.entries(metadata).filter(([k]) => !k.startsWith('@')))
  return Object.keys(own).length > 0 ? own : undefined
}

function isTurnList(source: Session | readonly Turn[]): source is readonly Turn[] {
  return Array.isArray(source)
}
