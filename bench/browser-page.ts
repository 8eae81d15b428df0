/**
 * The page side of bench/browser.ts, bundled with esbuild for `platform: 'browser'` and driven
 * through `window.bench` with `page.evaluate`. Timings are taken in the page (performance.now()).
 */
import * as Y from 'yjs'
import { IndexeddbPersistence } from 'y-indexeddb'
import { ContextSync } from '../src/index.js'
import { indexedDbStorage } from '../src/entries/idb.js'
import { readAllMemories } from '../src/crdt/memory.js'

export interface BenchPageApi {
  /**
   * Fetch a store's chunks from the bench server (`/chunks/<name>.json`: keys and sizes;
   * `/chunks/<name>.bin`: the bytes, back to back) and write them into IndexedDB database `name`.
   */
  importChunks(name: string): Promise<number>
  /** Cold open of the device in `name`, then its first `memory.list()`. */
  openDevice(name: string): Promise<{ openMs: number; listMs: number; count: number }>
  /** Plain Yjs from the same adapter: load the room's chunks, apply them, read every memory. */
  openPlain(name: string, roomId: string): Promise<{ openMs: number; listMs: number; count: number }>
  /**
   * Persist the plain store's Yjs state (`/chunks/<from>.bin`, one update) into a fresh y-indexeddb
   * database `name`: bind `IndexeddbPersistence` to an empty doc, wait for `whenSynced`, apply the
   * state (stored by y-indexeddb as one update record), and wait for its write to commit.
   */
  importYIndexedDb(name: string, from: string): Promise<YIndexedDbRecords>
  /** Cold open with y-indexeddb: `new IndexeddbPersistence(name, doc)` until `whenSynced`, then read every memory. */
  openYIndexedDb(name: string): Promise<{ openMs: number; listMs: number; count: number }>
  /** The records in y-indexeddb database `name`'s `updates` store (read without y-indexeddb, so nothing is added). */
  yIndexedDbRecords(name: string): Promise<YIndexedDbRecords>
}

/** What a y-indexeddb `updates` store holds. */
export interface YIndexedDbRecords {
  records: number
  bytes: number
}

/** The records in an open y-indexeddb database's `updates` store; a read-only transaction queued after any pending writes. */
function updatesRecords(db: IDBDatabase): Promise<YIndexedDbRecords> {
  return new Promise((resolve, reject) => {
    const request = db.transaction(['updates'], 'readonly').objectStore('updates').getAll()
    request.onsuccess = () => {
      const values = request.result as Uint8Array[]
      resolve({ records: values.length, bytes: values.reduce((n, v) => n + v.byteLength, 0) })
    }
    request.onerror = () => reject(request.error)
  })
}

declare global {
  interface Window {
    bench?: BenchPageApi
  }
}

const api: BenchPageApi = {
  async importChunks(name) {
    const manifest = (await (await fetch(`/chunks/${name}.json`)).json()) as Array<{ key: string[]; size: number }>
    const body = new Uint8Array(await (await fetch(`/chunks/${name}.bin`)).arrayBuffer())
    const storage = indexedDbStorage({ name })
    let offset = 0
    for (const { key, size } of manifest) {
      await storage.save(key, body.subarray(offset, offset + size))
      offset += size
    }
    await storage.close()
    return offset
  },

  async openDevice(name) {
    const start = performance.now()
    const storage = indexedDbStorage({ name })
    const dev = await ContextSync.open({ storage })
    const openMs = performance.now() - start
    const listStart = performance.now()
    const count = dev.memory.list().length
    const listMs = performance.now() - listStart
    await dev.close()
    await storage.close()
    return { openMs, listMs, count }
  },

  async openPlain(name, roomId) {
    const start = performance.now()
    const storage = indexedDbStorage({ name })
    const doc = new Y.Doc()
    const chunks = await storage.loadRange(['replica', roomId, 'log'])
    doc.transact(() => {
      for (const chunk of chunks) Y.applyUpdate(doc, chunk.data)
    })
    const openMs = performance.now() - start
    const listStart = performance.now()
    const count = readAllMemories(doc).length
    const listMs = performance.now() - listStart
    await storage.close()
    doc.destroy()
    return { openMs, listMs, count }
  },

  async importYIndexedDb(name, from) {
    const state = new Uint8Array(await (await fetch(`/chunks/${from}.bin`)).arrayBuffer())
    const doc = new Y.Doc()
    const persistence = new IndexeddbPersistence(name, doc)
    await persistence.whenSynced
    Y.applyUpdate(doc, state)
    // y-indexeddb does not expose its write; a read-only transaction on the same store is
    // ordered after it, so this resolves once the update is committed.
    const records = await updatesRecords(persistence.db!)
    await persistence.destroy()
    doc.destroy()
    return records
  },

  async openYIndexedDb(name) {
    const start = performance.now()
    const doc = new Y.Doc()
    const persistence = new IndexeddbPersistence(name, doc)
    await persistence.whenSynced
    const openMs = performance.now() - start
    const listStart = performance.now()
    const count = readAllMemories(doc).length
    const listMs = performance.now() - listStart
    // whenSynced fires inside y-indexeddb's read-write transaction (which also adds a record, see
    // issue #31); wait for it to commit before the browser closes.
    await updatesRecords(persistence.db!)
    await persistence.destroy()
    doc.destroy()
    return { openMs, listMs, count }
  },

  async yIndexedDbRecords(name) {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(name)
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
    try {
      return await updatesRecords(db)
    } finally {
      db.close()
    }
  },
}

window.bench = api
