/**
 * The page side of bench/browser.ts, bundled with esbuild for `platform: 'browser'` and driven
 * through `window.bench` with `page.evaluate`. Timings are taken in the page (performance.now()).
 */
import * as Y from 'yjs'
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
}

window.bench = api
