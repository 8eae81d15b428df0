/**
 * What the two directions of the AI SDK conversion (`ai-sdk-from.ts`, `ai-sdk.ts`) agree on: the
 * reserved names under which they keep what the turn model does not hold (WIRE.md `sessions`:
 * keys starting with `@ui` belong to this adapter), and the tool states.
 *
 * @module
 */
import type { JsonObject, JsonValue } from '../crdt/json.js'
import type { UIToolState } from './ai-sdk-types.js'

/** Part `meta` key: the UI part's fields the turn model does not hold, plus the flags below. */
export const UI_META = '@ui'
/** Data part name: a UI part with no turn-model form, kept verbatim. */
export const UI_PART = '@ui/part'
/** Turn `metadata` key: message metadata that is not a plain object of app keys. */
export const UI_MESSAGE_METADATA = '@ui/metadata'

/** Every tool state of AI SDK 5, 6 and 7. */
export const TOOL_STATES: readonly UIToolState[] = [
  'input-streaming',
  'input-available',
  'approval-requested',
  'approval-responded',
  'output-available',
  'output-error',
  'output-denied',
]

/**
 * The tool states a tool-call part plus an optional tool-result cannot tell apart; the call's
 * `meta['@ui'].state` names them.
 */
export const APPROVAL_STATES = ['approval-requested', 'approval-responded', 'output-denied'] as const

/** One of {@link APPROVAL_STATES}. */
export type ApprovalState = (typeof APPROVAL_STATES)[number]

/**
 * The `errorText` of the tool-result a denied call is stored with — the text AI SDK 6's
 * `convertToModelMessages` gives the model when the denial has no reason — so other devices and
 * the Agents SDK adapter see the call answered.
 */
export const DENIED_TEXT = 'Tool call execution denied.'

/** Whether `state` is an approval state. */
export function isApprovalState(state: unknown): state is ApprovalState {
  return (APPROVAL_STATES as readonly unknown[]).includes(state)
}

/**
 * Whether `approval` is what `state` requires (AI SDK 6 `uiMessagesSchema`): an object with a
 * string `id`; `approved` absent while requested, a boolean once answered, `false` when denied,
 * `true` (or no approval at all) once the tool ran.
 */
export function approvalFits(state: UIToolState, approval: unknown): boolean {
  if (approval === undefined) return !isApprovalState(state)
  if (!isObject(approval) || typeof approval.id !== 'string') return false
  if ('reason' in approval && typeof approval.reason !== 'string') return false
  switch (state) {
    case 'approval-requested':
      return approval.approved === undefined && approval.reason === undefined
    case 'approval-responded':
      return typeof approval.approved === 'boolean'
    case 'output-denied':
      return approval.approved === false
    case 'output-available':
    case 'output-error':
      return approval.approved === true
    default:
      return false
  }
}

/** A plain JSON object. */
export function isObject(value: unknown): value is Record<string, JsonValue> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The `meta['@ui']` object of a part (a fresh copy), or an empty one. */
export function uiMeta(meta: JsonObject | undefined): JsonObject {
  const value = meta?.[UI_META]
  return isObject(value) ? { ...value } : {}
}
