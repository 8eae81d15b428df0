import { describe, expect, it } from 'vitest'
import { type ContextSync, type LoopbackNetwork } from '../../src/index.js'
import { openAIAgentsSession, type AgentInputItem } from '../../src/compat/openai-agents.js'
import { appendUIMessages, fromUIMessages, toUIMessages, type UIMessage } from '../../src/compat/ai-sdk.js'
import { converge } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

async function pair(): Promise<[ContextSync, ContextSync]> {
  const fleet = await loopbackDevices(['phone', 'pc'], { seed: 111, converge: false })
  net = fleet.net
  return [fleet.all[0]!, fleet.all[1]!]
}

const items: AgentInputItem[] = [
  { role: 'system', content: 'You are a travel assistant.' },
  { role: 'user', content: 'Weather in Lisbon tomorrow?' },
  { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'And this photo?' }, { type: 'input_image', image: 'https://example.com/p.jpg', detail: 'low' }] },
  { type: 'reasoning', id: 'rs_1', content: [{ type: 'input_text', text: 'User wants a forecast.' }], providerData: { encrypted: 'abc' } },
  { type: 'function_call', id: 'fc_1', callId: 'call_1', name: 'get_weather', arguments: '{"city":"Lisbon","day":"tomorrow"}', status: 'completed' },
  { type: 'function_call', callId: 'call_2', name: 'raw_tool', arguments: '{ "spaced" : true }' },
  { type: 'function_call_result', callId: 'call_1', name: 'get_weather', status: 'completed', output: { type: 'text', text: '21°C, clear' } },
  { type: 'function_call_result', callId: 'call_2', name: 'raw_tool', status: 'completed', output: 'ok' },
  {
    type: 'message',
    id: 'msg_1',
    role: 'assistant',
    status: 'completed',
    content: [
      { type: 'output_text', text: 'Sunny, 21 °C.', providerData: { annotations: [] } },
      { type: 'refusal', refusal: 'I cannot book flights.' },
    ],
  },
  { type: 'hosted_tool_call', id: 'ws_1', name: 'web_search_call', status: 'completed', providerData: { query: 'lisbon weather' } },
]

describe('OpenAI Agents SDK Session adapter', () => {
  it('round-trips items exactly, across devices, with getItems(limit), popItem and clearSession', async () => {
    const [phone, pc] = await pair()
    const onPhone = openAIAgentsSession(phone.sessions, { title: 'Agent chat' })
    await onPhone.addItems(items.slice(0, 6))
    await onPhone.addItems(items.slice(6))
    const id = await onPhone.getSessionId()
    await converge([phone, pc], net)

    const onPc = openAIAgentsSession(pc.sessions, { sessionId: id })
    expect(await onPc.getItems()).toEqual(items)
    expect(await onPc.getItems(2)).toEqual(items.slice(-2))
    expect(await onPc.getItems(0)).toEqual([])
    // Other devices see ordinary turns.
    const turns = pc.sessions.get(id)!.turns
    expect(turns.map((t) => t.role)).toEqual(['system', 'user', 'user', 'assistant', 'assistant', 'assistant', 'tool', 'tool', 'assistant', 'assistant'])
    expect(turns[4]!.parts[0]).toMatchObject({ type: 'tool-call', toolCallId: 'call_1', toolName: 'get_weather', input: { city: 'Lisbon', day: 'tomorrow' } })
    expect(turns[8]!.text).toBe('Sunny, 21 °C.')

    expect(await onPc.popItem()).toEqual(items.at(-1))
    expect(await onPc.popItem()).toEqual(items.at(-2))
    await converge([phone, pc], net)
    expect(await onPhone.getItems()).toEqual(items.slice(0, -2))

    await onPhone.clearSession()
    await converge([phone, pc], net)
    expect(await onPc.getItems()).toEqual([])
    expect(await onPc.popItem()).toBeUndefined()
  })

  it('reads turns written by other means as items (a streamed answer, tool parts), and pops part by part', async () => {
    const [phone, pc] = await pair()
    const s = phone.sessions.start()
    await s.append({ role: 'user', text: 'Remind me to call Ana' })
    const w = s.stream({ role: 'assistant' })
    w.writeReasoning('Needs a reminder.')
    w.write('Setting ')
    const agent = openAIAgentsSession(phone.sessions, { sessionId: s.id })
    expect(await agent.getItems()).toEqual([
      { role: 'user', content: 'Remind me to call Ana' },
      { type: 'reasoning', content: [{ type: 'input_text', text: 'Needs a reminder.' }] },
      { type: 'message', role: 'assistant', status: 'in_progress', content: [{ type: 'output_text', text: 'Setting ' }] },
    ])
    w.part({ type: 'tool-call', toolCallId: 'r1', toolName: 'reminder', input: { who: 'Ana' } })
    w.write('Done.')
    await w.end()
    expect((await agent.getItems()).slice(2)).toEqual([
      { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Setting ' }] },
      { type: 'function_call', callId: 'r1', name: 'reminder', arguments: '{"who":"Ana"}', status: 'completed' },
      { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Done.' }] },
    ])
    expect(await agent.popItem()).toMatchObject({ content: [{ text: 'Done.' }] })
    await converge([phone, pc], net)
    expect(pc.sessions.get(s.id)!.turns[1]!.parts.map((p) => p.type)).toEqual(['reasoning', 'text', 'tool-call'])
  })
})

const messages: UIMessage[] = [
  { id: 'm1', role: 'system', parts: [{ type: 'text', text: 'Be brief.', state: 'done' }] },
  {
    id: 'm2',
    role: 'user',
    metadata: { createdAt: 1700000000000 },
    parts: [
      { type: 'text', text: 'What is in this picture?', state: 'done' },
      { type: 'file', mediaType: 'image/jpeg', url: 'https://example.com/cat.jpg', filename: 'cat.jpg' },
    ],
  },
  {
    id: 'm3',
    role: 'assistant',
    metadata: 'opaque',
    parts: [
      { type: 'step-start' },
      { type: 'reasoning', text: 'Looks like a cat.', state: 'done', providerMetadata: { openai: { itemId: 'rs_9' } } },
      { type: 'tool-lookupBreed', toolCallId: 't1', state: 'output-available', input: { animal: 'cat' }, output: { breed: 'tabby' }, callProviderMetadata: { openai: { x: 1 } } },
      { type: 'tool-weather', toolCallId: 't2', state: 'output-error', input: { city: 'Lisbon' }, errorText: 'timeout' },
      { type: 'dynamic-tool', toolName: 'mcp_search', toolCallId: 't3', state: 'input-available', input: { q: 'tabby' } },
      { type: 'tool-pending', toolCallId: 't4', state: 'input-streaming' },
      { type: 'source-url', sourceId: 's1', url: 'https://en.wikipedia.org/wiki/Tabby_cat', title: 'Tabby cat' },
      { type: 'data-breedCard', id: 'card1', data: { breed: 'tabby', confidence: 0.8 } },
      { type: 'text', text: 'A tabby cat.' },
    ],
  },
]

describe('Vercel AI SDK UIMessage conversion', () => {
  it('round-trips UIMessage[] through a session on another device', async () => {
    const [phone, pc] = await pair()
    const s = phone.sessions.start({ title: 'UI chat' })
    await appendUIMessages(s, messages)
    await converge([phone, pc], net)
    const session = pc.sessions.get(s.id)!
    expect(toUIMessages(session)).toEqual(messages)
    expect(session.turns.map((t) => t.id)).toEqual(['m1', 'm2', 'm3'])
    expect(session.turns[2]!.text).toBe('A tabby cat.')
    expect(session.turns[2]!.parts.filter((p) => p.type === 'tool-result').map((p) => p.toolCallId)).toEqual(['t1', 't2'])
    // Pure conversion too.
    const turns = fromUIMessages(messages)
    expect(turns[1]).toMatchObject({ role: 'user', id: 'm2', metadata: { createdAt: 1700000000000 } })
  })

  it('merges tool results from later tool turns, and shows a stream in progress', async () => {
    const [phone] = await pair()
    const s = phone.sessions.start()
    await s.append({ role: 'assistant', id: 'a1', parts: [{ type: 'tool-call', toolCallId: 'c1', toolName: 'search', input: { q: 'x' } }] })
    await s.append({ role: 'tool', id: 't1', parts: [{ type: 'tool-result', toolCallId: 'c1', toolName: 'search', output: ['r1'] }] })
    await s.append({ role: 'tool', id: 't2', parts: [{ type: 'tool-result', toolCallId: 'zz', toolName: 'orphan', errorText: 'boom' }] })
    const w = s.stream({ role: 'assistant', id: 'a2' })
    w.write('Found ')
    expect(toUIMessages(s.get())).toEqual([
      { id: 'a1', role: 'assistant', parts: [{ type: 'tool-search', toolCallId: 'c1', state: 'output-available', input: { q: 'x' }, output: ['r1'] }] },
      { id: 't2', role: 'assistant', parts: [{ type: 'dynamic-tool', toolName: 'orphan', toolCallId: 'zz', state: 'output-error', errorText: 'boom' }] },
      { id: 'a2', role: 'assistant', parts: [{ type: 'text', text: 'Found ', state: 'streaming' }] },
    ])
    await w.end()
    expect(toUIMessages(s.get()).at(-1)).toEqual({ id: 'a2', role: 'assistant', parts: [{ type: 'text', text: 'Found ', state: 'done' }] })
  })

  it('rejects malformed messages with ValidationError', () => {
    const bad = (m: unknown) => () => fromUIMessages([m as UIMessage])
    expect(bad({ id: '', role: 'user', parts: [] })).toThrow(/id must be a non-empty string/)
    expect(bad({ id: 'x', role: 'tool', parts: [] })).toThrow(/role must be 'system', 'user' or 'assistant'/)
    expect(bad({ id: 'x', role: 'user', parts: [{ type: 'tool-a', toolCallId: 'c', state: 'done' }] })).toThrow(/state must be a tool state/)
    expect(() => fromUIMessages('nope' as never)).toThrow(/takes an array/)
  })
})
