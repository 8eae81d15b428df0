/**
 * The AI SDK adapter against the real `ai` packages (6, what npm installs on Node 20, and 5 as
 * `ai-v5`): every tool state — approvals included — round-trips through a session on another
 * device, and what toUIMessages gives passes the SDK's own `safeValidateUIMessages` and
 * `convertToModelMessages`. Type-level fit is in test/compat/types.test.ts.
 */
import { describe, expect, it } from 'vitest'
import * as ai6 from 'ai'
import * as ai5 from 'ai-v5'
import { type ContextSync, type LoopbackNetwork } from '../../src/index.js'
import { appendUIMessages, fromUIMessages, toUIMessages, type UIMessage, type UIMessageInput, type UIMessageV5, type UIMessageV7 } from '../../src/compat/ai-sdk.js'
import { openAIAgentsSession } from '../../src/compat/openai-agents.js'
import { ValidationError } from '../../src/errors.js'
import { converge } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'

async function pair(): Promise<[ContextSync, ContextSync, LoopbackNetwork]> {
  const fleet = await loopbackDevices(['phone', 'pc'], { seed: 1313, converge: false })
  return [fleet.all[0]!, fleet.all[1]!, fleet.net]
}

/** Messages through a session on the phone, read back on the PC. */
async function throughSession<V extends 5 | 6 | 7 = 6>(messages: readonly UIMessageInput[], sdk?: V) {
  const [phone, pc, network] = await pair()
  const s = phone.sessions.start({ title: 'UI chat' })
  await appendUIMessages(s, messages)
  await converge([phone, pc], network)
  return { phone, pc, id: s.id, read: toUIMessages<V>(pc.sessions.get(s.id)!, sdk === undefined ? {} : { sdk }) }
}

const user: UIMessage = { id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Book the 9:40 to Lisbon', state: 'done' }] }

/** One assistant message per tool state of AI SDK 6, static and dynamic tools. */
const everyState: UIMessage[] = [
  user,
  {
    id: 'a1',
    role: 'assistant',
    parts: [
      { type: 'step-start' },
      { type: 'tool-searchFlights', toolCallId: 'c1', state: 'input-streaming', input: { to: 'LI' } },
      { type: 'tool-searchFlights', toolCallId: 'c2', state: 'input-streaming' },
      { type: 'tool-searchFlights', toolCallId: 'c3', state: 'input-available', input: { to: 'LIS' }, callProviderMetadata: { openai: { itemId: 'fc_3' } } },
      { type: 'tool-bookFlight', toolCallId: 'c4', state: 'approval-requested', input: { flight: 'TP1351' }, approval: { id: 'ap4' } },
      { type: 'tool-bookFlight', toolCallId: 'c5', state: 'approval-responded', input: { flight: 'TP1351' }, approval: { id: 'ap5', approved: true } },
      { type: 'tool-bookFlight', toolCallId: 'c6', state: 'approval-responded', input: { flight: 'TP1351' }, approval: { id: 'ap6', approved: false, reason: 'Too early' } },
      { type: 'tool-bookFlight', toolCallId: 'c7', state: 'output-available', input: { flight: 'TP1351' }, output: { ok: true }, approval: { id: 'ap7', approved: true } },
      { type: 'tool-bookFlight', toolCallId: 'c8', state: 'output-error', input: { flight: 'TP1351' }, errorText: 'Sold out', approval: { id: 'ap8', approved: true, reason: 'Go' } },
      { type: 'tool-bookFlight', toolCallId: 'c9', state: 'output-denied', input: { flight: 'TP1351' }, approval: { id: 'ap9', approved: false, reason: 'Not that one' } },
      { type: 'tool-bookFlight', toolCallId: 'c10', state: 'output-denied', input: { flight: 'TP1351' }, approval: { id: 'ap10', approved: false } },
      { type: 'tool-weather', toolCallId: 'c11', state: 'output-available', input: { city: 'Lisbon' }, output: '21°C', preliminary: false, title: 'Weather' },
      { type: 'tool-weather', toolCallId: 'c12', state: 'output-error', input: undefined, rawInput: '{"city":', errorText: 'bad input' },
      { type: 'dynamic-tool', toolName: 'mcp_seats', toolCallId: 'd1', state: 'approval-requested', input: { row: 12 }, approval: { id: 'apd1' } },
      { type: 'dynamic-tool', toolName: 'mcp_seats', toolCallId: 'd2', state: 'approval-responded', input: { row: 12 }, approval: { id: 'apd2', approved: true } },
      { type: 'dynamic-tool', toolName: 'mcp_seats', toolCallId: 'd3', state: 'output-denied', input: { row: 12 }, approval: { id: 'apd3', approved: false, reason: 'No' } },
      { type: 'dynamic-tool', toolName: 'mcp_seats', toolCallId: 'd4', state: 'output-available', input: { row: 12 }, output: ['12A'], toolMetadata: { server: 'seats' } },
      { type: 'text', text: 'Waiting for your approval.', state: 'done' },
    ],
  },
]

describe('AI SDK 6 (ai@6)', () => {
  it('round-trips every tool state, approvals included, through a session on another device', async () => {
    const { read } = await throughSession(everyState)
    expect(read).toEqual(everyState)
    // And the pure conversion alone.
    const turns = fromUIMessages(everyState).map((t, i) => ({ ...t, id: t.id ?? `t${i}` }))
    expect(turns[1]!.parts!.filter((p) => p.type === 'tool-result').map((p) => p.toolCallId)).toEqual(['c7', 'c8', 'c9', 'c10', 'c11', 'c12', 'd3', 'd4'])
  })

  it('passes safeValidateUIMessages and validateUIMessages, and convertToModelMessages answers approvals', async () => {
    const { read } = await throughSession(everyState)
    const checked = await ai6.safeValidateUIMessages({ messages: read })
    expect(checked.success ? 'valid' : checked.error.message).toBe('valid')
    await expect(ai6.validateUIMessages({ messages: read })).resolves.toHaveLength(2)

    const model = await ai6.convertToModelMessages(read)
    const toolContent = model.filter((m) => m.role === 'tool').flatMap((m) => m.content)
    expect(toolContent).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'tool-approval-response', approvalId: 'ap5', approved: true }),
        expect.objectContaining({ type: 'tool-approval-response', approvalId: 'ap6', approved: false, reason: 'Too early' }),
        expect.objectContaining({ type: 'tool-result', toolCallId: 'c7', output: { type: 'json', value: { ok: true } } }),
        expect.objectContaining({ type: 'tool-result', toolCallId: 'c8', output: { type: 'error-text', value: 'Sold out' } }),
        expect.objectContaining({ type: 'tool-result', toolCallId: 'c9', output: { type: 'error-text', value: 'Not that one' } }),
        expect.objectContaining({ type: 'tool-result', toolCallId: 'c10', output: { type: 'error-text', value: 'Tool call execution denied.' } }),
      ]),
    )
  })

  it('round-trips the approval flow as the SDK itself streams it (readUIMessageStream)', async () => {
    const chunks = (list: ai6.UIMessageChunk[]) => new ReadableStream<ai6.UIMessageChunk>({ start: (c) => (list.forEach((x) => c.enqueue(x)), c.close()) })
    const last = async (stream: AsyncIterable<ai6.UIMessage>): Promise<ai6.UIMessage> => {
      let message: ai6.UIMessage | undefined
      for await (const m of stream) message = m
      return message!
    }
    // The model asks to run a tool that needs approval.
    const requested = await last(
      ai6.readUIMessageStream({
        stream: chunks([
          { type: 'start', messageId: 'a1' },
          { type: 'start-step' },
          { type: 'tool-input-available', toolCallId: 'c1', toolName: 'bookFlight', input: { flight: 'TP1351' } },
          { type: 'tool-approval-request', approvalId: 'ap1', toolCallId: 'c1' },
          { type: 'finish-step' },
          { type: 'finish' },
        ]),
      }),
    )
    expect(requested.parts.at(-1)).toMatchObject({ state: 'approval-requested', approval: { id: 'ap1' } })
    // The phone stores it; the PC reads it, the user declines there (as useChat's
    // addToolApprovalResponse does), and the server streams the denial.
    const { pc, id, read } = await throughSession([user, requested])
    expect(read).toEqual([user, requested])
    const tool = read[1]!.parts.find((p) => p.type === 'tool-bookFlight')!
    const responded = { ...read[1]!, parts: read[1]!.parts.map((p) => (p === tool ? { ...tool, state: 'approval-responded', approval: { id: 'ap1', approved: false, reason: 'Wrong day' } } : p)) } as ai6.UIMessage
    const denied = await last(ai6.readUIMessageStream({ message: responded, stream: chunks([{ type: 'start' }, { type: 'tool-output-denied', toolCallId: 'c1' }, { type: 'finish' }]) }))
    expect(denied.parts.find((p) => p.type === 'tool-bookFlight')).toMatchObject({ state: 'output-denied', approval: { approved: false, reason: 'Wrong day' } })

    const s = pc.sessions.open(id)
    await s.removeTurn('a1')
    await appendUIMessages(s, [denied])
    const back = toUIMessages(pc.sessions.get(id)!)
    expect(back).toEqual([user, denied])
    expect((await ai6.safeValidateUIMessages({ messages: back })).success).toBe(true)
    // The Agents SDK adapter sees the call answered, with the reason.
    expect((await openAIAgentsSession(pc.sessions, { sessionId: id }).getItems()).slice(-2)).toEqual([
      { type: 'function_call', callId: 'c1', name: 'bookFlight', arguments: '{"flight":"TP1351"}', status: 'completed' },
      { type: 'function_call_result', callId: 'c1', name: 'bookFlight', status: 'incomplete', output: 'Wrong day' },
    ])
  })

  it('merges a result from a later tool turn into an approved call; an unanswered approval is left out', async () => {
    const [phone] = await pair()
    const s = phone.sessions.start()
    await appendUIMessages(s, [
      {
        id: 'a1',
        role: 'assistant',
        parts: [
          { type: 'tool-bookFlight', toolCallId: 'c1', state: 'approval-responded', input: { f: 1 }, approval: { id: 'ap1', approved: true } },
          { type: 'tool-bookFlight', toolCallId: 'c2', state: 'approval-requested', input: { f: 2 }, approval: { id: 'ap2' } },
        ],
      },
    ])
    // The server ran both (the second without waiting) and appended the results as tool turns.
    await s.append({ role: 'tool', parts: [{ type: 'tool-result', toolCallId: 'c1', toolName: 'bookFlight', output: 'booked' }] })
    await s.append({ role: 'tool', parts: [{ type: 'tool-result', toolCallId: 'c2', toolName: 'bookFlight', errorText: 'failed' }] })
    const read = toUIMessages(s.get())
    expect(read).toEqual([
      {
        id: 'a1',
        role: 'assistant',
        parts: [
          { type: 'tool-bookFlight', toolCallId: 'c1', state: 'output-available', input: { f: 1 }, output: 'booked', approval: { id: 'ap1', approved: true } },
          { type: 'tool-bookFlight', toolCallId: 'c2', state: 'output-error', input: { f: 2 }, errorText: 'failed' },
        ],
      },
    ])
    expect((await ai6.safeValidateUIMessages({ messages: read })).success).toBe(true)
  })

  it('takes provider metadata with undefined values (AI SDK 6 JSONObject) and leaves them out', async () => {
    const message: ai6.UIMessage = {
      id: 'a1',
      role: 'assistant',
      parts: [{ type: 'text', text: 'Hi', state: 'done', providerMetadata: { openai: { itemId: 'msg_1', annotations: undefined } } }],
    }
    const { read } = await throughSession([message])
    expect(read[0]!.parts[0]).toStrictEqual({ type: 'text', text: 'Hi', state: 'done', providerMetadata: { openai: { itemId: 'msg_1' } } })
  })

  it('refuses what the SDK refuses: approvals that do not fit their state, unknown states, an error without text', async () => {
    const bad = (part: Record<string, unknown>) => () => fromUIMessages([{ id: 'a', role: 'assistant', parts: [part] } as unknown as UIMessage])
    const call = { type: 'tool-x', toolCallId: 'c', input: {} }
    expect(bad({ ...call, state: 'approval-requested' })).toThrow(ValidationError)
    expect(bad({ ...call, state: 'approval-requested', approval: { id: 'a', approved: true } })).toThrow(/approval does not fit state 'approval-requested'/)
    expect(bad({ ...call, state: 'approval-responded', approval: { id: 'a' } })).toThrow(/does not fit/)
    expect(bad({ ...call, state: 'output-denied', approval: { id: 'a', approved: true } })).toThrow(/does not fit/)
    expect(bad({ ...call, state: 'output-available', output: 1, approval: { id: 'a', approved: false } })).toThrow(/does not fit/)
    expect(bad({ ...call, state: 'input-available', approval: { id: 'a' } })).toThrow(/does not fit/)
    expect(bad({ ...call, state: 'output-error' })).toThrow(/errorText must be a string/)
    expect(bad({ ...call, state: 'approved' })).toThrow(/state must be a tool state, got "approved"/)
    // Each of these the SDK refuses too.
    for (const part of [{ ...call, state: 'approval-requested' }, { ...call, state: 'output-denied', approval: { id: 'a', approved: true } }]) {
      await expect(ai6.safeValidateUIMessages({ messages: [{ id: 'a', role: 'assistant', parts: [part] }] })).resolves.toMatchObject({ success: false })
    }
  })
})

/** What AI SDK 5 has: four tool states, no approvals. */
const v5Messages: UIMessageV5[] = [
  { id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Weather?' }] },
  {
    id: 'a1',
    role: 'assistant',
    parts: [
      { type: 'step-start' },
      { type: 'reasoning', text: 'Look it up.', state: 'done', providerMetadata: { anthropic: { signature: 'sig' } } },
      { type: 'tool-weather', toolCallId: 'c1', state: 'input-streaming', input: undefined },
      { type: 'tool-weather', toolCallId: 'c2', state: 'input-available', input: { city: 'Lisbon' } },
      { type: 'tool-weather', toolCallId: 'c3', state: 'output-available', input: { city: 'Porto' }, output: '19°C' },
      { type: 'tool-weather', toolCallId: 'c4', state: 'output-error', input: { city: 'Faro' }, errorText: 'timeout' },
      { type: 'dynamic-tool', toolName: 'mcp_news', toolCallId: 'd1', state: 'output-available', input: {}, output: [] },
      { type: 'source-url', sourceId: 's1', url: 'https://example.com', title: 'Example' },
      { type: 'data-card', id: 'k1', data: { temp: 21 } },
      { type: 'text', text: 'Sunny.', state: 'done' },
    ],
  },
]

describe('AI SDK 5 (ai-v5 = ai@5)', () => {
  it('round-trips every AI SDK 5 tool state and passes its safeValidateUIMessages and convertToModelMessages', async () => {
    const { read } = await throughSession(v5Messages, 5)
    expect(read).toEqual(v5Messages)
    const checked = await ai5.safeValidateUIMessages({ messages: read })
    expect(checked.success ? 'valid' : checked.error.message).toBe('valid')
    const model = ai5.convertToModelMessages(read)
    expect(model.filter((m) => m.role === 'tool').flatMap((m) => m.content)).toEqual([
      expect.objectContaining({ type: 'tool-result', toolCallId: 'c3', output: { type: 'text', value: '19°C' } }),
      expect.objectContaining({ type: 'tool-result', toolCallId: 'c4', output: { type: 'error-text', value: 'timeout' } }),
      expect.objectContaining({ type: 'tool-result', toolCallId: 'd1', output: { type: 'json', value: [] } }),
    ])
  })

  it('reads approvals (written by an AI SDK 6 device) as the nearest AI SDK 5 states', async () => {
    const { read } = await throughSession(everyState, 5)
    const tools = read[1]!.parts.filter((p) => p.type.startsWith('tool-') || p.type === 'dynamic-tool')
    expect(tools.map((p) => ('state' in p ? p.state : undefined))).toEqual([
      'input-streaming', 'input-streaming', 'input-available',
      'input-available', 'input-available', 'input-available',
      'output-available', 'output-error', 'output-error', 'output-error',
      'output-available', 'output-error',
      'input-available', 'input-available', 'output-error', 'output-available',
    ])
    expect(tools.some((p) => 'approval' in p)).toBe(false)
    expect(tools[8]).toMatchObject({ toolCallId: 'c9', errorText: 'Not that one' })
    expect(tools[9]).toMatchObject({ toolCallId: 'c10', errorText: 'Tool call execution denied.' })
    const checked = await ai5.safeValidateUIMessages({ messages: read })
    expect(checked.success ? 'valid' : checked.error.message).toBe('valid')
    expect(() => ai5.convertToModelMessages(read)).not.toThrow()
  })
})

describe('AI SDK 7 parts', () => {
  const v7: UIMessageV7[] = [
    {
      id: 'a1',
      role: 'assistant',
      parts: [
        { type: 'custom', kind: 'openai.compaction', providerMetadata: { openai: { id: 'cmp_1' } } },
        { type: 'reasoning-file', mediaType: 'image/png', url: 'https://example.com/sketch.png' },
        { type: 'steering-message', id: 'st1', parts: [{ type: 'text', text: 'Actually, Porto' }] },
        { type: 'text', text: 'Porto it is.' },
      ],
    },
  ]

  it('round-trips with sdk: 7 and are left out for 6 and 5, which have no type for them', async () => {
    const { pc, id, read } = await throughSession(v7, 7)
    expect(read).toEqual(v7)
    const session = pc.sessions.get(id)!
    expect(toUIMessages(session)[0]!.parts).toEqual([{ type: 'text', text: 'Porto it is.' }])
    expect(toUIMessages(session, { sdk: 5 })[0]!.parts).toEqual([{ type: 'text', text: 'Porto it is.' }])
    expect((await ai6.safeValidateUIMessages({ messages: toUIMessages(session) })).success).toBe(true)
  })

  it('refuses an unknown sdk option', () => {
    expect(() => toUIMessages([], { sdk: 8 as never })).toThrow(/options.sdk must be 5, 6 or 7/)
  })
})
