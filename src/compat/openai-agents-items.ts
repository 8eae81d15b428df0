/**
 * The OpenAI Agents SDK's `AgentInputItem` and `Session`, declared structurally (as
 * `@openai/agents-core` 0.20 has them) so contextsync needs no dependency on the SDK (README.md
 * "Adapters"). Each type is assignable to the SDK's and the SDK's to it; test/compat/types.test.ts
 * checks both directions against the installed package. `providerData` is `Record<string,
 * unknown>` where the SDK says `Record<string, any>`.
 *
 * @module
 */

/** Provider-specific fields of an item or content element. */
export type AgentProviderData = Record<string, unknown>

/** Fields every Agents SDK item may carry. */
export interface AgentItemBase {
  id?: string
  providerData?: AgentProviderData
}

/** Marks where a prompt cache may break. */
export interface AgentPromptCacheBreakpoint {
  mode: 'explicit'
}

/** Text sent to the model. */
export interface AgentInputText {
  type: 'input_text'
  text: string
  providerData?: AgentProviderData
  promptCacheBreakpoint?: AgentPromptCacheBreakpoint
}

/** An image sent to the model (URL, base64 data or a file id). */
export interface AgentInputImage {
  type: 'input_image'
  image?: string | { id: string }
  detail?: string
  providerData?: AgentProviderData
  promptCacheBreakpoint?: AgentPromptCacheBreakpoint
}

/** A file sent to the model. */
export interface AgentInputFile {
  type: 'input_file'
  file?: string | { id: string } | { url: string }
  filename?: string
  providerData?: AgentProviderData
  promptCacheBreakpoint?: AgentPromptCacheBreakpoint
}

/** Audio, in or out. */
export interface AgentAudioContent {
  type: 'audio'
  audio: string | { id: string }
  format?: string | null
  transcript?: string | null
  providerData?: AgentProviderData
  promptCacheBreakpoint?: AgentPromptCacheBreakpoint
}

/** Text the model wrote. */
export interface AgentOutputText {
  type: 'output_text'
  text: string
  providerData?: AgentProviderData
}

/** The model declining to answer. */
export interface AgentRefusal {
  type: 'refusal'
  refusal: string
  providerData?: AgentProviderData
}

/** An image the model produced. */
export interface AgentImageContent {
  type: 'image'
  image: string
  providerData?: AgentProviderData
}

/** Raw reasoning text. */
export interface AgentReasoningText {
  type: 'reasoning_text'
  text: string
  providerData?: AgentProviderData
}

/** A content element of a user message. */
export type AgentUserContent = AgentInputText | AgentInputImage | AgentInputFile | AgentAudioContent

/** A content element of an assistant message. */
export type AgentAssistantContent = AgentOutputText | AgentRefusal | AgentAudioContent | AgentImageContent

/** Any content element of a message or reasoning item. */
export type AgentContent = AgentUserContent | AgentAssistantContent | AgentReasoningText

/** Who made a tool call: the model directly or a program it ran. */
export type AgentToolCaller = { type: 'direct' } | { type: 'program'; callerId: string }

/** A user message. */
export interface AgentUserMessageItem extends AgentItemBase {
  type?: 'message'
  role: 'user'
  content: string | AgentUserContent[]
}

/** A system message. */
export interface AgentSystemMessageItem extends AgentItemBase {
  type?: 'message'
  role: 'system'
  content: string
}

/** An assistant message. */
export interface AgentAssistantMessageItem extends AgentItemBase {
  type?: 'message'
  role: 'assistant'
  status: 'in_progress' | 'completed' | 'incomplete'
  phase?: 'commentary' | 'final_answer'
  content: AgentAssistantContent[]
}

/** A function (tool) call. */
export interface AgentFunctionCallItem extends AgentItemBase {
  type: 'function_call'
  callId: string
  name: string
  namespace?: string
  arguments: string
  status?: 'in_progress' | 'completed' | 'incomplete'
  caller?: AgentToolCaller
}

/** Binary or inline data of a tool output; `Uint8Array` is stored as base64 (see `itemToTurn`). */
export type AgentBinaryData = string | Uint8Array<ArrayBuffer>

/** Text a tool returned. */
export interface AgentToolOutputText {
  type: 'text'
  text: string
  providerData?: AgentProviderData
}

/** An image a tool returned. */
export interface AgentToolOutputImage {
  type: 'image'
  image?: string | { data: AgentBinaryData; mediaType?: string } | { url: string } | { fileId: string }
  detail?: string
  providerData?: AgentProviderData
}

/** A file a tool returned. */
export interface AgentToolOutputFile {
  type: 'file'
  file: string | { data: AgentBinaryData; mediaType: string; filename: string } | { url: string; filename?: string } | { id: string; filename?: string }
  providerData?: AgentProviderData
}

/** A function call's result. */
export interface AgentFunctionCallResultItem extends AgentItemBase {
  type: 'function_call_result'
  callId: string
  name: string
  namespace?: string
  status: 'in_progress' | 'completed' | 'incomplete'
  caller?: AgentToolCaller
  output: string | AgentToolOutputText | AgentToolOutputImage | AgentToolOutputFile | Array<AgentInputText | AgentInputImage | AgentInputFile>
}

/** Model reasoning. */
export interface AgentReasoningItem extends AgentItemBase {
  type: 'reasoning'
  content: AgentInputText[]
  rawContent?: AgentReasoningText[]
}

/** A tool the provider ran (web search, file search, MCP…). */
export interface AgentHostedToolCallItem extends AgentItemBase {
  type: 'hosted_tool_call'
  name: string
  arguments?: string
  status?: string
  output?: string
  caller?: AgentToolCaller
}

/** A tool search request. */
export interface AgentToolSearchCallItem extends AgentItemBase {
  type: 'tool_search_call'
  call_id?: string | null
  callId?: string | null
  execution?: 'client' | 'server'
  arguments: unknown
  status?: string
}

/** The tools a tool search found. */
export interface AgentToolSearchOutputItem extends AgentItemBase {
  type: 'tool_search_output'
  toolSearchAgentName?: string
  toolSearchMcpToolNames?: string[]
  call_id?: string | null
  callId?: string | null
  execution?: 'client' | 'server'
  status?: string
  tools: Array<Record<string, unknown>>
}

/** A program the model wrote to call tools. */
export interface AgentProgramCallItem extends AgentItemBase {
  type: 'program'
  callId: string
  code: string
  fingerprint: string
}

/** A program's result. */
export interface AgentProgramCallResultItem extends AgentItemBase {
  type: 'program_output'
  callId: string
  output: string
  status: 'completed' | 'incomplete'
}

/** One action of a computer-use call. */
export type AgentComputerAction =
  | { type: 'screenshot' }
  | { type: 'click'; x: number; y: number; button: 'left' | 'right' | 'wheel' | 'back' | 'forward' }
  | { type: 'double_click'; x: number; y: number }
  | { type: 'scroll'; x: number; y: number; scroll_x: number; scroll_y: number }
  | { type: 'type'; text: string }
  | { type: 'wait' }
  | { type: 'move'; x: number; y: number }
  | { type: 'keypress'; keys: string[] }
  | { type: 'drag'; path: Array<{ x: number; y: number }> }

/** A computer-use call. */
export interface AgentComputerCallItem extends AgentItemBase {
  type: 'computer_call'
  callId: string
  status: 'in_progress' | 'completed' | 'incomplete'
  action?: AgentComputerAction
  actions?: AgentComputerAction[]
}

/** A computer-use call's result (a screenshot). */
export interface AgentComputerCallResultItem extends AgentItemBase {
  type: 'computer_call_result'
  callId: string
  output: { type: 'computer_screenshot'; data: string; providerData?: AgentProviderData }
}

/** A shell call. */
export interface AgentShellCallItem extends AgentItemBase {
  type: 'shell_call'
  callId: string
  status?: 'in_progress' | 'completed' | 'incomplete'
  action: { commands: string[]; timeoutMs?: number; maxOutputLength?: number }
  caller?: AgentToolCaller
}

/** One command's output in a shell call's result. */
export interface AgentShellCallOutput {
  [key: string]: unknown
  stdout: string
  stderr: string
  outcome: { type: 'timeout' } | { type: 'exit'; exitCode: number | null }
}

/** A shell call's result. */
export interface AgentShellCallResultItem extends AgentItemBase {
  type: 'shell_call_output'
  callId: string
  status?: 'in_progress' | 'completed' | 'incomplete'
  maxOutputLength?: number
  output: AgentShellCallOutput[]
  caller?: AgentToolCaller
}

/** A file change an apply-patch call makes. */
export type AgentApplyPatchOperation =
  | { type: 'create_file'; path: string; diff: string }
  | { type: 'update_file'; path: string; diff: string; moveTo?: string }
  | { type: 'delete_file'; path: string }

/** An apply-patch call. */
export interface AgentApplyPatchCallItem extends AgentItemBase {
  type: 'apply_patch_call'
  callId: string
  status: 'in_progress' | 'completed'
  operation: AgentApplyPatchOperation
  caller?: AgentToolCaller
}

/** An apply-patch call's result. */
export interface AgentApplyPatchCallResultItem extends AgentItemBase {
  type: 'apply_patch_call_output'
  callId: string
  status: 'completed' | 'failed'
  output?: string
  caller?: AgentToolCaller
}

/** Compacted history (opaque to everyone but the provider). */
export interface AgentCompactionItem extends AgentItemBase {
  type: 'compaction'
  encrypted_content: string
  created_by?: string
}

/** An item outside the protocol; everything it has is in `providerData`. */
export interface AgentUnknownItem extends AgentItemBase {
  type: 'unknown'
}

/** Items contextsync keeps verbatim (they have no turn-model form). */
export type AgentOtherItem =
  | AgentHostedToolCallItem
  | AgentToolSearchCallItem
  | AgentToolSearchOutputItem
  | AgentProgramCallItem
  | AgentProgramCallResultItem
  | AgentComputerCallItem
  | AgentComputerCallResultItem
  | AgentShellCallItem
  | AgentShellCallResultItem
  | AgentApplyPatchCallItem
  | AgentApplyPatchCallResultItem
  | AgentCompactionItem
  | AgentUnknownItem

/** The Agents SDK's `AgentInputItem`. */
export type AgentInputItem =
  | AgentUserMessageItem
  | AgentSystemMessageItem
  | AgentAssistantMessageItem
  | AgentFunctionCallItem
  | AgentFunctionCallResultItem
  | AgentReasoningItem
  | AgentOtherItem

/** The Agents SDK's `Session` interface (its required methods). */
export interface AgentsSession {
  getSessionId(): Promise<string>
  getItems(limit?: number): Promise<AgentInputItem[]>
  addItems(items: AgentInputItem[]): Promise<void>
  popItem(): Promise<AgentInputItem | undefined>
  clearSession(): Promise<void>
}
