import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { NotFoundError, ValidationError, type ContextSync, type LoopbackNetwork, type MemoryChange } from '../../../src/index.js'
import { memoriesMap } from '../../../src/crdt/memory.js'
import { sealedLog } from '../../../src/crdt/sealed-log.js'
import { converge, logContains, roomOf } from '../../helpers/devices.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

let net: LoopbackNetwork

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function start(kinds: Array<'phone' | 'glasses' | 'car' | 'pc'>, seed = 81) {
  const fleet = await loopbackDevices(kinds, { seed })
  net = fleet.net
  return fleet
}

describe('memory model', () => {
  it('stores provenance, confidence, validity, expiry and an embedding (as compact float32 bytes), identical on every device', async () => {
    const { all } = await start(['phone', 'pc'])
    const [phone, pc] = all as [ContextSync, ContextSync]
    const s = phone.sessions.start({ title: 'Chat' })
    const turn = await s.append({ role: 'user', text: 'I moved to Lisbon in March' })
    const embedding = Float32Array.from({ length: 384 }, (_, i) => Math.sin(i) / 3)
    const m = await phone.memory.remember({
      text: 'Lives in Lisbon',
      kind: 'fact',
      tags: ['home'],
      confidence: 0.9,
      validFrom: Date.UTC(2024, 2, 1),
      expiresAt: Date.now() + 3600_000,
      embedding,
      embeddingModel: 'all-MiniLM-L6-v2',
      source: { sessionId: s.id, turnId: turn.id },
    })
    await converge(all, net)
    const onPc = pc.memory.get(m.id)!
    expect(onPc).toEqual(m)
    expect(onPc.source).toEqual({ deviceId: phone.deviceId, sessionId: s.id, turnId: turn.id })
    expect(onPc.embedding).toBeInstanceOf(Float32Array)
    expect([...onPc.embedding!]).toEqual([...embedding])
    const stored = memoriesMap(pc.replica('personal')!.inner).get(m.id)!.get('embedding')
    expect(stored).toBeInstanceOf(Uint8Array)
    expect((stored as Uint8Array).length).toBe(384 * 4)

    // update: null clears optional fields, others change.
    const updated = await pc.memory.update(m.id, { validTo: Date.UTC(2030, 0, 1), confidence: null, embedding: null, embeddingModel: null })
    await converge(all, net)
    expect(phone.memory.get(m.id)).toEqual(updated)
    expect(updated.confidence).toBeUndefined()
    expect(updated.embedding).toBeUndefined()
    expect(updated.validTo).toBe(Date.UTC(2030, 0, 1))
  })

  it('supersede keeps history; history converges; superseded versions leave list and recall', async () => {
    const { all } = await start(['phone', 'pc', 'glasses'])
    const [phone, pc, glasses] = all as [ContextSync, ContextSync, ContextSync]
    const v1 = await phone.memory.remember({ text: 'Works at Acme as a designer', kind: 'fact', tags: ['job'] })
    await converge(all, net)
    const v2 = await pc.memory.supersede(v1.id, { text: 'Works at Globex as a designer', validFrom: Date.now() })
    await converge(all, net)
    const v3 = await glasses.memory.supersede(v2.id, { text: 'Works at Globex as design lead', kind: 'fact' })
    await converge(all, net)

    expect(v2).toMatchObject({ supersedes: v1.id, kind: 'fact', tags: ['job'], scope: 'personal' })
    for (const dev of all) {
      expect(dev.memory.history(v1.id).map((m) => m.id), dev.kind).toEqual([v1.id, v2.id, v3.id])
      expect(dev.memory.history(v3.id).map((m) => m.text)).toEqual([
        'Works at Acme as a designer',
        'Works at Globex as a designer',
        'Works at Globex as design lead',
      ])
      expect(dev.memory.get(v1.id)?.supersededBy).toBe(v2.id)
      expect(dev.memory.get(v2.id)?.supersededBy).toBe(v3.id)
      expect(dev.memory.list().map((m) => m.id)).toEqual([v3.id])
      expect(dev.memory.recall({ text: 'Acme designer', limit: 5 }).map((m) => m.id)).not.toContain(v1.id)
      expect(dev.memory.recall({ text: 'Acme designer', limit: 5, includeSuperseded: true }).map((m) => m.id)).toContain(v1.id)
      expect(dev.memory.list({ includeSuperseded: true }).length).toBe(3)
    }
    await expect(phone.memory.supersede(v1.id, { text: 'again' })).rejects.toThrow(/already superseded by/)
    await expect(phone.memory.supersede('nope', { text: 'x' })).rejects.toThrow(NotFoundError)
    await expect(phone.memory.supersede(v3.id, { text: 'x', scope: 'work' } as never)).rejects.toThrow(/omit scope/)
    expect(phone.memory.history('unknown')).toEqual([])

    // forget with history removes every version everywhere.
    expect(await pc.memory.forget(v2.id, { history: true })).toBe(true)
    await converge(all, net)
    for (const dev of all) expect(dev.memory.list({ includeSuperseded: true })).toEqual([])
  })

  it('expired items disappear on every device, and their text leaves every sealed log and the relay', async () => {
    const { account, devs, all } = await start(['phone', 'pc', 'car'])
    const [phone, pc, car] = all as [ContextSync, ContextSync, ContextSync]
    const marker = 'EXPIRE-ME-41b7'
    const removed: Array<[string, MemoryChange['origin']]> = []
    pc.memory.on('change', (e) => e.type === 'removed' && removed.push([e.id, e.origin]))
    const keep = await phone.memory.remember({ text: 'Keep me' })
    const m = await phone.memory.remember({ text: `${marker} parking spot B12`, tags: ['parking'], expiresAt: Date.now() + 400 })
    await converge(all, net)
    for (const dev of all) {
      expect(dev.memory.get(m.id)?.text).toContain(marker)
      expect(logContains(dev.replica('personal')!.outer, account, 'personal', marker)).toBe(true)
    }
    await sleep(500)
    // Hidden at read time on every device, even before any sweep has synced.
    for (const dev of all) {
      expect(dev.memory.get(m.id)).toBeUndefined()
      expect(dev.memory.recall({ text: 'parking', limit: 5 })).toEqual([])
      expect(dev.memory.list({ tags: ['parking'] })).toEqual([])
    }
    await sleep(100)
    await converge(all, net)
    for (const dev of all) {
      expect(memoriesMap(dev.replica('personal')!.inner).has(m.id), dev.kind).toBe(false)
      expect(dev.memory.get(keep.id)?.text).toBe('Keep me')
      expect(logContains(dev.replica('personal')!.outer, account, 'personal', marker), dev.kind).toBe(false)
    }
    expect(logContains(net.relayDoc(roomOf(account, 'personal'))!, account, 'personal', marker)).toBe(false)
    for (const { storage, dev } of devs) {
      const stored = new Y.Doc()
      for (const chunk of await storage.loadRange(['replica', roomOf(account, 'personal'), 'log'])) Y.applyUpdate(stored, chunk.data)
      expect(sealedLog(stored).length).toBeGreaterThan(0)
      expect(logContains(stored, account, 'personal', marker), `${dev.kind} storage`).toBe(false)
    }
    expect(removed.map(([id]) => id)).toContain(m.id)
    expect(car.rejectionCounts()).toEqual({})
  })

  it('sweeps items that expired while the device was closed as soon as it opens', async () => {
    const { account, devs, track } = await start(['phone'])
    const phone = devs[0]!
    const m = await phone.dev.memory.remember({ text: 'short-lived', expiresAt: Date.now() + 50 })
    await phone.dev.close()
    await sleep(80)
    const { ContextSync } = await import('../../../src/index.js')
    const again = await ContextSync.open({ storage: phone.storage })
    track(again)
    expect(again.memory.get(m.id)).toBeUndefined()
    await sleep(50)
    await again.flush()
    expect(memoriesMap(again.replica('personal')!.inner).has(m.id)).toBe(false)
    expect(logContains(again.replica('personal')!.outer, account, 'personal', 'short-lived')).toBe(false)
  })

  it('forgets an entry that does not read as a memory (a peer’s junk) by its id, everywhere', async () => {
    const { all } = await start(['phone', 'pc'])
    const [phone, pc] = all as [ContextSync, ContextSync]
    // A map without the required fields, written straight into the doc: invisible to the API.
    const inner = pc.replica('personal')!.inner
    inner.transact(() => {
      const junk = new Y.Map<unknown>()
      junk.set('text', 42)
      memoriesMap(inner).set('junk-1', junk as never)
    })
    await converge(all, net)
    expect(memoriesMap(phone.replica('personal')!.inner).has('junk-1')).toBe(true)
    expect(phone.memory.get('junk-1')).toBeUndefined()
    expect(await phone.memory.forget('junk-1')).toBe(true)
    await converge(all, net)
    for (const dev of all) expect(memoriesMap(dev.replica('personal')!.inner).has('junk-1')).toBe(false)
    expect(await phone.memory.forget('junk-1')).toBe(false)
  })

  it('validates the new fields with clear messages', async () => {
    const { all } = await start(['pc'])
    const dev = all[0]!
    const loose = (v: unknown) => v as never
    await expect(dev.memory.remember({ text: 'x', validFrom: 10, validTo: 5 })).rejects.toThrow(/validTo \(5\) must not be before validFrom \(10\)/)
    await expect(dev.memory.remember({ text: 'x', embedding: [] })).rejects.toThrow(/1\.\.4096 dimensions/)
    await expect(dev.memory.remember({ text: 'x', embedding: [0, 0] })).rejects.toThrow(/all zeros/)
    await expect(dev.memory.remember({ text: 'x', embedding: [1, Number.NaN] })).rejects.toThrow(/finite numbers/)
    await expect(dev.memory.remember(loose({ text: 'x', embedding: 'vec' }))).rejects.toThrow(/Float32Array or an array of numbers/)
    await expect(dev.memory.remember(loose({ text: 'x', source: { sessionId: 5 } }))).rejects.toThrow(/sessionId must be a non-empty string id/)
    await expect(dev.memory.remember(loose({ text: 'x', expiresAt: -1 }))).rejects.toThrow(/expiresAt must be a number between 0/)
    expect(() => dev.memory.list(loose({ includeSuperseded: 'yes' }))).toThrow(/includeSuperseded must be a boolean/)
    expect(() => dev.memory.recall(loose({ validAt: 'now' }))).toThrow(ValidationError)
    expect(dev.memory.list()).toEqual([])
  })
})
