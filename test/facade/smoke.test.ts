import { afterEach, describe, expect, it } from 'vitest'
import { ContextSync, createAccount, loopbackNetwork, memoryStorage, type LoopbackNetwork } from '../../src/index.js'

let net: LoopbackNetwork | undefined
const opened: ContextSync[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((d) => d.close()))
  net?.destroy()
})

describe('smoke', () => {
  it('two devices converge on memory and sessions', async () => {
    const account = await createAccount()
    net = loopbackNetwork({ seed: 1 })
    const a = await ContextSync.open({ account, device: { kind: 'phone', name: 'Phone' }, storage: memoryStorage(), transports: [net.transport()] })
    const b = await ContextSync.open({ account, device: { kind: 'pc', name: 'PC' }, storage: memoryStorage(), transports: [net.transport()] })
    opened.push(a, b)
    const m = await a.memory.remember({ text: 'Prefers aisle seats', kind: 'preference', tags: ['travel'] })
    const s = a.sessions.start({ scope: 'personal', title: 'Trip' })
    await s.append({ role: 'user', text: 'Book a flight' })
    const w = s.stream({ role: 'assistant' })
    w.write('Sure, ')
    w.write('which day?')
    await w.end()
    await net.settle()
    await new Promise((r) => setTimeout(r, 10))
    expect(b.memory.get(m.id)).toEqual(m)
    expect(b.sessions.get(s.id)?.turns.map((t) => [t.role, t.text, t.done])).toEqual([
      ['user', 'Book a flight', true],
      ['assistant', 'Sure, which day?', true],
    ])
    expect(b.memory.recall({ text: 'aisle', limit: 5 })[0]?.id).toBe(m.id)
  })
})
