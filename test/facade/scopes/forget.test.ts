import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ContextSync, createAccount, loopbackNetwork, memoryStorage, type LoopbackNetwork, type StorageAdapter } from '../../../src/index.js'
import { sealedLog } from '../../../src/crdt/sealed-log.js'
import { converge, logContains, openDevice, roomOf } from '../../helpers/devices.js'

let net: LoopbackNetwork
const open: ContextSync[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()))
  net?.destroy()
})

/** Decrypt every envelope a store holds for `scope` (with the account keys) and search it. */
async function storeContains(storage: StorageAdapter, account: Parameters<typeof roomOf>[0], scope: string, marker: string): Promise<boolean> {
  const doc = new Y.Doc()
  for (const chunk of await storage.loadRange(['replica', roomOf(account, scope), 'log'])) Y.applyUpdate(doc, chunk.data)
  return logContains(doc, account, scope, marker)
}

describe('purge and retention', () => {
  it('purge removes every trace of a scope from every sealed log, store and the relay copy', async () => {
    const account = await createAccount()
    net = loopbackNetwork({ seed: 31 })
    const phone = await openDevice(account, net, 'phone')
    const glasses = await openDevice(account, net, 'glasses')
    open.push(phone.dev, glasses.dev)
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
    const account = await createAccount()
    net = loopbackNetwork({ seed: 32 })
    const phone = await openDevice(account, net, 'phone')
    const pc = await openDevice(account, net, 'pc')
    open.push(phone.dev, pc.dev)
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
    const account = await createAccount()
    net = loopbackNetwork({ seed: 33 })
    const phone = await openDevice(account, net, 'phone')
    open.push(phone.dev)
    await expect(phone.dev.scopes.define('Bad Name')).rejects.toThrow(/scope name/)
    await expect(phone.dev.scopes.define('x', { kinds: ['toaster'] as never })).rejects.toThrow(/kinds/)
    await expect(phone.dev.scopes.grant('nope', phone.dev.deviceId)).rejects.toThrow(/unknown scope/)
    const car = await ContextSync.join({ invite: (await phone.dev.devices.invite({ kind: 'car' })).code, device: { kind: 'car' }, storage: memoryStorage(), transports: [net.transport()] })
    open.push(car)
    await expect(car.scopes.define('mine')).rejects.toThrow(/owner/)
    await expect(car.scopes.purge('personal')).rejects.toThrow(/owner/)
    await phone.dev.scopes.grant('health', car.deviceId)
    await converge([phone.dev, car], net)
    expect(car.scopes.available()).toContain('health')
  })
})
