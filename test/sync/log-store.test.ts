/**
 * `LogStore` on its own (src/sync/log-store.ts): one replica's sealed log in a `StorageAdapter`.
 * What the replica relies on: appends in one tick become one durable chunk, a reload yields the
 * same log, a deletion by anyone never reaches the store without a checkpoint written first, a
 * failed save is reported and retried with nothing lost, and `compact` leaves one chunk.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { faultyStorage } from '../../src/adapters/faulty-storage.js'
import { memoryStorage } from '../../src/adapters/memory-storage.js'
import type { StorageAdapter, StorageError } from '../../src/adapters/storage.js'
import { createSealedLogDoc, sealedLog } from '../../src/crdt/sealed-log.js'
import { LogStore } from '../../src/sync/log-store.js'

const ROOM = 'room-1'

function entry(n: number): Uint8Array {
  return new Uint8Array([n, n + 1, n + 2])
}

/** The stored keys under the room, as `log/…`, `state/…`, `meta`. */
async function storedKeys(storage: StorageAdapter): Promise<string[]> {
  return (await storage.loadRange(['replica', ROOM])).map((c) => c.key.slice(2).join('/'))
}

async function reload(storage: StorageAdapter): Promise<Y.Doc> {
  const doc = createSealedLogDoc()
  const store = new LogStore(storage, ROOM, doc)
  await store.load()
  await store.close()
  return doc
}

describe('LogStore', () => {
  it('stores the appends of one tick as one chunk, durable when whenSaved resolves, and reloads them', async () => {
    const storage = memoryStorage()
    const doc = createSealedLogDoc()
    const store = new LogStore(storage, ROOM, doc)
    await store.load()
    const log = sealedLog(doc)
    for (let i = 0; i < 5; i++) log.push([entry(i)])
    await store.whenSaved()
    expect(store.chunkCount).toBe(1)
    expect(await storedKeys(storage)).toEqual(['log/000000000000'])
    log.push([entry(9)])
    await store.whenSaved()
    expect(store.chunkCount).toBe(2)
    await store.close()
    expect(sealedLog(await reload(storage)).toArray()).toEqual([0, 1, 2, 3, 4, 9].map(entry))
  })

  it('keeps a deletion out of the store until a rewrite, which writes the checkpoint first', async () => {
    const storage = memoryStorage()
    const doc = createSealedLogDoc()
    const order: string[] = []
    const tracking: StorageAdapter = {
      ...storage,
      save: (key, data) => {
        order.push(key.slice(2, 3).join('/'))
        return storage.save(key, data)
      },
    }
    const store = new LogStore(tracking, ROOM, doc, { checkpoint: () => new Uint8Array([7]) })
    await store.load()
    const log = sealedLog(doc)
    log.push([entry(1), entry(2), entry(3)])
    await store.whenSaved()
    Y.transact(doc, () => log.delete(0, 2), 'someone in the room')
    await store.whenSaved()
    // Not stored on its own: a crash now must still find the deleted entries in the store.
    expect(store.deletionsPending).toBe(true)
    expect(sealedLog(await reload(storage)).length).toBe(3)
    order.length = 0
    await store.compact()
    expect(order).toEqual(['state', 'log'])
    expect(store.deletionsPending).toBe(false)
    expect(store.chunkCount).toBe(1)
    expect(await store.loadCheckpoints()).toEqual([new Uint8Array([7])])
    await store.close()
    expect(sealedLog(await reload(storage)).toArray()).toEqual([entry(3)])
  })

  it('reports a failed save, rejects its writers, and stores the bytes on the retry', async () => {
    const storage = faultyStorage(memoryStorage())
    const doc = createSealedLogDoc()
    const errors: StorageError[] = []
    const store = new LogStore(storage, ROOM, doc, { onError: (e) => errors.push(e), retryDelayMs: 10 })
    await store.load()
    storage.failNext('quota-exceeded')
    sealedLog(doc).push([entry(1)])
    await expect(store.whenSaved()).rejects.toMatchObject({ code: 'quota-exceeded' })
    expect(errors.map((e) => e.code)).toEqual(['quota-exceeded'])
    await expect.poll(() => store.chunkCount, { timeout: 2_000 }).toBe(1)
    await store.close()
    expect(sealedLog(await reload(storage)).toArray()).toEqual([entry(1)])
  })

  it('merges its chunks into one once there are more than mergeAfter', async () => {
    const storage = memoryStorage()
    const doc = createSealedLogDoc()
    const store = new LogStore(storage, ROOM, doc, { mergeAfter: 3 })
    await store.load()
    for (let i = 0; i < 4; i++) {
      sealedLog(doc).push([entry(i)])
      await store.whenSaved()
    }
    await expect.poll(() => store.chunkCount, { timeout: 2_000 }).toBe(1)
    await store.close()
    expect(sealedLog(await reload(storage)).toArray()).toEqual([0, 1, 2, 3].map(entry))
  })

  it('keeps the meta record apart from the log', async () => {
    const storage = memoryStorage()
    const store = new LogStore(storage, ROOM, createSealedLogDoc())
    await store.load()
    expect(await store.loadMeta()).toBeUndefined()
    await store.saveMeta(new Uint8Array([1, 2]))
    expect(await store.loadMeta()).toEqual(new Uint8Array([1, 2]))
    await store.close()
    expect(await storedKeys(storage)).toEqual(['meta'])
  })
})
