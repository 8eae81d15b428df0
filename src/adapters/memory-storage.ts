/**
 * An in-memory {@link StorageAdapter}: for tests, demos and devices that deliberately keep nothing
 * at rest. Isomorphic (no Node built-ins, no `Buffer`).
 *
 * @module
 */
import {
  StorageError,
  assertStorageKey,
  assertStorageValue,
  compareStorageKeys,
  keyHasPrefix,
  type StorageAdapter,
  type StorageChunk,
  type StorageKey,
} from './storage.js'

/**
 * Creates an empty in-memory store. Bytes are copied on the way in and on the way out, so callers
 * can reuse their buffers and mutate what they get back, exactly as with a durable adapter.
 * Everything is lost when the process ends or the adapter is closed.
 *
 * @example
 * ```ts
 * const storage = memoryStorage()
 * await storage.save(['keys', 'device'], secretBytes)
 * const again = await storage.load(['keys', 'device']) // a fresh copy
 * await storage.close?.() // from now on every call rejects with StorageError('closed')
 * ```
 */
export function memoryStorage(): StorageAdapter {
  // JSON of a string array is injective (it even escapes unpaired surrogates), so it can serve as
  // the map key while the original segments are kept next to the bytes.
  const chunks = new Map<string, StorageChunk>()
  let closed = false

  const check = (op: string): void => {
    if (closed) throw new StorageError('closed', `memoryStorage: ${op} after close()`)
  }

  return {
    durable: false,

    async load(key) {
      check('load')
      assertStorageKey(key)
      const chunk = chunks.get(JSON.stringify(key))
      return chunk ? chunk.data.slice() : undefined
    },

    async save(key, data) {
      check('save')
      assertStorageKey(key)
      assertStorageValue(data)
      chunks.set(JSON.stringify(key), { key: [...key], data: data.slice() })
    },

    async remove(key) {
      check('remove')
      assertStorageKey(key)
      chunks.delete(JSON.stringify(key))
    },

    async loadRange(prefix) {
      check('loadRange')
      assertStorageKey(prefix, true)
      return matching(chunks, prefix).map((c) => ({ key: [...c.key], data: c.data.slice() }))
    },

    async removeRange(prefix) {
      check('removeRange')
      assertStorageKey(prefix, true)
      for (const c of matching(chunks, prefix)) chunks.delete(JSON.stringify(c.key))
    },

    async close() {
      closed = true
      chunks.clear()
    },
  }
}

function matching(chunks: Map<string, StorageChunk>, prefix: StorageKey): StorageChunk[] {
  const out: StorageChunk[] = []
  for (const c of chunks.values()) if (keyHasPrefix(c.key, prefix)) out.push(c)
  return out.sort((a, b) => compareStorageKeys(a.key, b.key))
}
