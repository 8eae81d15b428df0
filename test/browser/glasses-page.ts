/**
 * The glasses runtime as a web page: a contextsync device on IndexedDB (`contextsync/idb`) and the
 * browser's own WebSocket (`contextsync/websocket`). Bundled with esbuild for `platform: 'browser'`
 * by test/browser/idb.test.ts, which drives it through `window.glasses` with `page.evaluate`.
 * Imports the library's public entry points only.
 */
import { ContextSync, plainKeys, type Transport, type TransportStatus } from '../../src/index.js'
import { indexedDbStorage } from '../../src/entries/idb.js'
import { websocketTransport } from '../../src/entries/websocket.js'
import { GLASSES_DB, type DumpedRecord, type GlassesApi } from './glasses-api.js'

let dev: ContextSync | undefined
let storage: ReturnType<typeof indexedDbStorage> | undefined
let transport: Transport | undefined
let statuses: Record<string, TransportStatus> = {}
let problems: string[] = []

function transportTo(relayUrl: string | undefined): Transport[] {
  if (relayUrl === undefined) return []
  transport = websocketTransport({ url: relayUrl, maxBackoffTime: 400 })
  return [transport]
}

function watch(device: ContextSync): void {
  statuses = {}
  problems = []
  device.on('status', ({ scope, status }) => {
    statuses[scope] = status
  })
  device.on('rejected', (e) => problems.push(`rejected ${e.code} in ${e.scope}`))
  device.on('storage-error', (e) => problems.push(`storage-error ${e.error.code} in ${e.scope}: ${e.error.message}`))
}

function current(): ContextSync {
  if (!dev) throw new Error('glasses: no device open')
  return dev
}

const request = <T>(r: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error)
  })

function base64(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

const api: GlassesApi = {
  async join(code, relayUrl, name) {
    if (dev) throw new Error('glasses: a device is already open')
    storage = indexedDbStorage({ name: GLASSES_DB })
    const transports = transportTo(relayUrl)
    // Plain key records on purpose: test/browser/idb.test.ts reopens the dumped IndexedDB in Node
    // to show its plaintext search would find what the store holds. Keys at rest in a browser
    // (webCryptoKeys) have their own page and test (keys-page.ts, keys.test.ts).
    dev = await ContextSync.join({ invite: code, device: { kind: 'glasses', name }, storage, keys: plainKeys(), transports, timeoutMs: 20_000 })
    watch(dev)
    return { deviceId: dev.deviceId, kind: dev.kind, scopes: dev.scopes.available() }
  },

  async open(relayUrl) {
    if (dev) throw new Error('glasses: a device is already open')
    storage = indexedDbStorage({ name: GLASSES_DB })
    dev = await ContextSync.open({ storage, keys: plainKeys(), transports: transportTo(relayUrl) })
    watch(dev)
    return { deviceId: dev.deviceId, kind: dev.kind, name: dev.name, scopes: dev.scopes.available() }
  },

  async remember(text, scope) {
    const item = await current().memory.remember({ text, ...(scope !== undefined && { scope }) })
    return item.id
  },

  async converse(title, text) {
    const session = current().sessions.start({ title })
    await session.append({ role: 'user', text })
    return session.id
  },

  async list() {
    return current().memory.list().map((m) => ({ id: m.id, text: m.text, scope: m.scope }))
  },

  async turns(sessionId) {
    return current().sessions.get(sessionId)?.turns.map((t) => t.text) ?? []
  },

  async deviceId() {
    return current().deviceId
  },

  async status() {
    return { ...statuses }
  },

  async problems() {
    return [...problems]
  },

  async close() {
    await dev?.close()
    transport?.close()
    await storage?.close()
    dev = undefined
    transport = undefined
    storage = undefined
  },

  async dumpIndexedDb(database = GLASSES_DB) {
    const known = await indexedDB.databases()
    if (!known.some((d) => d.name === database)) throw new Error(`glasses: no IndexedDB database ${database}`)
    // Opening without a version never upgrades, so it cannot disturb the device's connection.
    const db = await request(indexedDB.open(database))
    try {
      const out: DumpedRecord[] = []
      for (const store of Array.from(db.objectStoreNames)) {
        const os = db.transaction(store, 'readonly').objectStore(store)
        const [keys, values] = await Promise.all([request(os.getAllKeys()), request(os.getAll())])
        keys.forEach((key, i) => {
          const value: unknown = values[i]
          const binary = value instanceof Uint8Array || value instanceof ArrayBuffer
          const bytes = binary ? new Uint8Array(value as ArrayBufferLike) : new TextEncoder().encode(JSON.stringify(value))
          out.push({ database, store, key: JSON.stringify(key), value: base64(bytes), binary })
        })
      }
      return out
    } finally {
      db.close()
    }
  },

  async probeWebSocket(url, timeoutMs) {
    return new Promise((resolve) => {
      const ws = new WebSocket(url)
      const timer = setTimeout(() => resolve('no answer'), timeoutMs)
      ws.onopen = () => {
        clearTimeout(timer)
        ws.close()
        resolve('opened')
      }
      ws.onclose = () => {
        clearTimeout(timer)
        resolve('closed')
      }
    })
  },

  async writeControl(database, text) {
    const open = indexedDB.open(database, 1)
    open.onupgradeneeded = () => open.result.createObjectStore('control')
    const db = await request(open)
    const tx = db.transaction('control', 'readwrite', { durability: 'strict' })
    tx.objectStore('control').put(new TextEncoder().encode(text), ['control', 'bytes'])
    tx.objectStore('control').put(text, ['control', 'string'])
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve()
      tx.onerror = () => reject(tx.error)
    })
    db.close()
  },
}

window.glasses = api
