import 'fake-indexeddb/auto'
import { IDBFactory, IDBObjectStore as FakeObjectStore, forceCloseDatabase } from 'fake-indexeddb'
import { afterEach, describe, expect, it } from 'vitest'
import { indexedDbStorage, type IndexedDbStorage } from '../../src/adapters/idb-storage.js'
import { runStorageAdapterTests } from '../../src/adapters/storage-conformance.js'

let dbCounter = 0
const freshName = (): string => `contextsync-test-${++dbCounter}`

runStorageAdapterTests(async () => ({ adapter: indexedDbStorage({ name: freshName(), indexedDB: new IDBFactory() }) }), 'indexedDbStorage')

describe('indexedDbStorage', () => {
  const opened: IndexedDbStorage[] = []
  const open = (options: Parameters<typeof indexedDbStorage>[0]): IndexedDbStorage => {
    const s = indexedDbStorage(options)
    opened.push(s)
    return s
  }
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close()
  })

  const request = <T>(r: IDBRequest<T>): Promise<T> =>
    new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result)
      r.onerror = () => reject(r.error)
    })

  it('persists across connections to the same database, and uses the global factory by default', async () => {
    const name = freshName()
    const a = open({ name })
    await a.save(['keep'], new Uint8Array([1, 2]))
    await a.save(['gone'], new Uint8Array([3]))
    await a.remove(['gone'])
    await a.close()
    const b = open({ name, indexedDB })
    expect(await b.loadRange([])).toEqual([{ key: ['keep'], data: new Uint8Array([1, 2]) }])
  })

  it('stores keys as arrays in its own object store (segment order comes from IndexedDB itself)', async () => {
    const factory = new IDBFactory()
    const name = freshName()
    const s = open({ name, indexedDB: factory })
    await s.save(['a', 'b'], new Uint8Array([1]))
    await s.close()
    const db = await request(factory.open(name))
    const tx = db.transaction('contextsync-chunks', 'readonly')
    expect(await request(tx.objectStore('contextsync-chunks').getAllKeys())).toEqual([['a', 'b']])
    db.close()
  })

  it("rejects a database of another application with 'not-a-store' and leaves it alone", async () => {
    const factory = new IDBFactory()
    const name = freshName()
    const other = factory.open(name, 1)
    other.onupgradeneeded = () => other.result.createObjectStore('notes')
    ;(await request(other)).close()
    const s = open({ name, indexedDB: factory })
    await expect(s.ready()).rejects.toMatchObject({ name: 'StorageError', code: 'not-a-store' })
    await expect(s.save(['k'], new Uint8Array([1]))).rejects.toMatchObject({ code: 'not-a-store' })
    const db = await request(factory.open(name))
    expect(Array.from({ length: db.objectStoreNames.length }, (_, i) => db.objectStoreNames.item(i))).toEqual(['notes'])
    db.close()
  })

  it("rejects a database at a newer schema version with 'not-a-store'", async () => {
    const factory = new IDBFactory()
    const name = freshName()
    ;(await request(factory.open(name, 7))).close()
    await expect(open({ name, indexedDB: factory }).load(['k'])).rejects.toMatchObject({ code: 'not-a-store' })
  })

  it("steps aside when another context deletes the database; later calls reject with 'closed'", async () => {
    const factory = new IDBFactory()
    const name = freshName()
    const s = open({ name, indexedDB: factory })
    await s.save(['k'], new Uint8Array([1]))
    // Would stay blocked (and time out) if the adapter kept its connection open.
    await request(factory.deleteDatabase(name))
    await expect(s.load(['k'])).rejects.toMatchObject({ code: 'closed' })
    await expect(s.save(['k'], new Uint8Array([2]))).rejects.toMatchObject({ code: 'closed' })
  })

  it("reports a connection the browser closed abnormally as 'closed'", async () => {
    const factory = new IDBFactory()
    const name = freshName()
    const s = open({ name, indexedDB: factory })
    await s.ready()
    const db = await request(factory.open(name))
    db.close()
    // fake-indexeddb's stand-in for "the user cleared site data": close every connection.
    // (reaches into fake-indexeddb's internals: the adapter does not expose its connection)
    const databases = (factory as unknown as { _databases?: Map<string, { connections: unknown[] }> })._databases
    const connections = databases?.get(name)?.connections ?? []
    expect(connections.length).toBeGreaterThan(0)
    for (const connection of connections) forceCloseDatabase(connection as never)
    await expect(s.load(['k'])).rejects.toMatchObject({ code: 'closed' })
  })

  it("maps QuotaExceededError to 'quota-exceeded' and applies nothing of the failed batch", async () => {
    const s = open({ name: freshName() })
    await s.save(['small'], new Uint8Array([1]))
    const put = FakeObjectStore.prototype.put
    FakeObjectStore.prototype.put = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
      if (value instanceof Uint8Array && value.byteLength > 1000) throw new DOMException('disk full', 'QuotaExceededError')
      return put.call(this, value, key)
    }
    try {
      const results = await Promise.allSettled([s.save(['first'], new Uint8Array([2])), s.save(['big'], new Uint8Array(5000))])
      for (const r of results) expect(r.status === 'rejected' && r.reason).toMatchObject({ name: 'StorageError', code: 'quota-exceeded' })
    } finally {
      FakeObjectStore.prototype.put = put
    }
    expect((await s.loadRange([])).map((c) => c.key)).toEqual([['small']])
    await s.save(['after'], new Uint8Array(5000))
    expect((await s.load(['after']))?.byteLength).toBe(5000)
  })
})
