/**
 * The page side of bench/browser.ts, bundled with esbuild for `platform: 'browser'` and driven
 * through `window.bench` with `page.evaluate`. Timings are taken in the page (performance.now()).
 */
import * as Y from 'yjs'
import { ContextSync } from '../src/index.js'
import { indexedDbStorage } from '../src/entries/idb.js'
import { readAllMemories } from '../src/crdt/memory.js'

export interface BenchPageApi {
  /** Write stored chunks (base64) into the contextsync IndexedDB database `name`. */
  importChunks(name: string, chunks: Array<{ key: string[]; data: string }>): Promise<number>
  /** Cold open of the device in `name`, then its first `memory.list()`. */
  openDevice(name: string): Promise<{ openMs: number; listMs: number; count: number }>
  /** Plain Yjs from the same adapter: load the room's chunks, apply them, read every memory. */
  openPlain(name: string, roomId: string): Promise<{ openMs: number; listMs: number; count: number; readyMs: number; loadMs: number }>
}

declare global {
  interface Window {
    bench?: BenchPageApi
  }
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text)
  const out = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i)
  return out
}

const api: BenchPageApi = {
  async importChunks(name, chunks) {
    const storage = indexedDbStorage({ name })
    let bytes = 0
    for (const chunk of chunks) {
      const data = fromBase64(chunk.data)
      bytes += data.length
      await storage.save(chunk.key, data)
    }
    await storage.close()
    return bytes
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
    await storage.ready()
    const readyMs = performance.now() - start
    const doc = new Y.Doc()
    const chunks = await storage.loadRange(['replica', roomId, 'log'])
    const loadMs = performance.now() - start - readyMs
    doc.transact(() => {
      for (const chunk of chunks) Y.applyUpdate(doc, chunk.data)
    })
    const openMs = performance.now() - start
    const listStart = performance.now()
    const count = readAllMemories(doc).length
    const listMs = performance.now() - listStart
    await storage.close()
    doc.destroy()
    return { openMs, listMs, count, readyMs, loadMs }
  },
}

window.bench = api
