/**
 * Adapters to the shapes other AI libraries use for conversations: the OpenAI Agents SDK
 * `Session` and the Vercel AI SDK `UIMessage[]`. Structural types only; no dependency on either SDK.
 *
 * @module
 */
export {
  openAIAgentsSession,
  ContextSyncAgentsSession,
  itemToTurn,
  turnToItems,
  type AgentsSession,
  type AgentsSessionOptions,
  type AgentInputItem,
  type AgentItemBase,
  type AgentContent,
  type AgentUserMessageItem,
  type AgentSystemMessageItem,
  type AgentAssistantMessageItem,
  type AgentFunctionCallItem,
  type AgentFunctionCallResultItem,
  type AgentReasoningItem,
  type AgentOtherItem,
} from './openai-agents.js'
export {
  toUIMessages,
  fromUIMessages,
  appendUIMessages,
  type UIMessage,
  type UIMessagePart,
  type UITextPart,
  type UIReasoningPart,
  type UIToolPart,
  type UIDynamicToolPart,
  type UIToolState,
  type UIFilePart,
  type UIDataPart,
  type UISourceUrlPart,
  type UISourceDocumentPart,
  type UIStepStartPart,
  type UIProviderMetadata,
} from './ai-sdk.js'
