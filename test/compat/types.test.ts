/**
 * Type-level fit of the compat adapters to the real SDK packages (`@openai/agents-core`, `ai` 6
 * and `ai-v5` = ai 5), checked by `npx tsc --noEmit -p .`; vitest runs the same assignments on a
 * real device. Each assertion failed to type-check before the adapters' types were declared as
 * the SDKs have them.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest'
import type { AgentInputItem as SdkAgentInputItem, Session as SdkSession } from '@openai/agents-core'
import type { UIMessage as Ai6UIMessage, UIMessagePart as Ai6UIMessagePart, UIDataTypes, UITools } from 'ai'
import type { UIMessage as Ai5UIMessage } from 'ai-v5'
import { openAIAgentsSession, type AgentInputItem, type AgentsSession, type ContextSyncAgentsSession } from '../../src/compat/openai-agents.js'
import { appendUIMessages, fromUIMessages, toUIMessages, type UIMessage, type UIMessageInput, type UIMessagePart, type UIMessageV5 } from '../../src/compat/ai-sdk.js'
import { createAccount, loopbackNetwork, type ContextSync, type LoopbackNetwork } from '../../src/index.js'
import type { SessionHandle, SessionsApi } from '../../src/facade/sessions.js'
import type { Session } from '../../src/crdt/sessions.js'
import { openDevice } from '../helpers/devices.js'

let net: LoopbackNetwork
let phone: ContextSync
let sessions: SessionsApi
let handle: SessionHandle
let session: Session

beforeAll(async () => {
  net = loopbackNetwork({ seed: 1314 })
  phone = (await openDevice(await createAccount(), net, 'phone')).dev
  sessions = phone.sessions
  handle = sessions.start({ title: 'Types' })
  await handle.append({ role: 'user', text: 'Hello' })
  session = handle.get()
})
afterAll(async () => {
  await phone.close()
  net.destroy()
})

describe('OpenAI Agents SDK types (@openai/agents-core)', () => {
  it('openAIAgentsSession is a Session without a cast', () => {
    const s: SdkSession = openAIAgentsSession(sessions, { title: 'Agent chat' })
    expectTypeOf<ContextSyncAgentsSession>().toExtend<SdkSession>()
    expectTypeOf<AgentsSession>().toExtend<SdkSession>()
    expectTypeOf<SdkSession>().toExtend<AgentsSession>()
    expect(typeof s.getSessionId).toBe('function')
  })

  it('AgentInputItem is assignable both ways', async () => {
    expectTypeOf<AgentInputItem>().toExtend<SdkAgentInputItem>()
    expectTypeOf<SdkAgentInputItem>().toExtend<AgentInputItem>()
    // Items the SDK's runner hands over go straight in, and what comes out is the SDK's again.
    const agents = openAIAgentsSession(sessions)
    const fromSdk: SdkAgentInputItem[] = [{ role: 'user', content: 'Hi' }]
    await agents.addItems(fromSdk)
    const out: SdkAgentInputItem[] = await agents.getItems()
    const popped: SdkAgentInputItem | undefined = await agents.popItem()
    expect([out, popped]).toEqual([fromSdk, fromSdk[0]])
  })
})

describe('Vercel AI SDK types (ai 6 and ai 5)', () => {
  it('toUIMessages gives ai 6 UIMessage[] by default and ai 5 UIMessage[] with sdk: 5', () => {
    const v6: Ai6UIMessage[] = toUIMessages(session)
    const v5: Ai5UIMessage[] = toUIMessages(session, { sdk: 5 })
    expectTypeOf(toUIMessages(session.turns)).toEqualTypeOf<UIMessage[]>()
    expectTypeOf(toUIMessages(session, { sdk: 5 })).toEqualTypeOf<UIMessageV5[]>()
    expectTypeOf<UIMessage>().toExtend<Ai6UIMessage>()
    expectTypeOf<UIMessageV5>().toExtend<Ai5UIMessage>()
    expect(v6).toEqual(v5)
    expect(v6[0]).toMatchObject({ role: 'user', parts: [{ type: 'text', text: 'Hello' }] })
  })

  it('fromUIMessages and appendUIMessages take either major, typed or not', async () => {
    type Tools = { bookFlight: { input: { flight: string }; output: { ok: boolean } } }
    type Typed = Ai6UIMessage<{ createdAt: number }, { card: { breed: string } }, Tools>
    expectTypeOf<Ai6UIMessage>().toExtend<UIMessageInput>()
    expectTypeOf<Ai5UIMessage>().toExtend<UIMessageInput>()
    expectTypeOf<Typed>().toExtend<UIMessageInput>()
    expectTypeOf<UIMessage>().toExtend<UIMessageInput>()
    const m6: Ai6UIMessage[] = [{ id: 'm6', role: 'user', parts: [{ type: 'text', text: 'six', providerMetadata: { p: { x: undefined } } }] }]
    const m5: Ai5UIMessage[] = [{ id: 'm5', role: 'user', parts: [{ type: 'text', text: 'five' }] }]
    const typed: readonly Typed[] = [
      { id: 'mt', role: 'assistant', metadata: { createdAt: 1 }, parts: [{ type: 'tool-bookFlight', toolCallId: 'c', state: 'input-available', input: { flight: 'TP1351' } }] },
    ]
    expect(fromUIMessages(typed)).toHaveLength(1)
    await appendUIMessages(handle, m6)
    await appendUIMessages(handle, m5)
    expect(toUIMessages(handle.get()).slice(-2).map((m) => m.id)).toEqual(['m6', 'm5'])
  })

  it("tool parts narrow by state as the SDK's do", () => {
    expectTypeOf<UIMessagePart>().toExtend<Ai6UIMessagePart<UIDataTypes, UITools>>()
    const [part] = toUIMessages(session)[0]!.parts
    expect(part).toEqual({ type: 'text', text: 'Hello', state: 'done' })
    if (!part) return
    if (part.type === 'dynamic-tool' && part.state === 'output-denied') expectTypeOf(part.approval.approved).toEqualTypeOf<false>()
    if (part.type === 'dynamic-tool' && part.state === 'output-error') expectTypeOf(part.errorText).toEqualTypeOf<string>()
    if (part.type === 'dynamic-tool' && part.state === 'approval-requested') expectTypeOf(part.approval.id).toEqualTypeOf<string>()
  })
})
