/**
 * `contextsync/compat` — a device's conversations in the shapes other AI libraries use: the
 * OpenAI Agents SDK `Session` (`openAIAgentsSession`) and the Vercel AI SDK `UIMessage[]`
 * (`toUIMessages`, `fromUIMessages`, `appendUIMessages`, for AI SDK 5, 6 and 7). Structural types
 * only: neither SDK is a dependency (README.md "Adapters").
 *
 * @example
 * ```ts
 * import { run } from '@openai/agents'
 * import { openAIAgentsSession, toUIMessages } from 'contextsync/compat'
 * const session = openAIAgentsSession(dev.sessions, { sessionId })
 * await run(agent, 'Where did I park?', { session })
 * const messages = toUIMessages(dev.sessions.get(sessionId)!)
 * ```
 *
 * @module
 */
export * from '../compat/index.js'
