/**
 * The Vercel AI SDK's `UIMessage` types, declared structurally so contextsync needs no dependency
 * on the SDK (README.md "Adapters"). Three shapes:
 *
 * - {@link UIMessage} — AI SDK 6, what npm installs on Node 20; also assignable to AI SDK 7's.
 *   {@link toUIMessages} gives it by default.
 * - {@link UIMessageV5} — AI SDK 5, which has no tool approvals (`toUIMessages(s, { sdk: 5 })`).
 * - {@link UIMessageV7} — AI SDK 7, which adds `custom`, `reasoning-file` and `steering-message`
 *   parts (`toUIMessages(s, { sdk: 7 })`).
 *
 * {@link fromUIMessages} takes {@link UIMessageInput}, which each major's `UIMessage` (with any
 * metadata, data and tool type parameters) is assignable to. Tool parts are unions by `state`, as
 * in the SDK, so a `UIToolPart` narrows the same way. Only the fields the SDKs declare are typed;
 * fields of newer SDK versions pass through untyped. test/compat/types.test.ts checks all of this
 * against the installed SDK packages.
 *
 * @module
 */
import type { JsonObject } from '../crdt/json.js'

/** AI SDK majors whose `UIMessage` {@link toUIMessages} can give. */
export type UISdkMajor = 5 | 6 | 7

/** Provider metadata as {@link toUIMessages} gives it (the AI SDK's `ProviderMetadata`). */
export type UIProviderMetadata = Record<string, JsonObject>

/**
 * A JSON value as AI SDK 6 and 7 declare it (`JSONValue`): object values may be `undefined` and
 * are then left out, as `JSON.stringify` does.
 */
export type UIJsonInput = null | boolean | number | string | readonly UIJsonInput[] | UIJsonObjectInput

/** A JSON object in {@link UIJsonInput}. */
export interface UIJsonObjectInput {
  readonly [key: string]: UIJsonInput | undefined
}

/** Provider metadata as {@link fromUIMessages} takes it. */
export type UIProviderMetadataInput = Record<string, UIJsonObjectInput>

/** Text shown to the user. */
export interface UITextPart<M = UIProviderMetadata> {
  type: 'text'
  text: string
  state?: 'streaming' | 'done'
  providerMetadata?: M
}

/** Model reasoning. */
export interface UIReasoningPart<M = UIProviderMetadata> {
  type: 'reasoning'
  id?: string
  text: string
  state?: 'streaming' | 'done'
  providerMetadata?: M
}

/** A file (by URL or data URL). */
export interface UIFilePart<M = UIProviderMetadata> {
  type: 'file'
  mediaType: string
  filename?: string
  url: string
  providerMetadata?: M
}

/** App data (`type: 'data-<name>'`). */
export interface UIDataPart {
  type: `data-${string}`
  id?: string
  data: unknown
}

/** A source the answer used. */
export interface UISourceUrlPart<M = UIProviderMetadata> {
  type: 'source-url'
  sourceId: string
  url: string
  title?: string
  providerMetadata?: M
}

/** A document source. */
export interface UISourceDocumentPart<M = UIProviderMetadata> {
  type: 'source-document'
  sourceId: string
  mediaType: string
  title: string
  filename?: string
  providerMetadata?: M
}

/** Step boundary. */
export interface UIStepStartPart {
  type: 'step-start'
}

/** A provider-specific part (AI SDK 7). */
export interface UICustomPart<M = UIProviderMetadata> {
  type: 'custom'
  kind: `${string}.${string}`
  providerMetadata?: M
}

/** A file produced while reasoning (AI SDK 7). */
export interface UIReasoningFilePart<M = UIProviderMetadata> {
  type: 'reasoning-file'
  mediaType: string
  url: string
  providerMetadata?: M
}

/** A user message added while the answer was generated (AI SDK 7, experimental). */
export interface UISteeringMessagePart<M = UIProviderMetadata> {
  type: 'steering-message'
  id: string
  parts: Array<UITextPart<M> | UIFilePart<M>>
}

/** States of a tool invocation (AI SDK 6 and 7; AI SDK 5 has the first four only). */
export type UIToolState =
  | 'input-streaming'
  | 'input-available'
  | 'output-available'
  | 'output-error'
  | 'approval-requested'
  | 'approval-responded'
  | 'output-denied'

/** A tool call waiting for the user's approval. */
export interface UIToolApprovalRequest {
  id: string
  approved?: never
  reason?: never
}

/** The user's answer to an approval request. */
export interface UIToolApprovalResponse {
  id: string
  approved: boolean
  reason?: string
}

/** An approval that let the tool run. */
export interface UIToolApprovalGranted {
  id: string
  approved: true
  reason?: string
}

/** An approval that stopped the tool. */
export interface UIToolApprovalDenied {
  id: string
  approved: false
  reason?: string
}

/** Fields of every tool invocation. */
export interface UIToolCallFields<M = UIProviderMetadata> {
  toolCallId: string
  title?: string
  toolMetadata?: M[keyof M]
  providerExecuted?: boolean
}

/** A tool invocation in each state (AI SDK 6 and 7), as the SDK's `UIToolInvocation`. */
export type UIToolInvocation<M = UIProviderMetadata> = UIToolCallFields<M> &
  (
    | { state: 'input-streaming'; input?: unknown; rawInput?: string; output?: never; errorText?: never; callProviderMetadata?: M; approval?: never }
    | { state: 'input-available'; input: unknown; output?: never; errorText?: never; callProviderMetadata?: M; approval?: never }
    | { state: 'approval-requested'; input: unknown; output?: never; errorText?: never; callProviderMetadata?: M; approval: UIToolApprovalRequest }
    | { state: 'approval-responded'; input: unknown; output?: never; errorText?: never; callProviderMetadata?: M; approval: UIToolApprovalResponse }
    | {
        state: 'output-available'
        input: unknown
        output: unknown
        errorText?: never
        callProviderMetadata?: M
        resultProviderMetadata?: M
        preliminary?: boolean
        approval?: UIToolApprovalGranted
      }
    | {
        state: 'output-error'
        input: unknown
        rawInput?: unknown
        output?: never
        errorText: string
        callProviderMetadata?: M
        resultProviderMetadata?: M
        approval?: UIToolApprovalGranted
      }
    | { state: 'output-denied'; input: unknown; output?: never; errorText?: never; callProviderMetadata?: M; approval: UIToolApprovalDenied }
  )

/** A tool invocation in each state of AI SDK 5 (no approvals; `input` always present). */
export type UIToolInvocationV5 = UIToolCallFields &
  (
    | { state: 'input-streaming'; input: unknown; rawInput?: string; output?: never; errorText?: never }
    | { state: 'input-available'; input: unknown; output?: never; errorText?: never; callProviderMetadata?: UIProviderMetadata }
    | { state: 'output-available'; input: unknown; output: unknown; errorText?: never; callProviderMetadata?: UIProviderMetadata; preliminary?: boolean }
    | { state: 'output-error'; input: unknown; rawInput?: unknown; output?: never; errorText: string; callProviderMetadata?: UIProviderMetadata }
  )

/** A call of a statically known tool (`type: 'tool-<name>'`). */
export type UIToolPart<M = UIProviderMetadata> = { type: `tool-${string}` } & UIToolInvocation<M>

/** A call of a tool not known at build time. */
export type UIDynamicToolPart<M = UIProviderMetadata> = { type: 'dynamic-tool'; toolName: string; dynamic?: false } & UIToolInvocation<M>

/** {@link UIToolPart} of AI SDK 5. */
export type UIToolPartV5 = { type: `tool-${string}` } & UIToolInvocationV5

/** {@link UIDynamicToolPart} of AI SDK 5. */
export type UIDynamicToolPartV5 = { type: 'dynamic-tool'; toolName: string; dynamic?: false } & UIToolInvocationV5

/** Parts every major has, tools aside. */
export type UICommonPart<M = UIProviderMetadata> =
  | UITextPart<M>
  | UIReasoningPart<M>
  | UIFilePart<M>
  | UIDataPart
  | UISourceUrlPart<M>
  | UISourceDocumentPart<M>
  | UIStepStartPart

/** One part of a {@link UIMessage} (AI SDK 6). */
export type UIMessagePart<M = UIProviderMetadata> = UICommonPart<M> | UIToolPart<M> | UIDynamicToolPart<M>

/** One part of a {@link UIMessageV5}. */
export type UIMessagePartV5 = UICommonPart | UIToolPartV5 | UIDynamicToolPartV5

/** One part of a {@link UIMessageV7}. */
export type UIMessagePartV7<M = UIProviderMetadata> = UIMessagePart<M> | UICustomPart<M> | UIReasoningFilePart<M> | UISteeringMessagePart<M>

/** One part of a {@link UIMessageInput}: a part of any supported major. */
export type UIMessagePartInput = UIMessagePartV7<UIProviderMetadataInput>

/** Fields of every message. */
export interface UIMessageFields {
  id: string
  role: 'system' | 'user' | 'assistant'
  metadata?: unknown
}

/** The AI SDK 6 `UIMessage` (assignable to AI SDK 7's too). */
export interface UIMessage extends UIMessageFields {
  parts: UIMessagePart[]
}

/** The AI SDK 5 `UIMessage`. */
export interface UIMessageV5 extends UIMessageFields {
  parts: UIMessagePartV5[]
}

/** The AI SDK 7 `UIMessage`. */
export interface UIMessageV7 extends UIMessageFields {
  parts: UIMessagePartV7[]
}

/** A message {@link fromUIMessages} takes: the `UIMessage` of AI SDK 5, 6 or 7. */
export interface UIMessageInput extends UIMessageFields {
  parts: readonly UIMessagePartInput[]
}

/** The message type for each {@link UISdkMajor}. */
export interface UIMessageBySdk {
  5: UIMessageV5
  6: UIMessage
  7: UIMessageV7
}

/** Options of {@link toUIMessages}. */
export interface ToUIMessagesOptions<V extends UISdkMajor = 6> {
  /**
   * The AI SDK major the messages are for (default 6). Parts that major has no type for are left
   * out; for 5, tool approvals become the nearest AI SDK 5 state (see {@link toUIMessages}).
   */
  sdk?: V
}
