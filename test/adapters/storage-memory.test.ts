import { describe, expect, it } from 'vitest'
import { faultyStorage } from '../../src/adapters/faulty-storage.js'
import { memoryStorage } from '../../src/adapters/memory-storage.js'
import { runStorageAdapterTests } from '../../src/adapters/storage-conformance.js'
import { ValidationError } from '../../src/errors.js'

runStorageAdapterTests(async () => ({ adapter: memoryStorage() }), 'memoryStorage')
runStorageAdapterTests(async () => ({ adapter: faultyStorage(memoryStorage()) }), 'faultyStorage(memoryStorage) with no faults armed')

describe('faultyStorage', () => {
  it('fails the next N saves with the armed code and writes nothing for them', async () => {
    const storage = faultyStorage(memoryStorage())
    storage.failNext('quota-exceeded', { count: 2 })
    expect(storage.armed).toBe(2)
    await expect(storage.save(['a'], new Uint8Array([1]))).rejects.toMatchObject({ name: 'StorageError', code: 'quota-exceeded' })
    // Reads are not affected by a save fault.
    expect(await storage.load(['a'])).toBeUndefined()
    await expect(storage.save(['b'], new Uint8Array([2]))).rejects.toMatchObject({ code: 'quota-exceeded' })
    expect(storage.armed).toBe(0)
    await storage.save(['c'], new Uint8Array([3]))
    expect((await storage.loadRange([])).map((c) => c.key)).toEqual([['c']])
    expect(storage.injected).toBe(2)
  })

  it('consumes faults in the order they were armed and can target other operations', async () => {
    const storage = faultyStorage(memoryStorage())
    await storage.save(['k'], new Uint8Array([1]))
    storage.failNext('io', { operations: ['load', 'loadRange'] })
    storage.failNext('quota-exceeded')
    storage.failNext('corrupt', { operations: ['load'] })
    await expect(storage.save(['k'], new Uint8Array([2]))).rejects.toMatchObject({ code: 'quota-exceeded' })
    await expect(storage.loadRange(['k'])).rejects.toMatchObject({ code: 'io' })
    await expect(storage.load(['k'])).rejects.toMatchObject({ code: 'corrupt' })
    expect(await storage.load(['k'])).toEqual(new Uint8Array([1]))
    expect(storage.injected).toBe(3)
  })

  it('reset disarms pending faults; close closes the wrapped adapter', async () => {
    const inner = memoryStorage()
    const storage = faultyStorage(inner)
    storage.failNext('io', { count: 5 })
    storage.reset()
    expect(storage.armed).toBe(0)
    await storage.save(['k'], new Uint8Array([1]))
    await storage.close()
    await expect(inner.load(['k'])).rejects.toMatchObject({ code: 'closed' })
    await expect(storage.save(['k'], new Uint8Array([1]))).rejects.toMatchObject({ code: 'closed' })
    expect(() => storage.failNext('io', { count: 0 })).toThrow(ValidationError)
  })
})
