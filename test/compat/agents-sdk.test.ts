/**
 * The Agents SDK adapter under the real runner (`run` from `@openai/agents-core`) with a stub
 * `Model` that answers from a script — no network. The session's history is written by the phone's
 * run and continued by the PC's, and the model sees the same items on both.
 */
import { describe, expect, it } from 'vitest'
import { Agent, run, tool, Usage, type AgentInputItem, type Model, type ModelRequest, type ModelResponse, type StreamEvent } from '@openai/agents-core'
import { z } from 'zod'
import { type ContextSync, type LoopbackNetwork } from '../../src/index.js'
import { openAIAgentsSession } from '../../src/compat/openai-agents.js'
import { toUIMessages } from '../../src/compat/ai-sdk.js'
import { converge } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'

/** What a model answers with (the items a `response_done` event carries). */
type Output = Extract<StreamEvent, { type: 'response_done' }>['response']['output']

/** A model that gives each request the next scripted output and records what it was sent. */
class ScriptedModel implements Model {
  readonly inputs: AgentInputItem[][] = []
  private turn = 0

  constructor(private readonly script: Output[]) {}

  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    return { usage: new Usage(), output: this.next(request), responseId: `resp_${this.turn}` }
  }

  async *getStreamedResponse(request: ModelRequest): AsyncIterable<StreamEvent> {
    const output = this.next(request)
    for (const item of output) {
      if (item.type === 'message' && item.role === 'assistant') {
        for (const c of item.content) if (c.type === 'output_text') yield { type: 'output_text_delta', delta: c.text }
      }
    }
    yield { type: 'response_done', response: { id: `resp_${this.turn}`, usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, output } }
  }

  private next(request: ModelRequest): Output {
    this.inputs.push(structuredClone(typeof request.input === 'string' ? [{ role: 'user', content: request.input }] : request.input))
    const output = this.script[this.turn++]
    if (!output) throw new Error(`the script has no answer for request ${this.turn}`)
    return output
  }
}

const say = (id: string, text: string): Output[number] => ({
  type: 'message',
  id,
  role: 'assistant',
  status: 'completed',
  content: [{ type: 'output_text', text, providerData: { annotations: [] } }],
})

const weather = tool({
  name: 'get_weather',
  description: 'Weather for a city and day',
  parameters: z.object({ city: z.string(), day: z.string() }),
  execute: async ({ city, day }) => `${city} ${day}: 21°C, clear`,
})

async function pair(): Promise<[ContextSync, ContextSync, LoopbackNetwork]> {
  const fleet = await loopbackDevices(['phone', 'pc'], { seed: 1315, converge: false })
  return [fleet.all[0]!, fleet.all[1]!, fleet.net]
}

describe('OpenAI Agents SDK runner (@openai/agents-core) with openAIAgentsSession', () => {
  it('keeps a run`s history (a tool call included) and continues it on another device', async () => {
    const [phone, pc, network] = await pair()

    const phoneModel = new ScriptedModel([
      [
        { type: 'reasoning', id: 'rs_1', content: [{ type: 'input_text', text: 'Needs the forecast.' }], providerData: { encrypted: 'e1' } },
        { type: 'function_call', id: 'fc_1', callId: 'call_1', name: 'get_weather', arguments: '{"city":"Lisbon","day":"tomorrow"}', status: 'completed' },
      ],
      [say('msg_1', 'Tomorrow in Lisbon: 21 °C and clear.')],
    ])
    const onPhone = openAIAgentsSession(phone.sessions, { title: 'Trip' })
    // What the runner stores (spied on, then passed through unchanged).
    const added: AgentInputItem[] = []
    const addItems = onPhone.addItems.bind(onPhone)
    onPhone.addItems = async (items) => {
      added.push(...structuredClone(items))
      return addItems(items)
    }
    const first = await run(new Agent({ name: 'Travel', instructions: 'Be brief.', model: phoneModel, tools: [weather] }), 'Weather in Lisbon tomorrow?', { session: onPhone })
    expect(first.finalOutput).toBe('Tomorrow in Lisbon: 21 °C and clear.')
    // The second request carried the tool's result, from the runner's own tool call.
    expect(phoneModel.inputs[1]!.at(-1)).toMatchObject({ type: 'function_call_result', callId: 'call_1', output: { type: 'text', text: 'Lisbon tomorrow: 21°C, clear' } })

    const history = await onPhone.getItems()
    expect(history.map((i) => ('role' in i ? i.role : i.type))).toEqual(['user', 'reasoning', 'function_call', 'function_call_result', 'assistant'])
    // Exactly the items the runner stored, provider data included.
    expect(history).toEqual(added)
    expect(history[1]).toMatchObject({ type: 'reasoning', content: [{ type: 'input_text', text: 'Needs the forecast.' }], providerData: { encrypted: 'e1' } })
    expect(history[2]).toMatchObject({ type: 'function_call', callId: 'call_1', name: 'get_weather', arguments: '{"city":"Lisbon","day":"tomorrow"}' })

    await converge([phone, pc], network)
    const id = await onPhone.getSessionId()
    const pcModel = new ScriptedModel([[say('msg_2', 'Friday: 19 °C.')]])
    const onPc = openAIAgentsSession(pc.sessions, { sessionId: id })
    const second = await run(new Agent({ name: 'Travel', model: pcModel, tools: [weather] }), 'And Friday?', { session: onPc })
    expect(second.finalOutput).toBe('Friday: 19 °C.')
    // The PC's model got the conversation the phone stored, item for item, then the new question.
    expect(pcModel.inputs[0]!.slice(0, history.length)).toEqual(history)
    expect(pcModel.inputs[0]!.slice(history.length)).toMatchObject([{ role: 'user', content: 'And Friday?' }])

    await converge([phone, pc], network)
    const after = await onPhone.getItems()
    expect(after.slice(0, history.length)).toEqual(history)
    expect(after.slice(history.length)).toMatchObject([{ role: 'user', content: 'And Friday?' }, say('msg_2', 'Friday: 19 °C.')])
    // Other devices see ordinary turns (and a UI sees the tool call with its result).
    const turns = phone.sessions.get(id)!.turns
    expect(turns.map((t) => t.role)).toEqual(['user', 'assistant', 'assistant', 'tool', 'assistant', 'user', 'assistant'])
    expect(toUIMessages(phone.sessions.get(id)!)[2]!.parts).toEqual([
      { type: 'tool-get_weather', toolCallId: 'call_1', state: 'output-available', input: { city: 'Lisbon', day: 'tomorrow' }, output: { type: 'text', text: 'Lisbon tomorrow: 21°C, clear' } },
    ])
  })

  it('keeps a streamed run`s history', async () => {
    const [phone] = await pair()
    const model = new ScriptedModel([[say('msg_1', 'Hello from the car.')]])
    const session = openAIAgentsSession(phone.sessions)
    const result = await run(new Agent({ name: 'Car', model }), 'Hi', { session, stream: true })
    let text = ''
    for await (const chunk of result.toTextStream()) text += chunk
    await result.completed
    expect(text).toBe('Hello from the car.')
    expect(await session.getItems()).toEqual([{ type: 'message', role: 'user', content: 'Hi' }, say('msg_1', 'Hello from the car.')])
  })

  it('stores binary tool output as base64, which the SDK takes in the same field', async () => {
    const [phone] = await pair()
    const session = openAIAgentsSession(phone.sessions)
    await session.addItems([
      { type: 'function_call_result', callId: 'c1', name: 'snapshot', status: 'completed', output: { type: 'image', image: { data: new Uint8Array([0xff, 0xd8, 0xff]), mediaType: 'image/jpeg' } } },
    ])
    expect(await session.getItems()).toEqual([
      { type: 'function_call_result', callId: 'c1', name: 'snapshot', status: 'completed', output: { type: 'image', image: { data: '/9j/', mediaType: 'image/jpeg' } } },
    ])
  })
})
