import { describe, expect, it, onTestFinished } from 'vitest'
import { ContextSync, createAccount, memoryStorage, type LoopbackNetwork, type MemoryChange, type MemoryItem } from '../../src/index.js'
import * as Y from 'yjs'
import { EnvelopeType } from '../../src/crypto/envelope.js'
import { decodeSnapshot } from '../../src/sync/snapshot.js'
import { converge, decryptLog, innerState } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

async function devices(kinds: Array<'phone' | 'glasses' | 'car' | 'pc'>, layout: 'hub' | 'mesh' = 'hub') {
  const fleet = await loopbackDevices(kinds, { seed: 11, layout, converge: false })
  net = fleet.net
  return { account: fleet.account, devs: fleet.all, testDevices: fleet.devs, fleet }
}

describe('core sync', () => {
  it('two devices converge on memory writes, updates and forgets, with remote change events', async () => {
    const { devs } = await devices(['phone', 'glasses'])
    const [phone, pc] = devs as [ContextSync, ContextSync]
    const seen: MemoryChange[] = []
    pc.memory.on('change', (e) => seen.push(e))
    const a = await phone.memory.remember({ text: 'Allergic to penicillin', scope: 'health', kind: 'fact', tags: ['medical'] })
    const b = await phone.memory.remember({ text: 'Prefers window seats', kind: 'preference', tags: ['travel'] })
    await converge(devs, net)
    expect(pc.memory.get(a.id)).toEqual(a)
    expect(pc.memory.list({ scope: 'personal' }).map((m) => m.id)).toEqual([b.id])
    expect(seen.filter((e) => e.origin === 'remote').map((e) => [e.type, e.id]).sort()).toEqual(
      [['added', a.id], ['added', b.id]].sort(),
    )

    const updated = await pc.memory.update(b.id, { text: 'Prefers aisle seats', tags: ['travel', 'flights'] })
    expect(updated.updatedAt).toBeGreaterThanOrEqual(b.updatedAt)
    await converge(devs, net)
    expect(phone.memory.get(b.id)).toEqual(updated)
    expect(phone.memory.recall({ text: 'aisle', limit: 3 }).map((m) => m.id)).toEqual([b.id])

    expect(await phone.memory.forget(a.id)).toBe(true)
    expect(await phone.memory.forget(a.id)).toBe(false)
    await converge(devs, net)
    expect(pc.memory.get(a.id)).toBeUndefined()
    expect(seen.some((e) => e.type === 'removed' && e.id === a.id && e.origin === 'remote')).toBe(true)
  })

  it('a burst past the batch cap arrives whole, including writes made inside change handlers and deletes of the other device\'s items', async () => {
    const BURST = 4200
    const { account, devs } = await devices(['phone', 'pc'])
    const [phone, pc] = devs as [ContextSync, ContextSync]
    const theirs: MemoryItem[] = []
    for (let i = 0; i < 12; i++) theirs.push(await pc.memory.remember({ text: `pc note ${i}` }))
    await converge(devs, net)
    // Changes made by a handler run inside the burst's own Yjs transactions (nested ones): one
    // while the first batch is queued, one after the batch cap (4096) sealed it mid-loop.
    phone.memory.on('change', (e) => {
      if (e.origin !== 'local' || e.type !== 'added') return
      if (e.item?.text === 'burst 150') void phone.memory.forget(theirs[0]!.id)
      if (e.item?.text === 'burst 4150') void phone.memory.update(theirs[1]!.id, { text: 'edited inside a handler' })
    })
    // One earlier write reserves a block of seqs, so the cap seals synchronously mid-loop.
    await phone.memory.remember({ text: 'before the burst' })
    const writes: Array<Promise<unknown>> = []
    for (let i = 0; i < BURST; i++) writes.push(phone.memory.remember({ text: `burst ${i}`, tags: ['burst'] }))
    for (let i = 2; i < 12; i++) writes.push(phone.memory.forget(theirs[i]!.id))
    await Promise.all(writes)
    // Resolved writes are sealed: the phone's own sealed log already holds every one of them.
    const sealed = new Y.Doc()
    for (const { type, plaintext } of decryptLog(phone.replica('personal')!.outer, account, 'personal')) {
      Y.applyUpdate(sealed, type === EnvelopeType.Snapshot ? decodeSnapshot(plaintext)!.state : plaintext)
    }
    const sealedTexts = new Set([...sealed.getMap<Y.Map<unknown>>('memories').values()].map((m) => m.get('text')))
    expect(Array.from({ length: BURST }, (_, i) => `burst ${i}`).filter((t) => !sealedTexts.has(t))).toEqual([])
    expect(sealedTexts.has('pc note 0')).toBe(false)
    expect(sealedTexts.has('edited inside a handler')).toBe(true)
    // The next batch is small again; it must not be lost or doubled either.
    const after = await phone.memory.remember({ text: 'after the burst' })
    await converge(devs, net)
    expect(pc.memory.list({ tags: ['burst'] })).toHaveLength(BURST)
    expect(pc.memory.get(theirs[0]!.id)).toBeUndefined()
    expect(pc.memory.get(theirs[1]!.id)?.text).toBe('edited inside a handler')
    expect(theirs.slice(2).map((m) => pc.memory.get(m.id))).toEqual(theirs.slice(2).map(() => undefined))
    expect(pc.memory.get(after.id)?.text).toBe('after the burst')
    expect(innerState(pc, ['personal'])).toEqual(innerState(phone, ['personal']))
  })

  it('four devices (phone, glasses, car, pc) converge on memory and a shared session', async () => {
    const { devs } = await devices(['phone', 'glasses', 'car', 'pc'])
    const [phone, glasses, car, pc] = devs as [ContextSync, ContextSync, ContextSync, ContextSync]
    const s = glasses.sessions.start({ scope: 'personal', title: 'Lunch plans' })
    await s.append({ role: 'user', text: 'Find a quiet place for lunch near the office' })
    await converge(devs, net)
    const onCar = car.sessions.open(s.id)
    await onCar.append({ role: 'user', text: 'Make it vegetarian' })
    await phone.memory.remember({ text: 'Vegetarian since 2019', kind: 'fact', tags: ['food'] })
    await converge(devs, net)
    const onPc = pc.sessions.open(s.id)
    const w = onPc.stream({ role: 'assistant' })
    for (const token of ['Try ', 'the ', 'Green ', 'Room.']) w.write(token)
    await w.end()
    await converge(devs, net)
    const expected = innerState(phone, ['personal'])
    for (const dev of devs) expect(innerState(dev, ['personal'])).toEqual(expected)
    const session = phone.sessions.get(s.id)!
    expect(session.turns.map((t) => [t.role, t.text, t.done])).toEqual([
      ['user', 'Find a quiet place for lunch near the office', true],
      ['user', 'Make it vegetarian', true],
      ['assistant', 'Try the Green Room.', true],
    ])
    expect(session.turns.map((t) => t.deviceId)).toEqual([glasses.deviceId, car.deviceId, pc.deviceId])
    expect(phone.sessions.list().map((x) => x.id)).toEqual([s.id])
  })

  it('mesh layout converges too', async () => {
    const { devs } = await devices(['phone', 'glasses', 'pc'], 'mesh')
    await Promise.all(devs.map((d, i) => d.memory.remember({ text: `note ${i}` })))
    await converge(devs, net)
    for (const dev of devs) expect(dev.memory.list().length).toBe(3)
  })

  it('reopens from its storage alone with the same id and data, and keeps syncing', async () => {
    const { devs, testDevices, fleet } = await devices(['phone', 'pc'])
    const [phone, pc] = devs as [ContextSync, ContextSync]
    const m = await phone.memory.remember({ text: 'Parked on level 3' })
    const s = phone.sessions.start({ title: 'Parking' })
    await s.append({ role: 'user', text: 'Where did I park?' })
    const id = phone.deviceId
    await phone.close()
    const again = fleet.track(await ContextSync.open({ storage: testDevices[0]!.storage, transports: [net.transport()] }))
    expect(again.deviceId).toBe(id)
    expect(again.kind).toBe('phone')
    expect(again.memory.get(m.id)).toEqual(m)
    expect(again.sessions.get(s.id)?.turns[0]?.text).toBe('Where did I park?')
    const n = await again.memory.remember({ text: 'Car is charging' })
    await converge([again, pc], net)
    expect(pc.memory.get(n.id)?.text).toBe('Car is charging')
    expect(pc.memory.get(m.id)?.text).toBe('Parked on level 3')
    expect(again.rejectionCounts()).toEqual({})
    expect(pc.rejectionCounts()).toEqual({})
  })

  it('writes made while offline sync after reconnecting', async () => {
    const { devs, testDevices } = await devices(['phone', 'car'])
    const [phone, car] = devs as [ContextSync, ContextSync]
    await converge(devs, net)
    net.disconnect(testDevices[1]!.transport)
    const offline = await car.memory.remember({ text: 'Tyre pressure low', scope: 'location' })
    const online = await phone.memory.remember({ text: 'Meeting at 3', scope: 'personal' })
    await new Promise((r) => setTimeout(r, 5))
    expect(phone.memory.get(offline.id)).toBeUndefined()
    net.heal()
    await converge(devs, net)
    expect(phone.memory.get(offline.id)?.text).toBe('Tyre pressure low')
    expect(car.memory.get(online.id)?.text).toBe('Meeting at 3')
  })

  it('keeps the local scope on the device', async () => {
    const { devs } = await devices(['phone', 'pc'])
    const [phone, pc] = devs as [ContextSync, ContextSync]
    const local = await phone.memory.remember({ text: 'Only on this phone', scope: 'local' })
    await converge(devs, net)
    expect(pc.memory.get(local.id)).toBeUndefined()
    expect(phone.memory.get(local.id)?.scope).toBe('local')
  })

  it('opens a device with no transports and syncs nothing', async () => {
    const account = await createAccount()
    const dev = await ContextSync.open({ account, device: { kind: 'pc' }, storage: memoryStorage() })
    onTestFinished(() => dev.close())
    const m = await dev.memory.remember({ text: 'offline only' })
    expect(dev.memory.get(m.id)?.text).toBe('offline only')
    expect(dev.name).toBe('My PC')
  })
})
