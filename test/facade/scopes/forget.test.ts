import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ContextSync, memoryStorage, type LoopbackNetwork, type StorageAdapter } from '../../../src/index.js'
import { sealedLog } from '../../../src/crdt/sealed-log.js'
import { converge, logContains, roomOf, type TestDevice } from '../../helpers/devices.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

/** Decrypt every envelope a store holds for `scope` (with the account keys) and search it. */
async function storeContains(storage: StorageAdapter, account: Parameters<typeof roomOf>[0], scope: string, marker: string): Promise<boolean> {
  const doc = new Y.Doc()
  for (const chunk of await storage.loadRange(['replica', roomOf(account, scope), 'log'])) Y.applyUpdate(doc, chunk.data)
  return logContains(doc, account, scope, marker)
}

describe('purge and retention', () => {
  it('purge removes every trace of a scope from every sealed log, store and the relay copy', async () => {
    const fleet = await loopbackDevices(['phone', 'glasses'], { seed: 31, converge: false })
    net = fleet.net
    const { account } = fleet
    const [phone, glasses] = fleet.devs as [TestDevice, TestDevice]
    await phone.dev.memory.remember({ text: 'PURGE-ME-health-a1', scope: 'health' })
    await glasses.dev.memory.remember({ text: 'PURGE-ME-health-b2', scope: 'health' })
    const s = glasses.dev.sessions.start({ scope: 'health', title: 'PURGE-ME-title' })
    await s.append({ role: 'user', text: 'PURGE-ME-turn' })
    const keep = await phone.dev.memory.remember({ text: 'personal stays' })
    await converge([phone.dev, glasses.dev], net)
    expect(logContains(glasses.dev.replica('health')!.outer, account, 'health', 'PURGE-ME')).toBe(true)

    await phone.dev.scopes.purge('health')
    await converge([phone.dev, glasses.dev], net)
    for (const d of [phone, glasses]) {
      expect(d.dev.memory.list({ scope: 'health' })).toEqual([])
      expect(d.dev.sessions.list({ scope: 'health' })).toEqual([])
      expect(logContains(d.dev.replica('health')!.outer, account, 'health', 'PURGE-ME'), d.kind).toBe(false)
      expect(await storeContains(d.storage, account, 'health', 'PURGE-ME'), `${d.kind} store`).toBe(false)
    }
    expect(logContains(net.relayDoc(roomOf(account, 'health'))!, account, 'health', 'PURGE-ME')).toBe(false)
    expect(glasses.dev.memory.get(keep.id)?.text).toBe('personal stays')
  })

  it('a scope retention expires old items on every device and compacts them out of the logs', async () => {
    const fleet = await loopbackDevices(['phone', 'pc'], { seed: 32, converge: false })
    net = fleet.net
    const { account } = fleet
    const [phone, pc] = fleet.devs as [TestDevice, TestDevice]
    await phone.dev.scopes.define('notes', { kinds: ['phone', 'pc'], retention: 60_000 })
    await converge([phone.dev, pc.dev], net)
    expect(pc.dev.scopes.available()).toContain('notes')
    const old = await pc.dev.memory.remember({ text: 'RETAIN-old-entry', scope: 'notes' })
    await converge([phone.dev, pc.dev], net)
    expect(phone.dev.memory.get(old.id)?.text).toBe('RETAIN-old-entry')
    // An hour later (as far as the sweep is concerned) the item is past retention.
    const removed = await phone.dev.scopes.enforceRetention(Date.now() + 3_600_000)
    expect(removed).toBe(1)
    const fresh = await pc.dev.memory.remember({ text: 'RETAIN-new-entry', scope: 'notes' })
    await converge([phone.dev, pc.dev], net)
    for (const d of [phone, pc]) {
      expect(d.dev.memory.get(old.id)).toBeUndefined()
      expect(d.dev.memory.get(fresh.id)?.text).toBe('RETAIN-new-entry')
      expect(logContains(d.dev.replica('notes')!.outer, account, 'notes', 'RETAIN-old'), d.kind).toBe(false)
      expect(await storeContains(d.storage, account, 'notes', 'RETAIN-old'), `${d.kind} store`).toBe(false)
    }
    expect(sealedLog(net.relayDoc(roomOf(account, 'notes'))!).length).toBeGreaterThan(0)
  })

  it('defining scopes validates its input and needs an owner', async () => {
    const fleet = await loopbackDevices(['phone'], { seed: 33, converge: false })
    net = fleet.net
    const phone = fleet.devs[0]!
    await expect(phone.dev.scopes.define('Bad Name')).rejects.toThrow(/scope name/)
    await expect(phone.dev.scopes.define('x', { kinds: ['toaster'] as never })).rejects.toThrow(/kinds/)
    await expect(phone.dev.scopes.grant('nope', phone.dev.deviceId)).rejects.toThrow(/unknown scope/)
    const car = fleet.track(await ContextSync.join({ invite: (await phone.dev.devices.invite({ kind: 'car' })).code, device: { kind: 'car' }, storage: memoryStorage(), transports: [net.transport()] }))
    await expect(car.scopes.define('mine')).rejects.toThrow(/owner/)
    await expect(car.scopes.purge('personal')).rejects.toThrow(/owner/)
    await phone.dev.scopes.grant('health', car.deviceId)
    await converge([phone.dev, car], net)
    expect(car.scopes.available()).toContain('health')
  })
})
