import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ClosedError, NotFoundError, ValidationError, type ContextSync, type LoopbackNetwork } from '../../../src/index.js'
import type { SessionChange } from '../../../src/facade/sessions.js'
import { sealedLog } from '../../../src/crdt/sealed-log.js'
import { converge, innerState, type TestDevice } from '../../helpers/devices.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

let net: LoopbackNetwork

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function devices(kinds: Array<'phone' | 'glasses' | 'car' | 'pc'>): Promise<TestDevice[]> {
  const fleet = await loopbackDevices(kinds, { seed: 61 })
  net = fleet.net
  return fleet.devs
}

describe('sessions: live streaming across devices', () => {
  it('glasses start a session, the PC streams an answer: partial text arrives before end(), done only after, same text everywhere', async () => {
    const devs = await devices(['glasses', 'pc', 'phone'])
    const [glasses, pc, phone] = devs.map((d) => d.dev) as [ContextSync, ContextSync, ContextSync]
    const s = glasses.sessions.start({ scope: 'personal', title: 'Bike ride' })
    await s.append({ role: 'user', text: 'How far is the lake from here?' })
    await converge([glasses, pc, phone], net)

    // What the glasses' UI would render, on every change that reaches them.
    const seen: Array<{ text: string; done: boolean }> = []
    glasses.sessions.on('change', (e: SessionChange) => {
      if (e.origin !== 'remote' || e.id !== s.id) return
      const last = glasses.sessions.get(s.id)!.turns.at(-1)!
      if (last.role === 'assistant') seen.push({ text: last.text, done: last.done })
    })

    const w = pc.sessions.open(s.id).stream({ role: 'assistant' })
    const tokens = ['The ', 'lake ', 'is ', 'about ', '4 km ', 'north.']
    for (const [i, token] of tokens.entries()) {
      w.write(token)
      // Wait for the 20 ms stream window to close: each token is sealed and travels on its own.
      await pc.flush()
      await net.settle()
      const onGlasses = glasses.sessions.get(s.id)!.turns.at(-1)!
      expect(onGlasses.role).toBe('assistant')
      expect(onGlasses.text).toBe(tokens.slice(0, i + 1).join(''))
      expect(onGlasses.done).toBe(false)
      expect(onGlasses.parts).toEqual([{ type: 'text', text: onGlasses.text, state: 'streaming' }])
    }
    const finished = await w.end()
    await converge([glasses, pc, phone], net)

    const full = tokens.join('')
    expect(finished).toMatchObject({ text: full, done: true, deviceId: pc.deviceId })
    expect(seen.filter((x) => !x.done).length).toBeGreaterThanOrEqual(tokens.length)
    expect(seen.some((x) => x.done && x.text !== full)).toBe(false)
    expect(seen.at(-1)).toEqual({ text: full, done: true })
    for (const dev of [glasses, pc, phone]) {
      const turn = dev.sessions.get(s.id)!.turns.at(-1)!
      expect(turn).toEqual(finished)
      expect(turn.parts).toEqual([{ type: 'text', text: full, state: 'done' }])
    }
    // The whole personal scope (the only one all three hold) is identical, every field.
    expect(innerState(phone).personal).toEqual(innerState(glasses).personal)
    expect(innerState(pc).personal).toEqual(innerState(glasses).personal)
  })

  it('whenAvailable hands over a session started elsewhere once it syncs in; it times out and closes cleanly', async () => {
    const devs = await devices(['glasses', 'phone'])
    const [glasses, phone] = devs.map((d) => d.dev) as [ContextSync, ContextSync]
    const s = glasses.sessions.start({ scope: 'personal', title: 'Directions' })
    await s.append({ role: 'user', text: 'Which way to the station?' })
    // Not on the phone yet: open() would throw, whenAvailable waits for it.
    expect(() => phone.sessions.open(s.id)).toThrow(NotFoundError)
    const arriving = phone.sessions.whenAvailable(s.id, { timeoutMs: 10_000 })
    await converge([glasses, phone], net)
    const handle = await arriving
    expect(handle.get().turns.map((t) => t.text)).toEqual(['Which way to the station?'])
    // Already here: resolves at once.
    expect((await phone.sessions.whenAvailable(s.id)).id).toBe(s.id)
    await expect(phone.sessions.whenAvailable('nope-nope-nope-nope-nope', { timeoutMs: 20 })).rejects.toThrow(NotFoundError)
    await expect(phone.sessions.whenAvailable(s.id, { timeoutMs: -1 })).rejects.toThrow(ValidationError)
    const pending = phone.sessions.whenAvailable('still-not-here-0000000', { timeoutMs: 60_000 })
    await phone.close()
    await expect(pending).rejects.toThrow(ClosedError)
  })

  it('seals a burst of tokens into at most one envelope per 20 ms window', async () => {
    const devs = await devices(['pc', 'glasses'])
    const [pc, glasses] = devs.map((d) => d.dev) as [ContextSync, ContextSync]
    const s = pc.sessions.start({ title: 'Batching' })
    await s.append({ role: 'user', text: 'Tell me a story' })
    await converge([pc, glasses], net)
    const log = sealedLog(pc.replica('personal')!.outer)
    let sealed = 0
    const count = (event: Y.YArrayEvent<Uint8Array>) => (sealed += event.changes.added.size)
    log.observe(count)

    const w = s.stream({ role: 'assistant' })
    // 200 tokens at once: one window.
    for (let i = 0; i < 200; i++) w.write(`t${i} `)
    await pc.flush() // waits for the window to close and the envelope to be stored
    expect(sealed).toBe(1)

    // Then a paced stream: a few tokens every ~2 ms (timers may run late on a busy machine; the
    // bound is per window of wall time, whatever the pace).
    sealed = 0
    const started = performance.now()
    let tokens = 0
    for (let tick = 0; tick < 40; tick++) {
      for (let k = 0; k < 5; k++) w.write(`x${tokens++} `)
      await sleep(2)
    }
    await pc.flush()
    const elapsed = performance.now() - started
    log.unobserve(count)
    expect(sealed).toBeGreaterThan(1)
    expect(sealed).toBeLessThanOrEqual(Math.ceil(elapsed / 20) + 1)
    expect(sealed).toBeLessThanOrEqual(tokens / 5)
    await w.end()
    await converge([pc, glasses], net)
    expect(glasses.sessions.get(s.id)!.turns.at(-1)!.text).toBe(pc.sessions.get(s.id)!.turns.at(-1)!.text)
  })

  it('turns carry typed parts: reasoning, tool call and result, file reference, data — synced as written', async () => {
    const devs = await devices(['phone', 'pc'])
    const [phone, pc] = devs.map((d) => d.dev) as [ContextSync, ContextSync]
    const s = phone.sessions.start({ title: 'Weather', summary: 'Planning a trip' })
    await s.append({ role: 'user', text: 'Weather in Lisbon?', metadata: { lang: 'en' } })
    const answer = await s.append({
      role: 'assistant',
      parts: [
        { type: 'reasoning', text: 'Need the forecast tool.' },
        { type: 'tool-call', toolCallId: 'c1', toolName: 'weather', input: { city: 'Lisbon', days: [1, 2] } },
        { type: 'tool-result', toolCallId: 'c1', toolName: 'weather', output: { tempC: 21, sky: 'clear' } },
        { type: 'tool-call', toolCallId: 'c2', toolName: 'map', input: null, dynamic: true, providerExecuted: true },
        { type: 'tool-result', toolCallId: 'c2', toolName: 'map', errorText: 'map service down' },
        { type: 'file', mediaType: 'image/png', url: 'https://example.com/lisbon.png', filename: 'lisbon.png' },
        { type: 'data', name: 'forecast-card', id: 'card-1', data: { days: 3 }, meta: { ui: { compact: true } } },
        { type: 'text', text: 'Sunny, 21 °C.' },
      ],
    })
    // A streamed turn mixing reasoning, a tool call and text.
    await converge([phone, pc], net)
    const w = pc.sessions.open(s.id).stream({ role: 'assistant' })
    w.writeReasoning('Check ')
    w.writeReasoning('the calendar.')
    w.part({ type: 'tool-call', toolCallId: 'c3', toolName: 'calendar', input: { day: 'fri' } })
    w.write('You are free ')
    w.write('on Friday.')
    const streamed = await w.end()
    await converge([phone, pc], net)

    expect(answer.text).toBe('Sunny, 21 °C.')
    expect(streamed.parts).toEqual([
      { type: 'reasoning', text: 'Check the calendar.', state: 'done' },
      { type: 'tool-call', toolCallId: 'c3', toolName: 'calendar', input: { day: 'fri' } },
      { type: 'text', text: 'You are free on Friday.', state: 'done' },
    ])
    const onPc = pc.sessions.get(s.id)!
    const onPhone = phone.sessions.get(s.id)!
    expect(onPc).toEqual(onPhone)
    expect(onPc.summary).toBe('Planning a trip')
    expect(onPc.turns.map((t) => [t.role, t.deviceId, t.done])).toEqual([
      ['user', phone.deviceId, true],
      ['assistant', phone.deviceId, true],
      ['assistant', pc.deviceId, true],
    ])
    expect(onPc.turns[0]!.metadata).toEqual({ lang: 'en' })
    expect(onPc.turns[1]!.parts).toEqual([
      { type: 'reasoning', text: 'Need the forecast tool.', state: 'done' },
      { type: 'tool-call', toolCallId: 'c1', toolName: 'weather', input: { city: 'Lisbon', days: [1, 2] } },
      { type: 'tool-result', toolCallId: 'c1', toolName: 'weather', output: { tempC: 21, sky: 'clear' } },
      { type: 'tool-call', toolCallId: 'c2', toolName: 'map', input: null, dynamic: true, providerExecuted: true },
      { type: 'tool-result', toolCallId: 'c2', toolName: 'map', errorText: 'map service down' },
      { type: 'file', mediaType: 'image/png', url: 'https://example.com/lisbon.png', filename: 'lisbon.png' },
      { type: 'data', name: 'forecast-card', id: 'card-1', data: { days: 3 }, meta: { ui: { compact: true } } },
      { type: 'text', text: 'Sunny, 21 °C.', state: 'done' },
    ])
    // Returned values are copies: changing them does not change the doc.
    ;(onPc.turns[1]!.parts[1] as unknown as { input: { city: string } }).input.city = 'Porto'
    expect((pc.sessions.get(s.id)!.turns[1]!.parts[1] as unknown as { input: { city: string } }).input.city).toBe('Lisbon')
  })

  it('summary, archive and list({ scope, status }) by recency converge', async () => {
    const devs = await devices(['phone', 'pc'])
    const [phone, pc] = devs.map((d) => d.dev) as [ContextSync, ContextSync]
    const a = phone.sessions.start({ title: 'A' })
    await a.append({ role: 'user', text: 'first' })
    await sleep(3)
    const b = phone.sessions.start({ scope: 'work', title: 'B' })
    await b.append({ role: 'user', text: 'second' })
    await sleep(3)
    const c = phone.sessions.start({ title: 'C' })
    await c.append({ role: 'user', text: 'third' })
    await converge([phone, pc], net)
    await sleep(3)
    await pc.sessions.open(a.id).update({ summary: 'The user asked about A.' })
    await sleep(3)
    await pc.sessions.open(c.id).archive()
    await converge([phone, pc], net)

    for (const dev of [phone, pc]) {
      expect(dev.sessions.list().map((s) => s.title)).toEqual(['C', 'A', 'B'])
      expect(dev.sessions.list({ status: 'active' }).map((s) => s.title)).toEqual(['A', 'B'])
      expect(dev.sessions.list({ status: 'archived' }).map((s) => s.title)).toEqual(['C'])
      expect(dev.sessions.list({ scope: 'personal', status: 'active' }).map((s) => s.title)).toEqual(['A'])
      expect(dev.sessions.list({ scope: 'work' }).map((s) => s.title)).toEqual(['B'])
      expect(dev.sessions.list({ limit: 1 }).map((s) => s.title)).toEqual(['C'])
      expect(dev.sessions.get(a.id)!.summary).toBe('The user asked about A.')
    }
    await phone.sessions.open(c.id).unarchive()
    await converge([phone, pc], net)
    expect(pc.sessions.get(c.id)!.status).toBe('active')
    expect(() => pc.sessions.list({ status: 'deleted' as never })).toThrow(/status must be one of 'active', 'archived'/)
  })

  it('rejects bad turns with clear ValidationErrors and writes nothing', async () => {
    const devs = await devices(['pc'])
    const dev = devs[0]!.dev
    const s = dev.sessions.start()
    const loose = (v: unknown) => v as never
    await expect(s.append({ role: 'user' })).rejects.toThrow(/needs text or at least one part/)
    await expect(s.append(loose({ role: 'user', parts: [{ type: 'video' }] }))).rejects.toThrow(/parts\[0\]\.type must be one of 'text'/)
    await expect(s.append(loose({ role: 'assistant', parts: [{ type: 'tool-call', toolName: 'x' }] }))).rejects.toThrow(/toolCallId must be a non-empty string/)
    await expect(s.append(loose({ role: 'assistant', parts: [{ type: 'data', name: 'x', data: { f: () => 1, n: 1n } }] }))).rejects.toThrow(/JSON-serializable/)
    await expect(s.append(loose({ role: 'assistant', parts: [{ type: 'file', mediaType: 'image/png', url: '' }] }))).rejects.toThrow(/url must be/)
    await expect(s.append({ role: 'user', text: 'ok', id: 'same' })).resolves.toMatchObject({ id: 'same' })
    await expect(s.append({ role: 'user', text: 'again', id: 'same' })).rejects.toThrow(/already used/)
    const w = s.stream({ role: 'assistant' })
    expect(() => w.part(loose({ type: 'tool-result', toolCallId: 'c' }))).toThrow(ValidationError)
    await w.end()
    expect(() => w.writeReasoning('late')).toThrow(/after end/)
    expect(dev.sessions.get(s.id)!.turns.map((t) => t.text)).toEqual(['ok', ''])
  })
})
