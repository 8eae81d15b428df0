import { afterEach, describe, expect, it } from 'vitest'
import { ContextSync, createAccount, memoryStorage, StorageError, type StorageErrorEvent } from '../../src/index.js'
import { faultyStorage } from '../../src/adapters/faulty-storage.js'
import { converge } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'

/** Devices opened without a network (the loopback fixture closes its own). */
const open: ContextSync[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()))
})

describe('storage errors', () => {
  it('a failed save rejects the write with a coded event, loses nothing acknowledged, and is retried', async () => {
    const account = await createAccount()
    const storage = faultyStorage(memoryStorage())
    const dev = await ContextSync.open({ account, device: { kind: 'glasses' }, storage, sync: {} })
    open.push(dev)
    const events: StorageErrorEvent[] = []
    dev.on('storage-error', (e) => events.push(e))

    const kept = await dev.memory.remember({ text: 'acknowledged before the disk filled up' })
    const stored = async () => (await storage.loadRange(['replica'])).length
    storage.failNext('quota-exceeded')
    const before = await stored()
    const failed = dev.memory.remember({ text: 'written while the disk is full' })
    await expect(failed).rejects.toSatisfy((e: unknown) => e instanceof StorageError && e.code === 'quota-exceeded')
    expect(events[0]).toMatchObject({ code: 'storage-error', scope: 'personal' })
    expect(events[0]!.error.code).toBe('quota-exceeded')
    // The device keeps working from memory: both items are readable.
    expect(dev.memory.list().map((m) => m.text).sort()).toEqual(['acknowledged before the disk filled up', 'written while the disk is full'])

    // Without any further write, the queued bytes are retried and land on disk.
    expect(await stored()).toBe(before)
    await new Promise((r) => setTimeout(r, 600))
    expect(await stored()).toBeGreaterThan(before)
    const later = await dev.memory.remember({ text: 'after recovery' })
    await dev.close()
    open.pop()
    const reopened = await ContextSync.open({ storage })
    open.push(reopened)
    expect(reopened.memory.get(kept.id)?.text).toBe('acknowledged before the disk filled up')
    expect(reopened.memory.get(later.id)?.text).toBe('after recovery')
    expect(reopened.memory.list().map((m) => m.text)).toContain('written while the disk is full')
  })

  it('a failed seq reservation is retried: the write is sealed and stored once the disk recovers', async () => {
    const account = await createAccount()
    const storage = faultyStorage(memoryStorage())
    const dev = await ContextSync.open({ account, device: { kind: 'car' }, storage })
    open.push(dev)
    const events: StorageErrorEvent[] = []
    dev.on('storage-error', (e) => events.push(e))
    // The location scope has not reserved seqs yet: its first write needs a durable reservation.
    storage.failNext('io')
    await expect(dev.memory.remember({ text: 'parked at P3', scope: 'location' })).rejects.toThrow(StorageError)
    expect(events.map((e) => [e.scope, e.error.code])).toEqual([['location', 'io']])
    await new Promise((r) => setTimeout(r, 600))
    await dev.flush()
    await dev.close()
    open.pop()
    const reopened = await ContextSync.open({ storage })
    open.push(reopened)
    expect(reopened.memory.list({ scope: 'location' }).map((m) => m.text)).toEqual(['parked at P3'])
  })

  it('a device with a failing disk still syncs with the others', async () => {
    const fleet = await loopbackDevices([], { seed: 9, converge: false })
    const { net } = fleet
    const storage = faultyStorage(memoryStorage())
    const phone = await fleet.open('phone', storage)
    const pc = await fleet.open('pc')
    storage.failNext('io', { count: 3 })
    await expect(phone.dev.memory.remember({ text: 'flaky disk' })).rejects.toThrow(StorageError)
    await new Promise((r) => setTimeout(r, 1000))
    await converge([pc.dev], net)
    expect(pc.dev.memory.list().map((m) => m.text)).toEqual(['flaky disk'])
  })
})
